"""The analyst notebook runs top to bottom on a built work directory, in a kernel from this environment."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from scoring.audit import AuditLog
from scoring.contracts import ClientQuery

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
    assert len(plots) == 4
    for cell in plots:
        assert any(out.get("data", {}) for out in cell.outputs), cell.source
        assert not any(out.get("output_type") == "error" for out in cell.outputs)
