"""Model versions: every build is registered; two versions are compared on the same clients; an earlier one is
served again (rollback) only with a user and a reason, and the history keeps who did it and why."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scoring.__main__ import main
from scoring.build import build
from scoring.config import Workdir
from scoring.model import CostWeights
from scoring.registry import Registry, RegistryError
from scoring.service import LocalScoringService


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory):
    """One work directory built twice on the same data: the second with other business costs (another threshold),
    trained on a 2-worker Dask cluster (other trees)."""
    wd = Workdir(tmp_path_factory.mktemp("registry"))
    first = build(wd, rows=2_000, quiet=True, nthread=2)
    second = build(wd, rows=2_000, quiet=True, costs=CostWeights(missed_default=6.0), dask_workers=2)
    return wd, first.model_version, second.model_version


def test_every_build_is_registered_and_the_served_one_is_marked(two_versions):
    wd, first, second = two_versions
    versions = Registry(wd).versions()
    assert [v.version for v in versions] == [second, first]
    assert [v.active for v in versions] == [True, False]
    assert [e["event"] for e in Registry(wd).history()] == ["registered", "registered"]


def test_two_versions_are_compared_on_the_same_clients(two_versions):
    wd, first, second = two_versions
    c = Registry(wd).compare(first, second)
    scores_a, scores_b = Registry(wd).scores(first), Registry(wd).scores(second)
    assert c.clients == len(scores_a) == len(scores_b)
    shift = scores_b["default_probability"].to_numpy() - scores_a["default_probability"].to_numpy()
    assert c.mean_shift == pytest.approx(shift.mean()) and c.mean_abs_shift > 0
    # a lower cost of a missed default raises the threshold: some refused clients are accepted now
    assert c.accepted_now > 0 and c.acceptance_b > c.acceptance_a
    assert 0.5 < c.auc_a < 1 and 0.5 < c.auc_b < 1 and c.labelled < c.clients


def test_an_earlier_version_is_served_again_with_its_scores(two_versions, tmp_path):
    wd, first, second = two_versions
    copy = Workdir(tmp_path / "copy")
    shutil.copytree(wd.root, copy.root)
    before = LocalScoringService(copy)
    client_id = int(before.ids[0])
    assert before.card.version == second
    event = Registry(copy).activate(first, user="analyst.anne", reason="the new costs are not approved yet")
    assert event["previous"] == second
    before.store.close()  # a server started after the switch (here, in the same process: DuckDB shares open files)
    after = LocalScoringService(copy)
    assert after.card.version == first
    expected = Registry(copy).scores(first).set_index("client_id")["default_probability"]
    assert after.client(client_id).score.default_probability == pytest.approx(expected[client_id])
    assert after.client(client_id).score.threshold == Registry(copy).card(first)["threshold"]
    last = Registry(copy).history()[-1]
    assert (last["event"], last["version"], last["user"], last["reason"]) == \
        ("activated", first, "analyst.anne", "the new costs are not approved yet")
    assert [v.version for v in Registry(copy).versions() if v.active] == [first]


@pytest.mark.parametrize("version, user, reason, message", [
    ("nope", "anne", "why", "unknown model version 'nope'"),
    ("../../etc", "anne", "why", "unknown model version"),
    (None, "anne", "  ", "a reason is required"),
    (None, "", "why", "say who changes"),
])
def test_a_bad_activation_is_refused_and_changes_nothing(two_versions, version, user, reason, message):
    wd, first, second = two_versions
    served = wd.card_path.read_bytes(), wd.store_path.read_bytes()
    with pytest.raises(RegistryError, match=message):
        Registry(wd).activate(version or first, user=user, reason=reason)
    assert (wd.card_path.read_bytes(), wd.store_path.read_bytes()) == served


def test_the_version_served_cannot_be_activated_again(two_versions):
    wd, first, second = two_versions
    with pytest.raises(RegistryError, match="already the one served"):
        Registry(wd).activate(second, user="anne", reason="again")


def test_the_cli_lists_compares_and_activates(two_versions, tmp_path, capsys):
    wd, first, second = two_versions
    copy = tmp_path / "copy"
    shutil.copytree(wd.root, copy)
    assert main(["versions", "--workdir", str(copy), "--compare", first, second]) == 0
    out = capsys.readouterr().out
    assert f"* {second}" in out and "refused -> accepted" in out
    assert main(["activate", first, "--workdir", str(copy), "--user", "anne", "--reason", "rollback"]) == 0
    assert f"model version {first} now served (was {second})" in capsys.readouterr().err
    assert main(["activate", "missing", "--workdir", str(copy), "--user", "anne", "--reason", "x"]) == 2
    assert "unknown model version 'missing'" in capsys.readouterr().err


def _waiting_on(path: Path) -> int:
    """How many processes wait for a flock on `path` now (Linux's /proc/locks: blocked requests are marked "->")."""
    inode = path.stat().st_ino
    lines = Path("/proc/locks").read_text().splitlines()
    return sum(1 for line in lines if "->" in line and "FLOCK" in line and line.split()[-3].endswith(f":{inode}"))


def test_two_processes_activating_at_once_change_the_version_once(two_versions, tmp_path):
    """Two analysts (two server processes) activate the same version while a third change of what is served (a
    threshold adopted, here held by the test) is under way: both wait for it, then one activation is done and the
    other is told the version is already served. The lock is across processes (`scoring.policy.exclusive`)."""
    import subprocess
    import sys
    import time

    from scoring.policy import exclusive, lock_path

    wd, first, second = two_versions
    copy = Workdir(tmp_path / "copy")
    shutil.copytree(wd.root, copy.root)
    command = [sys.executable, "-m", "scoring", "activate", first, "--workdir", str(copy.root), "--user", "anne",
               "--reason", "rollback"]
    served = lambda: json.loads(copy.card_path.read_text())["version"]   # noqa: E731
    with exclusive(copy):
        runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
        deadline = time.monotonic() + 120
        while _waiting_on(lock_path(copy)) < 2:     # both started and now wait for the lock
            assert served() == second and all(run.poll() is None for run in runs), "an activation did not wait"
            assert time.monotonic() < deadline, "the activations never asked for the lock"
            time.sleep(0.1)
        assert served() == second
    outcomes = sorted((run.wait(120), run.stderr.read()) for run in runs)
    assert [code for code, _ in outcomes] == [0, 2], outcomes
    assert f"now served (was {second})" in outcomes[0][1] and "already the one served" in outcomes[1][1]
    events = [e for e in Registry(copy).history() if e["event"] == "activated"]
    assert [(e["version"], e["previous"]) for e in events] == [(first, second)] and served() == first


# ------------------------------------------------------------------ the same, through the service and the API
TOKEN, ADVISOR = "registry-analyst-token", "registry-advisor-token"


@pytest.fixture(scope="module")
def served(two_versions):
    """The two-version work directory served in process and by the API under a real server."""
    from api_server import LiveServer
    from scoring.api import create_app
    from scoring.audit import AuditLog
    from scoring.client import HttpScoringService

    wd, _, _ = two_versions
    local = LocalScoringService(wd)
    audit = AuditLog(wd.root / "audit.sqlite")
    app = create_app(local, tokens=frozenset((f"{TOKEN} analyst", f"{ADVISOR} advisor")), audit=audit)
    with LiveServer(app) as live, HttpScoringService(live.url, TOKEN) as http:
        yield local, http, live.url


def test_both_backends_list_and_compare_the_versions_alike(two_versions, served):
    _, first, second = two_versions
    local, http, _ = served
    assert http.model_versions() == local.model_versions()
    assert [v.version for v in local.model_versions()] == [second, first]
    assert http.compare_versions(first, second) == local.compare_versions(first, second)


def test_an_unknown_version_is_named_by_both_backends(served):
    from scoring.errors import UnknownVersionError

    local, http, _ = served
    for backend in (local, http):
        with pytest.raises(UnknownVersionError, match="unknown model version '<script>'"):
            backend.compare_versions("<script>", "x")


def test_versions_are_for_analysts_only(served):
    import httpx

    _, _, url = served
    advisor = httpx.get(f"{url}/model/versions", headers={"Authorization": f"Bearer {ADVISOR}"})
    assert advisor.status_code == 403
    analyst = httpx.get(f"{url}/model/versions/compare", params={"a": "x" * 65, "b": "y"},
                        headers={"Authorization": f"Bearer {TOKEN}"})
    assert analyst.status_code == 422 and "a" in str(analyst.json())


def test_activating_a_version_serves_the_threshold_adopted_for_it(two_versions, tmp_path):
    """A threshold adopted for a version (scoring.policy) comes back with it: activating it away and back serves
    the adopted one, the other version its build's; the store's decisions follow."""
    from scoring.policy import adopt

    wd, first, second = two_versions
    copy = Workdir(tmp_path / "copy")
    shutil.copytree(wd.root, copy.root)
    adopt(copy, 0.2, "risk committee", "analyst.anne")
    Registry(copy).activate(first, user="anne", reason="compare in production")
    service = LocalScoringService(copy)
    assert service.card.threshold == Registry(copy).card(first)["threshold"]
    assert service.model_card()["threshold_source"] == "build"
    service.store.close()
    Registry(copy).activate(second, user="anne", reason="back")
    service = LocalScoringService(copy)
    try:
        assert service.card.threshold == 0.2 and service.model_card()["threshold_source"] == "policy"
        p = service.store.column("default_probability")
        assert service.portfolio().n_accepted == int((p < 0.2).sum())
    finally:
        service.store.close()
