"""Model versions: every build is registered with its card, its models and the probability it gave each client
file, so that two versions can be compared on the same clients and an earlier one served again (rollback).

Layout, in the work directory's `model/versions/` (generated, ignored by git):

    model/versions/<version>/model.json, model_card.json, folds/fold-K.json   the version's artefacts
    model/versions/<version>/scores.parquet     client_id, split, target, fold, default_probability
    model/versions/history.jsonl                one line per event, appended, never rewritten:
                                                registered (by a build) or activated (who, why, which before)

`python -m scoring versions` lists them; `python -m scoring activate VERSION --user NAME --reason TEXT` serves a
registered version again: its models replace the served ones and the client files take its probabilities and
decisions, swapped in atomically like a build. Only a version built on the same data with the same features can
be activated (else: rebuild). Servers already running open the new artefacts at their next call (`scoring.serving`).
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .config import Workdir
from .contracts import REFUSED, ModelVersion, VersionComparison, decide
from .errors import ModelError, RegistryError, UnknownVersionError
from .policy import exclusive, served_threshold
from .store import rewrite_decisions

VERSIONS_DIR = "versions"
HISTORY = "history.jsonl"
MAX_REASON = 2_000
_append_lock = threading.Lock()


class Registry:
    def __init__(self, workdir: Workdir):
        self.workdir = workdir
        self.root = workdir.model / VERSIONS_DIR

    # ----------------------------------------------------------------- writing
    def register(self, model_dir: Path, scores: pd.DataFrame, user: str | None = None) -> Path:
        """Keep a copy of the built model (`model_dir`) and its scores; one 'registered' line in the history."""
        card = json.loads((model_dir / "model_card.json").read_text())
        target = self.root / card["version"]
        staging = Path(tempfile.mkdtemp(prefix=".version-", dir=self._ensure_root()))
        try:
            for name in ("model.json", "model_card.json", "global_importance.json"):
                if (model_dir / name).exists():
                    shutil.copy2(model_dir / name, staging / name)
            if (model_dir / "folds").exists():
                shutil.copytree(model_dir / "folds", staging / "folds")
            scores.to_parquet(staging / "scores.parquet", index=False)
            if target.exists():
                shutil.rmtree(target)
            staging.replace(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self._append({"event": "registered", "version": card["version"], "user": user})
        return target

    def _ensure_root(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root

    def _append(self, event: dict) -> None:
        line = json.dumps({"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **event},
                          ensure_ascii=False)
        with _append_lock, open(self._ensure_root() / HISTORY, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    # ----------------------------------------------------------------- reading
    def history(self) -> list[dict]:
        path = self.root / HISTORY
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def active_version(self) -> str | None:
        try:
            return json.loads(self.workdir.card_path.read_text())["version"]
        except (OSError, ValueError, KeyError):
            return None

    def card(self, version: str) -> dict:
        path = self._version_dir(version) / "model_card.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"the card of version {version} ({path}) is missing or corrupt: {exc}") from exc

    def _version_dir(self, version: str) -> Path:
        # a version is a name we wrote ("20261129-154400-ab12cd"): never a path from the caller
        if not isinstance(version, str) or not version or "/" in version or "\\" in version or version.startswith("."):
            raise UnknownVersionError(version)
        path = self.root / version
        if not (path / "model_card.json").exists():
            known = ", ".join(v.version for v in self.versions()) or "none"
            raise UnknownVersionError(version, known)
        return path

    def versions(self) -> list[ModelVersion]:
        """Every registered version, newest first."""
        if not self.root.exists():
            return []
        active = self.active_version()
        out = []
        for path in self.root.iterdir():
            if not path.is_dir() or path.name.startswith(".") or not (path / "model_card.json").exists():
                continue
            card = json.loads((path / "model_card.json").read_text())
            metrics = card.get("metrics", {})
            out.append(ModelVersion(
                version=card["version"], created_at=card["created_at"], dataset=card["dataset"],
                data_fingerprint=card["data_fingerprint"], features=len(card["spec"]["features"]),
                roc_auc=float(metrics.get("roc_auc", math.nan)), oof_roc_auc=metrics.get("oof_roc_auc"),
                threshold=float(card["threshold"]), acceptance_rate=float(metrics.get("acceptance_rate", math.nan)),
                fairness_alerts=sum(len(f.get("alerts", [])) for f in card.get("fairness", {}).values()),
                trained_in=metrics.get("trained_in", "this process"), active=card["version"] == active))
        return sorted(out, key=lambda v: v.created_at, reverse=True)

    def scores(self, version: str) -> pd.DataFrame:
        return pd.read_parquet(self._version_dir(version) / "scores.parquet")

    def compare(self, a: str, b: str) -> VersionComparison:
        """Version b against a on the client files both scored: score shift, decisions changed, AUC of each."""
        from sklearn.metrics import roc_auc_score

        card_a, card_b = self.card(a), self.card(b)
        left, right = self.scores(a), self.scores(b)
        both = left.merge(right[["client_id", "default_probability"]], on="client_id", suffixes=("_a", "_b"))
        if both.empty:
            raise RegistryError(f"versions {a} and {b} share no client file: nothing to compare")
        pa_, pb = both["default_probability_a"].to_numpy(), both["default_probability_b"].to_numpy()
        refused_a = np.array([decide(p, card_a["threshold"]) == REFUSED for p in pa_.tolist()])
        refused_b = np.array([decide(p, card_b["threshold"]) == REFUSED for p in pb.tolist()])
        shift = pb - pa_
        labelled = both["target"].notna().to_numpy()
        y = both["target"].to_numpy()[labelled].astype(int)
        has_both_classes = labelled.any() and 0 < y.sum() < len(y)
        return VersionComparison(
            a=a, b=b, clients=int(len(both)), labelled=int(labelled.sum()),
            mean_shift=float(shift.mean()), mean_abs_shift=float(np.abs(shift).mean()),
            p95_abs_shift=float(np.percentile(np.abs(shift), 95)),
            refused_now=int((~refused_a & refused_b).sum()), accepted_now=int((refused_a & ~refused_b).sum()),
            acceptance_a=float(1 - refused_a.mean()), acceptance_b=float(1 - refused_b.mean()),
            auc_a=float(roc_auc_score(y, pa_[labelled])) if has_both_classes else None,
            auc_b=float(roc_auc_score(y, pb[labelled])) if has_both_classes else None)

    def check_activable(self, version: str) -> None:
        """`UnknownVersionError` for a version not registered, `VersionConflictError` for one that cannot be served
        over the client files (other data, other features, or served already): what `activate` refuses, said before
        anything is written, so that the API can tell a conflict (409) from a bad request."""
        from .errors import VersionConflictError

        card = self.card(self._version_dir(version).name)
        served = json.loads(self.workdir.card_path.read_text())
        if card["data_fingerprint"] != served["data_fingerprint"]:
            raise VersionConflictError(f"version {version} was built on other data: rebuild with that data instead")
        if [f["name"] for f in card["spec"]["features"]] != [f["name"] for f in served["spec"]["features"]]:
            raise VersionConflictError(f"version {version} reads other features than the client files were built "
                                       f"with: rebuild with its settings instead")
        if version == served["version"]:
            raise VersionConflictError(f"version {version} is already the one served")

    # ----------------------------------------------------------------- serving another version
    def activate(self, version: str, user: str, reason: str) -> dict:
        """Serve `version` again: its models replace the served ones, the client files take its probabilities and
        decisions (at the threshold an analyst adopted for it, `scoring.policy`, else its build's). Refused without
        a reason or a user, for an unknown version, for one built on other data or reading other features, and for
        the one served. Checked and done under `scoring.policy.exclusive`: one change of what is served at a time,
        across processes. Returns the history event."""
        reason, user = (reason or "").strip(), (user or "").strip()
        if not reason:
            raise RegistryError("a reason is required to change the model version served")
        if len(reason) > MAX_REASON:
            raise RegistryError(f"the reason is too long ({len(reason)} characters, at most {MAX_REASON})")
        if not user:
            raise RegistryError("say who changes the model version served (--user)")
        source = self._version_dir(version)
        card = self.card(version)
        with exclusive(self.workdir):     # with any other activation or adoption, in any process: checked, then done
            return self._activate(version, source, card, user, reason)

    def _activate(self, version: str, source: Path, card: dict, user: str, reason: str) -> dict:
        served = json.loads(self.workdir.card_path.read_text())
        if card["data_fingerprint"] != served["data_fingerprint"]:
            raise RegistryError(f"version {version} was built on other data ({card['data_fingerprint'][:12]}, the "
                                f"client files are {served['data_fingerprint'][:12]}): rebuild with that data instead")
        if [f["name"] for f in card["spec"]["features"]] != [f["name"] for f in served["spec"]["features"]]:
            raise RegistryError(f"version {version} reads other features than the client files were built with: "
                                f"rebuild with its settings instead")
        if version == served["version"]:
            raise RegistryError(f"version {version} is already the one served")
        scores = self.scores(version)
        # the threshold an analyst adopted for this version (scoring.policy), else its build's
        threshold = served_threshold(self.workdir, version, float(card["threshold"]))[0]

        def swap_model(staging: Path) -> None:
            model = staging / "model"
            shutil.copytree(source, model, ignore=shutil.ignore_patterns("scores.parquet"))
            # each rename is atomic; the folds directory is replaced whole
            folds = self.workdir.model / "folds"
            if folds.exists():
                shutil.rmtree(folds)
            if (model / "folds").exists():
                (model / "folds").replace(folds)
            for name in ("model.json", "global_importance.json", "model_card.json"):
                if (model / name).exists():
                    (model / name).replace(self.workdir.model / name)

        try:
            rewrite_decisions(self.workdir.store_path, threshold, scores, version, before_swap=swap_model)
        except ModelError as exc:
            raise RegistryError(str(exc)) from exc
        event = {"event": "activated", "version": version, "previous": served["version"], "user": user,
                 "reason": reason}
        self._append(event)
        return event
