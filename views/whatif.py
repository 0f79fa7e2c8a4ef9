"""What-if on the open client file and a new application's form (advisors; `views.state.WhatIfState` and
`views.state.NewApplicationState` hold them). The views format: every probability, decision and reason comes
from the service (`assess`, `create_client`)."""

from __future__ import annotations

import html

import panel as pn
import param

from scoring.contracts import ApplicationField, Assessment

from .common import CARD_CSS, notice_alert
from .i18n import LabelDictionary, fmt_percent, labels_for, t
from .state import DashboardState

WHATIF_CSS = """
.field-error { color: #b3261e; font-size: 12.5px; overflow-wrap: anywhere; }
ul.whatif-reasons { margin: 4px 0; padding-left: 18px; font-size: 13.5px; }
ul.whatif-reasons li.risk::marker { color: #b3261e; }
ul.whatif-reasons li.strength::marker { color: #1b7f3b; }
.whatif-line { font-size: 14px; margin: 2px 0; }
.whatif-line.before, .whatif-changed { color: #55606e; font-size: 13px; }
"""
FIELD_WIDTH = 220


def field_label(field: ApplicationField, language: str) -> str:
    """A field's label in the language, with the unit it is typed in (years for days before the application)."""
    text = field.label if language == "en" else field.label_fr
    return f"{text} ({t('years_unit', language)})" if field.unit == "negative_days" else text


def error_html(errors: dict, column: str, language: str = "fr") -> str:
    """The service's refusal of a field (its own words), escaped: it quotes the value typed."""
    reason = errors.get(column)
    if not reason:
        return ""
    return f'<div class="field-error" role="alert">{html.escape(t("field_refused", language, reason=reason))}</div>'


def assessment_html(assessment: Assessment | None, baseline: Assessment | None, fields: list[ApplicationField],
                    language: str, labels: LabelDictionary) -> str:
    """The changed application's decision, probability and reasons, and the file's as it stands."""
    if assessment is None:
        return f'<p class="placeholder">{t("advice_loading", language)}</p>' if baseline is not None else ""

    def word(decision: str) -> str:
        return labels.category_label("decision", decision, language)

    line = t("whatif_result", language, decision=word(assessment.decision),
             probability=fmt_percent(assessment.default_probability, language))
    review = f' <span class="review-badge">{t("review", language)}</span>' if assessment.review else ""
    parts = [f'<p class="whatif-line whatif-probability {assessment.decision}">{html.escape(line)}{review}</p>']
    if baseline is not None:
        before = t("whatif_before", language, decision=word(baseline.decision),
                   probability=fmt_percent(baseline.default_probability, language))
        parts.append(f'<p class="whatif-line before">{html.escape(before)}</p>')
    if assessment.changes:
        names = {f.column: field_label(f, language) for f in fields}
        changed = ", ".join(names.get(c, c) for c in sorted(assessment.changes))
        parts.append(f'<p class="whatif-changed">{html.escape(t("whatif_changed", language, fields=changed))}</p>')
    if assessment.reasons:
        items = "".join(f'<li class="{"risk" if r.direction == "risk" else "strength"}">{html.escape(r.text)}</li>'
                        for r in assessment.reasons)
        parts.append(f'<ul class="whatif-reasons">{items}</ul>')
    return "".join(parts)


class FieldForm:
    """One widget per field (a number box, or a choice of categories), each with the service's refusal under it;
    `on_change(column, value)` is called when the advisor changes a value."""

    def __init__(self, fields: list[ApplicationField], values: dict, errors_param, language_param,
                 labels: LabelDictionary, on_change, prefix: str):
        self.widgets: dict[str, pn.widgets.Widget] = {}
        cells = []
        for f in fields:
            name = pn.bind(field_label, f, language_param)
            css = [f"{prefix}-field", f"{prefix}-{f.column}"]
            if f.kind == "category":
                def options(language, f=f):
                    return {"—": None, **{labels.category_label(f.column, c, language): c for c in f.categories}}
                widget = pn.widgets.Select(label=name, options=pn.bind(options, language_param),
                                           value=values.get(f.column), width=FIELD_WIDTH, css_classes=css)
            else:
                widget = pn.widgets.FloatInput(label=name, value=values.get(f.column), width=FIELD_WIDTH,
                                               css_classes=css)
            widget.param.watch(lambda event, column=f.column: on_change(column, event.new), "value")
            error = pn.pane.HTML(pn.bind(error_html, errors_param, f.column, language_param),
                                 stylesheets=[WHATIF_CSS], css_classes=[f"{prefix}-error-{f.column}"],
                                 width=FIELD_WIDTH, margin=(0, 10))
            self.widgets[f.column] = widget
            cells.append(pn.Column(widget, error, width=FIELD_WIDTH + 20))
        self.layout = pn.FlexBox(*cells, sizing_mode="stretch_width")

    def show(self, values: dict) -> None:
        """Put `values` in the widgets (a new client opened, a reset, a form emptied)."""
        for column, widget in self.widgets.items():
            value = values.get(column)
            if widget.value != value:
                widget.value = value


class WhatIfView(pn.viewable.Viewer):
    """A button to start; then the loan's and the profile's fields of the open file, and the result beside them."""

    state = param.ClassSelector(class_=DashboardState)

    def __init__(self, **params):
        super().__init__(**params)
        whatif, lang = self.state.whatif, self.state.param.language
        self.labels = labels_for(self.state.service)
        self.start = pn.widgets.Button(label=pn.bind(lambda l: t("whatif_start", l), lang), color="primary",
                                       css_classes=["whatif-start"],
                                       visible=pn.bind(lambda a: not a, whatif.param.active),
                                       disabled=pn.bind(lambda f: f is None, self.state.client.param.file))
        self.start.on_click(lambda event: setattr(whatif, "active", True))
        self.reset = pn.widgets.Button(label=pn.bind(lambda l: t("whatif_reset", l), lang),
                                       css_classes=["whatif-reset"])
        self.reset.on_click(lambda event: whatif.reset())
        self.help = pn.pane.HTML(pn.bind(lambda l: f'<p class="note">{t("whatif_help", l)}</p>', lang),
                                 stylesheets=[CARD_CSS], margin=(0, 5))
        self.result = pn.pane.HTML(
            pn.bind(lambda a, b, fields, l: assessment_html(a, b, fields, l, self.labels), whatif.param.assessment,
                    whatif.param.baseline, whatif.param.fields, lang),
            stylesheets=[CARD_CSS, WHATIF_CSS], css_classes=["whatif-result"], sizing_mode="stretch_width",
            margin=(0, 5))
        self.notice = notice_alert(whatif.param.notice, lang)
        self.form: FieldForm | None = None
        self.body = pn.Column(sizing_mode="stretch_width", visible=whatif.param.active)
        whatif.param.watch(self._values_changed, "values")
        whatif.param.watch(self._fields_changed, "fields")
        if whatif.fields:
            self._fields_changed()

    def _fields_changed(self, event=None) -> None:
        whatif = self.state.whatif
        self.form = FieldForm(whatif.fields, whatif.values, whatif.param.errors, self.state.param.language,
                              self.labels, whatif.set_value, "whatif")
        self.body.objects = [self.help, self.form.layout, self.reset, self.notice, self.result]

    def _values_changed(self, event) -> None:
        if self.form is not None:
            self.form.show(event.new)

    def __panel__(self):
        return pn.Column(self.start, self.body, sizing_mode="stretch_width", css_classes=["whatif"])


class NewApplicationView(pn.viewable.Viewer):
    """A button to start; then the application's fields and a button that scores it and saves the new file."""

    state = param.ClassSelector(class_=DashboardState)

    def __init__(self, **params):
        super().__init__(**params)
        new, lang = self.state.new_application, self.state.param.language
        self.labels = labels_for(self.state.service)
        self.start = pn.widgets.Button(label=pn.bind(lambda l: t("new_application", l), lang),
                                       css_classes=["new-application-start"],
                                       visible=pn.bind(lambda a: not a, new.param.active))
        self.start.on_click(lambda event: setattr(new, "active", True))
        self.create = pn.widgets.Button(label=pn.bind(lambda l: t("new_application_create", l), lang),
                                        color="primary", css_classes=["new-application-create"])
        self.create.on_click(lambda event: new.create())
        self.help = pn.pane.HTML(pn.bind(lambda l: f'<p class="note">{t("new_application_help", l)}</p>', lang),
                                 stylesheets=[CARD_CSS], margin=(0, 5))
        self.notice = notice_alert(new.param.notice, lang)
        self.form: FieldForm | None = None
        self.body = pn.Column(sizing_mode="stretch_width", visible=new.param.active)
        new.param.watch(self._values_changed, "values")
        new.param.watch(self._fields_changed, "fields")
        if new.fields:
            self._fields_changed()

    def _fields_changed(self, event=None) -> None:
        new = self.state.new_application
        self.form = FieldForm(new.fields, new.values, new.param.errors, self.state.param.language, self.labels,
                              new.set_value, "new")
        self.body.objects = [self.help, self.form.layout, self.create, self.notice]

    def _values_changed(self, event) -> None:
        if self.form is not None:
            self.form.show(event.new)

    def __panel__(self):
        return pn.Column(self.start, self.body, sizing_mode="stretch_width", css_classes=["new-application"])
