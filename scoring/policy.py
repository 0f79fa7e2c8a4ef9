"""The threshold policy: what each threshold would do on the labelled applications (their out-of-fold
probabilities), and the thresholds analysts adopted, one line each in `model/policy.jsonl` (append-only).

The simulator gives, per threshold, the acceptance rate, the expected loss at the costs of a missed default and of
a refused good client, both error rates, the default rate among the accepted, and fairness per protected attribute
(disparate-impact ratio of acceptance, equal-opportunity difference) as Fairlearn defines them and
`scoring.fairness` computes them, vectorised over thresholds. Adopting a threshold (`adopt`) takes a reason and a
user, rewrites the store's decisions at it (`scoring.store.rewrite_decisions`, atomically) and appends the line: a service opened after it
serves that threshold for its model version (`served_threshold`); `scoring.registry.activate` does the same for the
version it activates.
"""

from __future__ import annotations

import fcntl
import functools
import json
import math
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np

from .config import Workdir
from .contracts import ThresholdChange, ThresholdPoint
from .errors import ModelError, PolicyError
from .fairness import FairnessLimits
from .model import CostWeights, choose_threshold
from .store import rewrite_decisions

#: the simulator's grid: 0.02 to 0.98 by 0.02 (49 thresholds), the served and proposed ones added
GRID = np.round(np.linspace(0.02, 0.98, 49), 4)
MAX_REASON = 2_000
#: the largest cost of an error, in units of a refused good client (a loss per application stays a finite number)
MAX_COST = 1e6
#: a threshold reaching a target acceptance rate is rounded up to this many decimals (readable, and the
#: acceptance it gives is the target's within a few files)
DECIMALS = 4
_lock = threading.Lock()


# ---------------------------------------------------------------------------------------- the simulator
class ThresholdSimulator:
    """The labelled applications' outcomes (`target`, 1 = defaulted) and out-of-fold probabilities, with the
    protected groups (`groups`: attribute -> group of every application) the fairness figures compare."""

    def __init__(self, probability: np.ndarray, target: np.ndarray, groups: dict[str, np.ndarray],
                 limits: FairnessLimits = FairnessLimits()):
        self.probability = np.asarray(probability, dtype=np.float64)
        self.target = np.asarray(target).astype(np.int8)
        if len(self.probability) != len(self.target) or not len(self.target):
            raise ValueError("the simulator needs one outcome per probability, and at least one application")
        order = np.argsort(self.probability, kind="stable")
        self._sorted = self.probability[order]
        self._target_sorted = self.target[order]
        # defaulters among the k lowest probabilities (those accepted at a threshold just above the k-th)
        self._defaults_below = np.concatenate([[0], np.cumsum(self.target[order], dtype=np.int64)])
        self.applications = len(self.target)
        self.defaults = int(self.target.sum())
        self.limits = limits
        # groups too small to be read are left out of the ratios, as in scoring.fairness
        self.groups = {}
        for name, labels in groups.items():
            labels = np.asarray(labels, dtype=object)
            values, counts = np.unique(labels.astype(str), return_counts=True)
            kept = np.isin(labels.astype(str), values[counts >= limits.min_group])
            if len(values[counts >= limits.min_group]) > 1:
                self.groups[name] = kept, labels[kept].astype(str)

    def figures(self, thresholds: np.ndarray, costs: CostWeights) -> dict[str, np.ndarray]:
        """Acceptance, expected loss, error rates and the accepted's default rate at each threshold, vectorised:
        one binary search in the sorted probabilities per threshold."""
        t = np.asarray(thresholds, dtype=np.float64)
        accepted = np.searchsorted(self._sorted, t, side="left")      # p < t
        defaults_accepted = self._defaults_below[accepted]
        goods = self.applications - self.defaults
        goods_refused = goods - (accepted - defaults_accepted)
        with np.errstate(invalid="ignore", divide="ignore"):
            return {
                "acceptance_rate": accepted / self.applications,
                "expected_loss": (defaults_accepted * costs.missed_default
                                  + goods_refused * costs.refused_good_client) / self.applications,
                "missed_default_rate": defaults_accepted / self.defaults if self.defaults else np.zeros(len(t)),
                "refused_good_rate": goods_refused / goods if goods else np.zeros(len(t)),
                "default_rate_accepted": np.where(accepted > 0, defaults_accepted / np.maximum(accepted, 1), np.nan),
            }

    def fairness(self, thresholds: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Per attribute, at each threshold: the disparate-impact ratio (lowest group acceptance rate over the
        highest) and the equal-opportunity difference (largest gap in the acceptance rate of the clients who
        repaid), as Fairlearn's `demographic_parity_ratio` and `equal_opportunity_difference` define them (the
        tests check they agree). Vectorised: one binary search per group and threshold in the group's sorted
        probabilities, where calling Fairlearn's `MetricFrame` once per threshold costs ~9 s at full size."""
        t = np.asarray(thresholds, dtype=np.float64)
        di, eod = {}, {}
        for name, by_group in self._groups_sorted.items():
            acceptance, good_accepted = [], []
            for p_sorted, repaid_below, repaid in by_group:
                accepted = np.searchsorted(p_sorted, t, side="left")
                acceptance.append(accepted / len(p_sorted))
                good_accepted.append(repaid_below[accepted] / repaid if repaid else np.full(len(t), np.nan))
            acceptance, good_accepted = np.array(acceptance), np.array(good_accepted)
            with np.errstate(invalid="ignore", divide="ignore"):
                di[name] = acceptance.min(axis=0) / acceptance.max(axis=0)
            eod[name] = good_accepted.max(axis=0) - good_accepted.min(axis=0)
        return di, eod

    @functools.cached_property
    def _groups_sorted(self) -> dict[str, list[tuple[np.ndarray, np.ndarray, int]]]:
        """Per attribute and group: its sorted probabilities, the clients who repaid among the k lowest, and how
        many repaid."""
        out = {}
        for name, (kept, labels) in self.groups.items():
            p, repaid = self.probability[kept], (self.target[kept] == 0)
            out[name] = []
            for group in np.unique(labels):
                mine = labels == group
                order = np.argsort(p[mine], kind="stable")
                r = repaid[mine][order]
                out[name].append((p[mine][order], np.concatenate([[0], np.cumsum(r, dtype=np.int64)]), int(r.sum())))
        return out

    def points(self, thresholds, costs: CostWeights) -> list[ThresholdPoint]:
        thresholds = [float(t) for t in thresholds]
        f = self.figures(np.array(thresholds), costs)
        di, eod = self.fairness(np.array(thresholds))
        return [ThresholdPoint(threshold=t, acceptance_rate=float(f["acceptance_rate"][i]),
                               expected_loss=float(f["expected_loss"][i]),
                               missed_default_rate=float(f["missed_default_rate"][i]),
                               refused_good_rate=float(f["refused_good_rate"][i]),
                               default_rate_accepted=_finite(f["default_rate_accepted"][i]),
                               disparate_impact={k: _finite(v[i]) for k, v in di.items()},
                               equal_opportunity_difference={k: _finite(v[i]) for k, v in eod.items()})
                for i, t in enumerate(thresholds)]

    def cheapest(self, costs: CostWeights) -> float:
        """The threshold minimising the expected loss at `costs` (`scoring.model.choose_threshold`, the build's)."""
        # the same applications, already sorted: choose_threshold's own sort then costs ~5 ms instead of ~30
        return choose_threshold(self._target_sorted, self._sorted, costs)[0]

    def reaching(self, target_acceptance: float) -> float:
        """The lowest threshold (rounded up to `DECIMALS`) accepting at least `target_acceptance` of the files."""
        k = max(1, math.ceil(target_acceptance * self.applications - 1e-9))
        highest_accepted = self._sorted[min(k, self.applications) - 1]
        step = 10.0 ** -DECIMALS
        t = math.floor(highest_accepted / step + 1) * step   # strictly above it: refused at or above
        return float(np.clip(round(t, DECIMALS), step, 1 - step))


def _finite(x) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def check_costs(cost_missed_default: float | None, cost_refused_good: float | None,
                card_costs: dict) -> CostWeights:
    """The costs given, else the card's; `PolicyError` naming a cost that is not a positive finite number."""
    chosen = {"cost_missed_default": card_costs["missed_default"],
              "cost_refused_good": card_costs["refused_good_client"]}
    for name, value in (("cost_missed_default", cost_missed_default), ("cost_refused_good", cost_refused_good)):
        if value is None:
            continue
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise PolicyError(name, f"{name} must be a number, got {str(value)[:30]!r}") from None
        if not (math.isfinite(value) and 0 < value <= MAX_COST):
            raise PolicyError(name, f"{name} must be a positive number up to {MAX_COST:g} (units of a refused good "
                                    f"client), got {value}")
        chosen[name] = value
    return CostWeights(missed_default=chosen["cost_missed_default"], refused_good_client=chosen["cost_refused_good"])


def check_acceptance(target_acceptance: float | None) -> float | None:
    if target_acceptance is None:
        return None
    try:
        value = float(target_acceptance)
    except (TypeError, ValueError):
        raise PolicyError("target_acceptance", "target_acceptance must be a number between 0 and 1") from None
    if not (math.isfinite(value) and 0 < value < 1):
        raise PolicyError("target_acceptance", f"target_acceptance is a share of applications strictly between 0 "
                                               f"and 1 (0.75 = 75 %), got {value}")
    return value


def check_threshold(threshold) -> float:
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise PolicyError("threshold", f"the threshold must be a number, got {str(threshold)[:30]!r}") from None
    if not (math.isfinite(value) and 0 < value < 1):
        raise PolicyError("threshold", f"the threshold is a default probability strictly between 0 and 1, got {value}")
    return value


# ---------------------------------------------------------------------------------------- the history
def history(workdir: Workdir) -> list[dict]:
    """Every adopted threshold, oldest first (the file's order)."""
    try:
        text = workdir.policy_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            check_threshold(entry["threshold"])
            str(entry["model_version"])
        except (ValueError, KeyError, TypeError) as exc:
            # the threshold served comes from this file: serving another one silently would be worse than stopping
            raise ModelError(f"line {number} of the threshold policy {workdir.policy_path} is unreadable ({exc}): "
                             f"restore the file from its backup") from None
        out.append(entry)
    return out


def changes(workdir: Workdir) -> list[ThresholdChange]:
    """The history as the contract's type, newest first."""
    return [ThresholdChange(**{k: line.get(k) for k in ThresholdChange.__dataclass_fields__})
            for line in reversed(history(workdir))]


def served_threshold(workdir: Workdir, version: str, built: float) -> tuple[float, str]:
    """The threshold served for model `version`: the last one adopted for it, else its build's (`built`);
    with its source, "policy" or "build"."""
    for line in reversed(history(workdir)):
        if line.get("model_version") == version:
            return float(line["threshold"]), "policy"
    return float(built), "build"


def lock_path(workdir: Workdir) -> Path:
    """The file whose flock says a change of what is served is under way (`exclusive`, `settled`)."""
    return workdir.model / ".policy.lock"


@contextmanager
def exclusive(workdir: Workdir) -> Iterator[None]:
    """One change of what is served at a time (a threshold adopted, a model version activated: both rewrite the
    store's decisions), across the processes serving this work directory (API workers, dashboard)."""
    with _lock, open(lock_path(workdir), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def settled(workdir: Workdir) -> Iterator[bool]:
    """Whether no change of what is served (`exclusive`) is under way, in any process; while True, none starts.
    A server opening the artefacts again (`scoring.serving`) holds it: it never opens a change half-made (an
    adoption's new decisions before its policy line, an activation's new card before its store)."""
    path = lock_path(workdir)
    try:
        handle = open(path, "a")
    except OSError:     # a read-only volume (changes made from elsewhere, e.g. the host): a shared lock reads it
        try:
            handle = open(path, "r")
        except FileNotFoundError:   # no change was ever made under the lock (`exclusive` creates it first)
            yield True
            return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def adopt(workdir: Workdir, threshold: float, reason: str, user: str, cost_missed_default: float | None = None,
          cost_refused_good: float | None = None, target_acceptance: float | None = None) -> ThresholdChange:
    """Serve `threshold` for the active model version from now on: the store's decisions are taken again at it
    (swapped in atomically) and one line is appended to the policy's history. Refused (`PolicyError`) without a
    reason or a user, for a threshold outside (0, 1), and for the threshold already served."""
    threshold = check_threshold(threshold)
    reason, user = (reason or "").strip(), (user or "").strip()
    if not reason:
        raise PolicyError("reason", "a reason is required to change the decision threshold")
    if len(reason) > MAX_REASON:
        raise PolicyError("reason", f"the reason is too long ({len(reason)} characters, at most {MAX_REASON})")
    if not user:
        raise PolicyError("user", "say who changes the decision threshold")
    origin = {"cost_missed_default": None, "cost_refused_good": None,
              "target_acceptance": check_acceptance(target_acceptance)}
    if cost_missed_default is not None or cost_refused_good is not None:
        costs = check_costs(cost_missed_default, cost_refused_good,
                            {"missed_default": cost_missed_default or 1.0,
                             "refused_good_client": cost_refused_good or 1.0})
        origin.update(cost_missed_default=None if cost_missed_default is None else costs.missed_default,
                      cost_refused_good=None if cost_refused_good is None else costs.refused_good_client)
    with exclusive(workdir.require_built()):
        card = json.loads(workdir.card_path.read_text())
        previous, _ = served_threshold(workdir, card["version"], float(card["threshold"]))
        if threshold == previous:
            raise PolicyError("threshold", f"{threshold} is already the threshold served: nothing to change")
        rewrite_decisions(workdir.store_path, threshold)
        change = ThresholdChange(at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                 model_version=card["version"], threshold=threshold, previous=previous, user=user,
                                 reason=reason, **origin)
        with open(workdir.policy_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(change.__dict__, ensure_ascii=False) + "\n")
    return change
