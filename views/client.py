"""The side bar: choose a client file (ID or filtered table), then their score, decision, profile and application."""

from __future__ import annotations

import html

import pandas as pd
import panel as pn
import param
from bokeh.models import NumeralTickFormatter

from scoring.contracts import DECISIONS, ClientFile, is_client_id
from scoring.labels import current as current_labels

from .advice import ADVICE_CSS, flags_html
from .charts import gauge_svg
from .common import CARD_CSS, TABLE_CSS, notice_alert, with_loading
from .i18n import NOT_GIVEN, LabelDictionary, fmt_number, labels_for, t
from .state import DashboardState

#: (business column, shown per month) of the profile and the application, in display order; a row shows
#: when the client files have that column (role). Flows are monthly in the client files (scoring.store).
PROFILE_ROWS = (("age_years", False), ("income", True), ("debt_ratio", False), ("family", False),
                ("children", False), ("employment_years", False))
APPLICATION_ROWS = (("contract_type", False), ("credit_amount", False), ("term_months", False), ("annuity", True),
                    ("goods_price", False), ("credit_income_ratio", False))
#: (key of the file's debts, its role in the client files, shown per month): the other credits of the applicant
DEBT_ROWS = (("active_credits", "active_credits", False), ("outstanding_debt", "outstanding_debt", False),
             ("monthly_debt_service", "debt", True), ("max_days_overdue", "max_days_overdue", False))
#: table column -> (role needed, header text key). Headers are the interface's words, never the data's:
#: Tabulator shows a column title as HTML
TABLE_COLUMNS = {"client_id": (None, "col_id"), "decision": (None, "col_decision"),
                 "default_probability": (None, "col_probability"), "age_years": ("age_years", "col_age"),
                 "income": ("income", "col_income"), "credit_amount": ("credit_amount", "col_amount")}


def format_fact(labels: LabelDictionary, name: str, value, language: str, per_year: bool = False) -> str:
    """A client file's value as HTML text: formatted by the dictionary (categories translated, amounts in the
    dataset's currency, none when unknown), escaped, a missing value worded as such. `per_year` (the name kept
    for callers): a monthly flow, shown "/ mois"."""
    text = labels.format_value(name, value, language)
    if text == NOT_GIVEN[language]:
        return f'<span class="note">{html.escape(text)}</span>'
    if per_year:
        text = t("per_month", language, value=text)
    return html.escape(text)


def missing_roles_note(labels: LabelDictionary, rows, roles, language: str) -> str:
    missing = [labels.label(name, language) for name, _ in rows if name not in roles]
    if not missing:
        return ""
    return f'<p class="note">{html.escape(t("missing_roles", language, names=", ".join(missing)))}</p>'


def decision_label(labels: LabelDictionary, decision, language: str) -> str:
    """"Accordé" / "Refused": the dictionary's words for a decision (plain text, not escaped)."""
    return labels.category_label("decision", decision, language)


def client_card_html(file: ClientFile | None, roles: frozenset[str], language: str,
                     labels: LabelDictionary | None = None) -> str:
    """Everything the side bar says about one client, as one HTML fragment (one update per switch).

    Every value is escaped: a client file's text, and anything another service sent, is shown as text."""
    labels = labels if labels is not None else current_labels()
    if file is None:
        return f'<p class="placeholder">{t("no_client", language)}</p>'
    score = file.score
    decision = str(score.decision)
    css = decision if decision in DECISIONS else ""
    if file.split == "train" and file.known_outcome is not None:
        status = t("history_defaulted" if file.known_outcome else "history_repaid", language)
    else:
        status = t("new_application", language)
    client_id = html.escape(str(file.client_id))

    def table(rows, values, css):
        cells = "".join(f"<tr><th>{html.escape(labels.label(name, language))}</th>"
                        f"<td>{format_fact(labels, name, values.get(name), language, per_year)}</td></tr>"
                        for name, per_year in rows if name in roles)
        return f'<table class="facts {css}">{cells}</table>'

    debts = getattr(file, "debts", None) or {}
    debt_cells = "".join(f"<tr><th>{html.escape(labels.label(key, language))}</th>"
                         f"<td>{format_fact(labels, key, debts.get(key), language, monthly)}</td></tr>"
                         for key, role, monthly in DEBT_ROWS if role in roles)
    debts_html = (f'<h4>{t("debts", language)}</h4><table class="facts debts">{debt_cells}</table>'
                  f'{missing_roles_note(labels, [(role, m) for _, role, m in DEBT_ROWS], roles, language)}'
                  if debt_cells else
                  f'<h4>{t("debts", language)}</h4>{missing_roles_note(labels, [("debt", True)], roles, language)}')
    probability = labels.format_value("default_probability", score.default_probability, language)
    review = (f'<span class="review-badge" title="{html.escape(t("review_help", language))}">{t("review", language)}'
              f'</span>' if getattr(score, "review", False) else "")
    return (
        f'<div class="client-card" data-client-id="{client_id}">'
        f'<div class="client-head">{html.escape(labels.label("client_id", language))} '
        f'<b class="client-id">{client_id}</b> · {status}</div>'
        f'{gauge_svg(score.default_probability, score.threshold, language, labels=labels)}'
        f'<div class="decision"><span class="decision-badge {css}" data-decision="{html.escape(decision)}">'
        f'{html.escape(decision_label(labels, decision, language))}</span>'
        f'{review}'
        f'<span class="probability" data-probability="{float(score.default_probability):.6f}">'
        f'{html.escape(probability)}</span>'
        f'<span class="note">{html.escape(labels.label("default_probability", language).lower())}</span></div>'
        f'<h4>{t("profile", language)}</h4>{table(PROFILE_ROWS, file.profile, "profile")}'
        f'{missing_roles_note(labels, PROFILE_ROWS, roles, language)}'
        f'{debts_html}'
        f'<h4>{t("application", language)}</h4>{table(APPLICATION_ROWS, file.application, "application")}'
        f'{missing_roles_note(labels, APPLICATION_ROWS, roles, language)}'
        f'</div>')


ALL = "__all__"


def optional_choice(obj: param.Parameterized, name: str, options, label) -> pn.widgets.Select:
    """A Select for a parameter whose None means "all" (Bokeh's Select cannot show a None option)."""
    widget = pn.widgets.Select(options=options, label=label, value=getattr(obj, name) or ALL,
                               sizing_mode="stretch_width")
    widget.param.watch(lambda e: setattr(obj, name, None if e.new == ALL else e.new), "value")
    obj.param.watch(lambda e: setattr(widget, "value", ALL if e.new is None else e.new), name)
    return widget


class ClientCard(pn.viewable.Viewer):
    """Gauge, decision badge, probability, profile and application of the selected client."""

    state = param.ClassSelector(class_=DashboardState)

    def __init__(self, **params):
        super().__init__(**params)
        client = self.state.client
        self.html = pn.pane.HTML(pn.bind(client_card_html, client.param.file, self.state.roles,
                                         self.state.param.language, labels_for(self.state.service)),
                                 sizing_mode="stretch_width", stylesheets=[CARD_CSS], css_classes=["client-card-pane"],
                                 min_height=120)
        # the trust flags next to the score
        self.flags = pn.pane.HTML(pn.bind(flags_html, client.param.flags, self.state.param.language,
                                          labels_for(self.state.service)),
                                  sizing_mode="stretch_width", stylesheets=[CARD_CSS, ADVICE_CSS],
                                  css_classes=["trust-flags-pane"], visible=pn.bind(bool, client.param.flags))

    def __panel__(self):
        return pn.Column(self.html, self.flags, sizing_mode="stretch_width")


def table_frame(rows: pd.DataFrame, roles: frozenset[str], language: str,
                labels: LabelDictionary | None = None) -> pd.DataFrame:
    """The current page of client files, with translated headers and values formatted by the dictionary.

    Plain text: Tabulator's default string formatter shows a cell's text, never its HTML."""
    labels = labels if labels is not None else current_labels()
    columns = [c for c, (role, _) in TABLE_COLUMNS.items() if role is None or role in roles]
    out = {}
    for c in columns:
        header = t(TABLE_COLUMNS[c][1], language)
        values = rows[c] if c in rows else pd.Series([], dtype=object)
        if c == "client_id":
            out[header] = values.astype(str)
        else:
            out[header] = [labels.format_value(c, v, language) for v in values]
    return pd.DataFrame(out)


class ClientPicker(pn.viewable.Viewer):
    """Open a client by ID (the table below narrows as the ID is typed) or from the filtered table."""

    state = param.ClassSelector(class_=DashboardState)

    def __init__(self, **params):
        super().__init__(**params)
        lang = self.state.param.language
        search, client = self.state.search, self.state.client
        self.labels = labels = labels_for(self.state.service)
        self.id_input = pn.widgets.TextInput(
            label=pn.bind(labels.label, "client_id", lang), placeholder=pn.bind(t, "client_id_placeholder", lang),
            sizing_mode="stretch_width", css_classes=["client-id-input"])
        self.open_button = pn.widgets.Button(label=pn.bind(t, "open", lang), color="primary", width=80,
                                             align="end", css_classes=["open-client"])
        self.id_input.param.watch(self._typing, "value_input")
        self.id_input.param.watch(self._entered, "value")
        self.open_button.on_click(self._clicked)

        self.table = pn.widgets.Tabulator(
            pn.bind(table_frame, search.param.rows, self.state.roles, lang, labels), show_index=False, disabled=True, sortable=False, selectable=False,
            pagination=None, layout="fit_data_stretch", sizing_mode="stretch_width", height=300,
            css_classes=["client-table"], stylesheets=[TABLE_CSS])
        self.table.on_click(self._row_clicked)

        self.previous = pn.widgets.Button(label=pn.bind(t, "previous", lang), width=80,
                                          disabled=pn.bind(lambda page: page <= 1, search.param.page), css_classes=["previous-page"])
        self.next = pn.widgets.Button(label=pn.bind(t, "next", lang), width=80, css_classes=["next-page"],
                                      disabled=pn.bind(lambda page, total: page >= search.pages,
                                                       search.param.page, search.param.total))
        self.previous.on_click(lambda event: search.previous_page())
        self.next.on_click(lambda event: search.next_page())
        self.pager = pn.pane.HTML(pn.bind(self._pager_text, search.param.page, search.param.total, lang),
                                  css_classes=["pager"], margin=(12, 5))

    # ------------------------------------------------------------- opening a client
    def _typing(self, event):
        text = (event.new or "").strip()
        if is_client_id(text) or not text:
            self.state.search.q = text

    def _open(self, text: str) -> None:
        with_loading(self.state.client, lambda: self.state.client.open(text))

    def _entered(self, event):
        if (event.new or "").strip():
            self._open(event.new)

    def _clicked(self, event):
        text = self.id_input.value_input or self.id_input.value
        if text and text.strip():
            self._open(text)

    def _row_clicked(self, event):
        client_id = self.state.search.client_at(event.row)
        with_loading(self.state.client, lambda: setattr(self.state.client, "client_id", client_id))

    # ------------------------------------------------------------- the table
    def _pager_text(self, page: int, total: int, language: str) -> str:
        if total == 0:
            return f'<span class="note">{t("no_match", language)}</span>'
        return t("page", language, page=page, pages=self.state.search.pages, total=fmt_number(total, language))

    # ------------------------------------------------------------- the filters
    def _filters(self) -> list:
        lang = self.state.param.language
        search, roles, labels = self.state.search, self.state.roles, self.labels

        def decisions(language):
            return {t("all", language): ALL, **{labels.category_label("decision", d, language): d for d in DECISIONS}}

        widgets = [
            optional_choice(search, "decision", pn.bind(decisions, lang), pn.bind(labels.label, "decision", lang)),
            pn.widgets.RangeSlider.from_param(search.param.probability,
                                              label=pn.bind(labels.label, "default_probability", lang),
                                              step=0.01, format=NumeralTickFormatter(format="0%"),
                                              sizing_mode="stretch_width"),
        ]
        if "contract_type" in roles:
            def contracts(language):
                return {t("all_m", language): ALL,
                        **{labels.category_label("contract_type", c, language): c
                           for c in search.param.contract_type.objects if c}}
            widgets.append(optional_choice(search, "contract_type", pn.bind(contracts, lang),
                                           pn.bind(labels.label, "contract_type", lang)))

        def age_label(language):
            return t("in_years", language, label=labels.label("age_years", language))

        # RangeSlider, not EditableRangeSlider: in Panel 1.9 the latter's JS links stay in a class-level
        # registry through a reference cycle and keep every closed session alive (see tests/test_sessions.py)
        for name, key in (("income", "income"), ("amount", "credit_amount"), ("age", "age_years")):
            if name in search.range_bounds:
                step = 1.0 if name == "age" else 1000.0
                label = pn.bind(age_label, lang) if name == "age" else pn.bind(labels.label, key, lang)
                widgets.append(pn.widgets.RangeSlider.from_param(
                    search.param[name], label=label, step=step,
                    format=NumeralTickFormatter(format="0,0"), sizing_mode="stretch_width"))

        def sort_options(language):
            return {labels.label(s, language): s for s in search.param.sort.objects}

        widgets += [
            pn.widgets.Select.from_param(search.param.sort, description=None, label=pn.bind(t, "sort", lang),
                                         options=pn.bind(sort_options, lang), sizing_mode="stretch_width"),
            pn.widgets.Checkbox.from_param(search.param.descending, label=pn.bind(t, "descending", lang)),
        ]
        missing = [key for key in ("contract_type", "income", "credit_amount", "age_years") if key not in roles]
        if missing:
            def note(language):
                names = ", ".join(labels.label(key, language) for key in missing)
                return f'<p class="note">{html.escape(t("missing_roles", language, names=names))}</p>'
            widgets.append(pn.pane.HTML(pn.bind(note, lang), stylesheets=[CARD_CSS]))
        return widgets

    def id_box(self) -> pn.Column:
        """The ID input, its button and the messages about the client being opened."""
        lang = self.state.param.language
        return pn.Column(pn.Row(self.id_input, self.open_button, sizing_mode="stretch_width"),
                         notice_alert(self.state.client.param.notice, lang), sizing_mode="stretch_width")

    def browser(self) -> pn.Column:
        """Filters, the current page of client files, and the pager."""
        lang = self.state.param.language
        filters = pn.Card(*self._filters(), title=pn.bind(t, "search", lang), collapsed=True,
                          sizing_mode="stretch_width", css_classes=["filters"])
        return pn.Column(
            notice_alert(self.state.search.param.notice, lang),
            filters,
            self.table,
            pn.Row(self.previous, self.pager, self.next, sizing_mode="stretch_width"),
            pn.pane.HTML(pn.bind(lambda language: f'<span class="note">{t("click_row", language)}</span>', lang),
                         stylesheets=[CARD_CSS]),
            sizing_mode="stretch_width")

    def __panel__(self):
        return pn.Column(self.id_box(), self.browser(), sizing_mode="stretch_width")
