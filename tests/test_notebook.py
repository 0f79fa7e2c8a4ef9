"""The analyst notebook runs top to bottom on a built work directory, in a kernel from this environment."""

from __future__ import annotations

import html
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from scoring.audit import AuditLog
from scoring.contracts import ClientQuery
from views.i18n import fmt_percent

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "analyst.ipynb"
PANEL_MIME = "application/vnd.holoviews_exec.v0+json"


def outputs(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts.extend(str(v) for v in out.get("data", {}).values())
    return "\n".join(parts)


@pytest.fixture(scope="module")
def executed(workdir, service, tmp_path_factory):
    audit_path = tmp_path_factory.mktemp("notebook") / "audit.sqlite"
    mp = pytest.MonkeyPatch()
    mp.setenv("SCORING_WORKDIR", str(workdir.root))     # the kernel inherits the environment
    mp.setenv("SCORING_AUDIT_DB", str(audit_path))
    mp.setenv("OMP_NUM_THREADS", "1")
    mp.delenv("SCORING_API_URL", raising=False)
    try:
        nb = nbformat.read(NOTEBOOK, as_version=4)
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    finally:
        mp.undo()
    return nb, AuditLog(audit_path)


def test_the_notebook_reads_the_model_and_portfolio_of_the_work_directory(executed, service):
    nb, _ = executed
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert f"model {service.model_card()['version']}" in outputs(code[0])
    assert str(service.portfolio().n_applications) in outputs(code[1])


def test_the_notebook_lists_the_riskiest_files_and_explains_the_first(executed, service):
    nb, _ = executed
    riskiest = service.search(ClientQuery(decision="refused", sort="default_probability", descending=True, limit=1))
    client_id = int(riskiest.items[0]["client_id"])
    text = "\n".join(outputs(c) for c in nb.cells if c.cell_type == "code")
    assert f"{riskiest.total} refused applications" in text
    assert str(client_id) in text
    top = service.explain(client_id, top=1).contributions[0]
    assert top.label in text


def test_the_notebook_reads_labels_and_values_as_the_dashboard_does(executed, service):
    from views.i18n import feature_label, labels_for

    nb, _ = executed
    labels = labels_for(service)
    text = "\n".join(outputs(c) for c in nb.cells if c.cell_type == "code")
    riskiest = service.search(ClientQuery(decision="refused", sort="default_probability", descending=True, limit=1))
    client_id = int(riskiest.items[0]["client_id"])
    top = service.explain(client_id, top=1).contributions[0]
    assert feature_label(labels, top.feature, "fr") in text
    assert labels.format_value(top.feature, top.value, "en") in text
    assert labels.label("default_probability", "fr") in text and "Prêt personnel" in text   # a category translated
    assert "€" not in text                                       # Home Credit states no currency


def test_the_dashboard_components_display_inline_and_audit_the_opened_file(executed, service):
    nb, audit = executed
    component_cells = [c for c in nb.cells if c.cell_type == "code" and c.source.strip().splitlines()[-1]
                       in ("app.card", "app.explanation", "app.comparison", "app.debt", "app")]
    assert len(component_cells) == 5
    for cell in component_cells:
        assert any(PANEL_MIME in out.get("data", {}) for out in cell.outputs), cell.source
    riskiest = service.search(ClientQuery(decision="refused", sort="default_probability", descending=True, limit=1))
    # searches have entries too, and reading the file's recorded decisions (after it is shown) is a "client_opened"
    [entry] = [e for e in audit.recent(100) if e["event"] == "client_opened" and '"decisions"' not in (e["details"] or "")]
    assert entry["client_id"] == int(riskiest.items[0]["client_id"]) and entry["event"] == "client_opened"
    assert entry["source"] == "dashboard" and entry["decision"] == "refused"


def test_the_notebook_plots_fairness_and_monthly_monitoring_with_hvplot(executed, service):
    nb, _ = executed
    code = [c for c in nb.cells if c.cell_type == "code"]
    text = "\n".join(outputs(c) for c in code)
    months = service.monitoring()
    assert f"{len(months)} months; drifting most in {months[-1].month}" in text
    fairness = next(c for c in code if "service.fairness()" in c.source)
    assert "disparate_impact_ratio" in outputs(fairness) and "new applications" in outputs(fairness)
    plots = [c for c in code if ".hvplot." in c.source]
    assert len(plots) == 6   # fairness, months, a feature's distributions, model versions, the threshold policy
    for cell in plots:
        assert any(out.get("data", {}) for out in cell.outputs), cell.source
        assert not any(out.get("output_type") == "error" for out in cell.outputs)


def test_the_notebook_simulates_the_threshold_policy_on_the_services_frame(executed, service):
    nb, _ = executed
    code = [c for c in nb.cells if c.cell_type == "code"]
    simulation = next(c for c in code if "service.threshold_simulation(" in c.source)
    sim = service.threshold_simulation(target_acceptance=0.7)
    assert f"served threshold {sim.current_threshold:.4f} (build); proposed for 70 % acceptance: " \
           f"{sim.proposed_threshold:.4f}" in outputs(simulation)


def test_the_notebook_lists_the_model_versions(executed, service):
    nb, _ = executed
    listing = next(c for c in nb.cells if c.cell_type == "code" and "service.model_versions()" in c.source)
    assert service.model_card()["version"] in outputs(listing)
    compared = next(c for c in nb.cells if c.cell_type == "code" and "service.compare_versions" in c.source)
    assert "one version registered" in outputs(compared)   # the test portfolio is built once


# ---------------------------------------------------------------------------------------------- the advisor's notebook
ADVISOR_NOTEBOOK = REPO / "notebooks" / "advisor.ipynb"


@pytest.fixture(scope="module")
def advisor_executed(workdir, service, tmp_path_factory):
    audit_path = tmp_path_factory.mktemp("advisor-notebook") / "audit.sqlite"
    mp = pytest.MonkeyPatch()
    mp.setenv("SCORING_WORKDIR", str(workdir.root))
    mp.setenv("SCORING_AUDIT_DB", str(audit_path))
    mp.setenv("SCORING_DECISIONS_DB", str(audit_path.parent / "decisions.sqlite"))
    mp.setenv("OMP_NUM_THREADS", "1")
    mp.delenv("SCORING_API_URL", raising=False)
    try:
        nb = nbformat.read(ADVISOR_NOTEBOOK, as_version=4)
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    finally:
        mp.undo()
    return nb, AuditLog(audit_path)


def _advised_client(service) -> int:
    """The notebook's client: the first refused new application with an offer."""
    for row in service.search(ClientQuery(split="new", decision="refused", limit=50)).items:
        if service.offers(int(row["client_id"])).offers:
            return int(row["client_id"])
    raise AssertionError("no refused new application with an offer")


def test_the_advisor_notebook_opens_a_refused_file_with_its_reasons_offers_and_peers(advisor_executed, service):
    nb, _ = advisor_executed
    client_id = _advised_client(service)
    text = html.unescape("\n".join(outputs(c) for c in nb.cells if c.cell_type == "code"))
    assert f"client {client_id}: Refused" in text
    for reason in service.reasons(client_id, "fr").reasons + service.reasons(client_id, "en").reasons:
        assert reason.text in text
    for offer in service.offers(client_id).offers:
        assert text.count(fmt_percent(offer.default_probability, "en", 2)) >= 2   # offered, and the same re-scored
    rescored = outputs(next(c for c in nb.cells if c.cell_type == "code" and "re-scored" in c.source))
    assert "accepted" in rescored and "refused" not in rescored          # every offer passes when scored again
    assert f"{fmt_percent(service.peers(client_id, 10).default_rate, 'en', 0)} defaulted" in text


def test_the_advisor_notebook_records_a_decision_on_an_offer_and_its_file_audited(advisor_executed, service):
    nb, audit = advisor_executed
    client_id = _advised_client(service)
    text = html.unescape("\n".join(outputs(c) for c in nb.cells if c.cell_type == "code"))
    assert f"decision-{client_id}-1.pdf: " in text and "bytes of application/pdf" in text
    assert "Offer decided on" in text and "Offre 1 acceptée par le client en agence" in text
    entries = audit.recent(200)
    recorded = [e for e in entries if e["event"] == "decision_recorded"]
    assert [e["client_id"] for e in recorded] == [client_id] and recorded[0]["source"] == "dashboard"
    files = [e for e in entries if '"decision_file"' in (e["details"] or "")]
    assert {e["client_id"] for e in files} == {client_id} and len(files) == 2
