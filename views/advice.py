"""The advisor's answer to the client: the reasons of the decision, an acceptable offer, similar past applicants,
and the advisor's decision form with the decisions recorded (advisors only; `views.state.AdviceState` holds it)."""

from __future__ import annotations

import html
import io

import panel as pn
import param

from scoring.contracts import MAX_JUSTIFICATION, DecisionRecord, Offer, Offers, Peers, Reasons, TrustFlag
from scoring.labels import flag_text

from .common import CARD_CSS, notice_alert
from .i18n import LabelDictionary, fmt_money, fmt_number, fmt_percent, labels_for, t
from .state import DashboardState

ADVICE_CSS = """
ul.reasons, ul.offers, ul.decisions { margin: 4px 0; padding-left: 18px; font-size: 13.5px; }
ul.reasons li.risk::marker { color: #b3261e; }
ul.reasons li.strength::marker { color: #1b7f3b; }
.peers-line { font-size: 13.5px; }
.justification { font-style: italic; color: #55606e; white-space: pre-wrap; overflow-wrap: anywhere; }
.decision-offer { font-size: 12.5px; color: #1d2733; }
ul.trust-flags { margin: 2px 0 6px 0; padding-left: 18px; font-size: 12.5px; color: #7a4b00; }
ul.trust-flags li::marker { content: "⚠ "; }
"""


def _placeholder(language: str, loading: bool) -> str:
    return f'<p class="placeholder">{t("advice_loading" if loading else "no_client", language)}</p>'


def reasons_html(reasons: Reasons | None, language: str, loading: bool = False) -> str:
    """The principal reasons, their texts escaped (they quote the client's values)."""
    if reasons is None:
        return _placeholder(language, loading)
    if not reasons.reasons:
        return f'<p class="note">{t("no_reasons", language)}</p>'
    items = "".join(f'<li class="{"risk" if r.direction == "risk" else "strength"}">{html.escape(r.text)}</li>'
                    for r in reasons.reasons)
    return f'<ul class="reasons">{items}</ul>'


def _in_language(message: str, language: str) -> str:
    """The service's messages are "French / English": the part of the language shown."""
    parts = message.split(" / ")
    return (parts[1] if language == "en" else parts[0]) if len(parts) == 2 else message


def offer_text(o: Offer, language: str, labels: LabelDictionary) -> str:
    """One offer as an advisor says it (plain text), amounts in the dataset's currency."""
    currency = labels.currency
    amount = fmt_money(o.credit_amount, language, currency)
    probability = fmt_percent(o.default_probability, language)
    if o.term_months is not None:
        text = t("offer_line", language, amount=amount, term=fmt_number(o.term_months, language), probability=probability)
    else:
        text = t("offer_line_no_term", language, amount=amount, probability=probability)
    extras = []
    if o.annuity is not None:
        extras.append(t("offer_annuity", language, amount=fmt_money(o.annuity, language, currency)))
    if o.down_payment > 0:
        extras.append(t("offer_down_payment", language, amount=fmt_money(o.down_payment, language, currency)))
    return ", ".join([text, *extras])


def offers_html(offers: Offers | None, language: str, labels: LabelDictionary, loading: bool = False) -> str:
    """Each offer as an advisor says it, amounts in the dataset's currency; or the service's message."""
    if offers is None:
        return _placeholder(language, loading)
    if not offers.offers:
        return f'<p class="note offers-message">{html.escape(_in_language(offers.message or "", language))}</p>'
    items = [f'<li class="offer">{html.escape(offer_text(o, language, labels))}</li>' for o in offers.offers]
    return f'<ul class="offers">{"".join(items)}</ul>'


def offer_options(offers: Offers | None, language: str, labels: LabelDictionary) -> dict[str, int]:
    """What the decision is taken on: the application as filed (-1), or one of the offers (its index)."""
    options = {t("offer_as_filed", language): -1}
    for i, o in enumerate(offers.offers if offers is not None else ()):
        options[f"{i + 1}. {offer_text(o, language, labels)}"] = i
    return options


def flags_html(flags: list[TrustFlag], language: str, labels: LabelDictionary) -> str:
    """The trust flags next to the score; nothing when there is none."""
    if not flags:
        return ""
    items = "".join(f'<li class="trust-flag" data-kind="{html.escape(f.kind)}" '
                    f'title="{html.escape(", ".join(f.features))}">{html.escape(flag_text(f, labels, language))}</li>'
                    for f in flags)
    return f'<div class="trust"><h4>{t("flags", language)}</h4><ul class="trust-flags">{items}</ul></div>'


def peers_html(peers: Peers | None, language: str, loading: bool = False) -> str:
    if peers is None:
        return _placeholder(language, loading)
    text = t("peers_line", language, k=peers.k, rate=fmt_percent(peers.default_rate, language),
             probability=fmt_percent(peers.default_probability, language))
    return f'<p class="peers-line">{html.escape(text)}</p>'


def decisions_html(decisions: list[DecisionRecord], language: str, labels: LabelDictionary) -> str:
    """The decisions recorded on the file, oldest first; advisor and justification escaped."""
    if not decisions:
        return f'<p class="note">{t("no_decisions", language)}</p>'

    def word(decision: str) -> str:
        return labels.category_label("decision", decision, language)

    items = []
    for d in decisions:
        line = t("decision_by", language, at=d.at[:16].replace("T", " "), advisor=d.advisor or "—",
                 decision=word(d.decision), model=word(d.model_decision))
        review = f' <span class="review-badge">{t("review", language)}</span>' if d.review else ""
        offer = ""
        if d.offer:
            changes = ", ".join(f"{labels.label(k, language)} {labels.format_value(k, v, language)}"
                                for k, v in sorted(d.offer.items()))
            offer = f'<div class="decision-offer">{html.escape(t("on_offer", language, offer=changes))}</div>'
        why = f'<div class="justification">{html.escape(d.justification)}</div>' if d.justification else ""
        items.append(f'<li class="decision-record" data-decision-id="{int(d.id)}">{html.escape(line)}{review}{offer}'
                     f'{why}</li>')
    return f'<ul class="decisions">{"".join(items)}</ul>'


class AdviceView(pn.viewable.Viewer):
    """Reasons and offer side by side, similar applicants, then the decision form and the decisions recorded."""

    state = param.ClassSelector(class_=DashboardState)

    def __init__(self, **params):
        super().__init__(**params)
        advice, lang = self.state.advice, self.state.param.language
        labels = labels_for(self.state.service)
        styles = [CARD_CSS, ADVICE_CSS]

        def pane(function, *refs, css):
            return pn.pane.HTML(pn.bind(function, *refs), stylesheets=styles, css_classes=[css],
                                sizing_mode="stretch_width", margin=(0, 5))

        def title(key):
            return pn.pane.HTML(pn.bind(lambda l: f"<h4>{t(key, l)}</h4>", lang), stylesheets=styles, margin=(0, 5))

        self.reasons = pane(reasons_html, advice.param.reasons, lang, advice.param.loading, css="reasons-pane")
        self.offers = pane(lambda o, l, loading: offers_html(o, l, labels, loading), advice.param.offers, lang,
                           advice.param.loading, css="offers-pane")
        self.peers = pane(peers_html, advice.param.peers, lang, advice.param.loading, css="peers-pane")
        self.decisions = pane(lambda d, l: decisions_html(d, l, labels), advice.param.decisions, lang,
                              css="decisions-pane")

        def choices(language, file, offer, offers):
            model = advice.model_decision
            if model is None:
                return {t("follow_model", language, decision="—"): "follow",
                        t("override_model", language, decision="—"): "override"}
            other = "accepted" if model == "refused" else "refused"
            word = lambda d: labels.category_label("decision", d, language)  # noqa: E731
            return {t("follow_model", language, decision=word(model)): "follow",
                    t("override_model", language, decision=word(other)): "override"}

        self.choice = pn.widgets.RadioBoxGroup.from_param(
            advice.param.choice, options=pn.bind(choices, lang, self.state.client.param.file, advice.param.offer,
                                                 advice.param.offers), inline=False,
            name="", css_classes=["decision-choice"])
        self.justification = pn.widgets.TextAreaInput.from_param(
            advice.param.justification, name=pn.bind(lambda l: t("justification", l), lang), height=80,
            max_length=MAX_JUSTIFICATION, sizing_mode="stretch_width", css_classes=["justification-input"])
        self.button = pn.widgets.Button(label=pn.bind(lambda l: t("record_decision", l), lang), color="primary",
                                        css_classes=["record-decision"],
                                        disabled=pn.bind(lambda f: f is None, self.state.client.param.file))
        self.button.on_click(lambda event: advice.record())
        self.notice = notice_alert(advice.param.notice, lang)
        self.titles = {key: title(key) for key in ("reasons", "offers", "peers", "decision", "decisions_recorded")}

        # What the decision is taken on: the application as filed, or one of the offers. The options are the labels,
        # mapped to the offer's index here: served (Panel 1.9), this widget given a bound dict of options sent back a
        # label as its value.
        def offer_labels(offers, language):
            return list(offer_options(offers, language, labels))

        def chosen(event):
            options = offer_options(advice.offers, self.state.language, labels)
            advice.offer = options.get(event.new, -1) if isinstance(event.new, str) else -1

        def shown(event):
            options = {i: label for label, i in offer_options(advice.offers, self.state.language, labels).items()}
            self.offer.value = options.get(-1 if event.new is None else event.new, options[-1])

        self.offer = pn.widgets.RadioBoxGroup(
            options=pn.bind(offer_labels, advice.param.offers, lang), inline=False, css_classes=["offer-choice"],
            visible=pn.bind(lambda o: o is not None and bool(o.offers), advice.param.offers))
        self.offer.param.watch(chosen, "value")
        advice.param.watch(shown, "offer")
        self.offer_title = pn.pane.HTML(pn.bind(lambda l: f"<b>{t('decide_on', l)}</b>", lang), margin=(0, 5),
                                        visible=self.offer.param.visible)
        # the decision file of a recorded decision: the latest by default, any of the list
        def file_choices(decisions, language):
            word = lambda d: labels.category_label("decision", d, language)  # noqa: E731
            return {t("file_choice", language, id=d.id, at=d.at[:16].replace("T", " "), decision=word(d.decision)): d.id
                    for d in reversed(decisions)}

        def download():
            found = advice.decision_file()
            if found is None:   # the notice says why
                raise RuntimeError("the decision file could not be produced")
            # the name is set here, not bound: the widget sets its own filename on each transfer, which would
            # drop a bound reference after the first download
            self.download.filename = found.filename
            return io.BytesIO(found.content)

        has_decisions = pn.bind(bool, advice.param.decisions)
        self.file_choice = pn.widgets.Select.from_param(
            advice.param.file_decision, options=pn.bind(file_choices, advice.param.decisions, lang),
            name=pn.bind(lambda l: t("file_of", l), lang), css_classes=["file-choice"], width=260)
        self.file_format = pn.widgets.RadioButtonGroup.from_param(
            advice.param.file_format, options={"PDF": "pdf", "HTML": "html"}, name="", css_classes=["file-format"],
            align="end")
        self.download = pn.widgets.FileDownload(
            callback=download, filename="decision.pdf",
            label=pn.bind(lambda l, f: t("download_file", l, format=f.upper()), lang, advice.param.file_format),
            color="primary", align="end",
            css_classes=["download-decision-file"])
        self.file_row = pn.Row(self.file_choice, self.file_format, self.download, visible=has_decisions,
                               sizing_mode="stretch_width")
        self.file_title = pn.pane.HTML(pn.bind(lambda l: f"<h4>{t('decision_file', l)}</h4>", lang),
                                       stylesheets=styles, margin=(0, 5), visible=has_decisions)

    def __panel__(self):
        titles = self.titles
        return pn.Column(
            pn.Row(pn.Column(titles["reasons"], self.reasons, sizing_mode="stretch_width"),
                   pn.Column(titles["offers"], self.offers, sizing_mode="stretch_width"), sizing_mode="stretch_width"),
            titles["peers"], self.peers,
            titles["decision"], self.notice, self.offer_title, self.offer, self.choice, self.justification, self.button,
            titles["decisions_recorded"], self.decisions, self.file_title, self.file_row,
            sizing_mode="stretch_width", css_classes=["advice"])
