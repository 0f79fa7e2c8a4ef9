"""The decision file of an advisor's recorded decision, as an HTML page and as a PDF document (fpdf2): the
application as scored, the model and its version, the probability, the threshold and the review band, the reasons,
the offer the decision was taken on, the trust flags, the advisor, the time and the justification.

Everything in it is read from the `DecisionRecord` as stored: the file says what the advisor saw and decided, not
what the model would say today. The justification and the application are user input: escaped in HTML, plain text
in the PDF (fpdf2 interprets no markup unless asked to).
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from fpdf import FPDF, XPos, YPos

from .contracts import DecisionRecord
from .labels import LabelDictionary, flag_text, fmt_percent

FONT_ENV = "SCORING_PDF_FONT"   # a TTF font with the characters advisors type (default: Debian's DejaVu Sans)
FONT_PATH = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")   # fonts-dejavu-core

TEXTS: dict[str, tuple[str, str]] = {
    "title": ("Dossier de décision", "Decision file"),
    "client": ("Client", "Client"),
    "decision_id": ("Décision n°", "Decision no."),
    "at": ("Date (UTC)", "Time (UTC)"),
    "advisor": ("Conseiller", "Advisor"),
    "final_decision": ("Décision du conseiller", "Advisor's decision"),
    "model_decision": ("Décision du modèle", "Model's decision"),
    "override": ("Le conseiller a décidé autrement que le modèle.", "The advisor departed from the model's decision."),
    "justification": ("Justification", "Justification"),
    "score": ("Score", "Score"),
    "probability": ("Probabilité de défaut", "Default probability"),
    "threshold": ("Seuil de refus", "Refusal threshold"),
    "review_band": ("Zone « à étudier »", "Review band"),
    "review_band_value": ("seuil ± {band} : {verdict}", "threshold ± {band}: {verdict}"),
    "in_band": ("dans la zone", "within the band"),
    "out_band": ("hors de la zone", "outside the band"),
    "model_version": ("Version du modèle", "Model version"),
    "model": ("Modèle", "Model"),
    "model_production": ("modèle de production", "production model"),
    "model_fold": ("modèle de validation croisée {k} (le dossier n'a pas servi à l'entraîner)",
                   "cross-fitting model {k} (not trained on this file)"),
    "reasons": ("Motifs principaux", "Principal reasons"),
    "no_reasons": ("Aucun motif enregistré.", "No reason recorded."),
    "offer": ("Offre retenue", "Offer decided on"),
    "no_offer": ("Aucune : la demande telle que déposée.", "None: the application as filed."),
    "flags": ("Points de vigilance", "Trust flags"),
    "no_flags": ("Aucun.", "None."),
    "inputs": ("Données de la demande, telles que notées", "The application, as scored"),
    "column": ("Donnée", "Field"),
    "value": ("Valeur", "Value"),
    "none": ("—", "—"),
    "footer": ("Document généré à partir du registre des décisions (non modifiable).",
               "Generated from the decision log (append-only)."),
}


def text(key: str, lang: str, **values) -> str:
    fr, en = TEXTS[key]
    return (en if lang == "en" else fr).format(**values)


def _lines(record: DecisionRecord, labels: LabelDictionary, lang: str) -> dict:
    """The file's content as plain texts, shared by the HTML and the PDF."""
    word = lambda d: labels.category_label("decision", d, lang)  # noqa: E731
    model = (text("model_production", lang) if record.model == "production"
             else text("model_fold", lang, k=record.model.removeprefix("fold ").strip()))
    verdict = text("in_band" if record.review else "out_band", lang)
    head = [
        (text("client", lang), str(record.client_id)),
        (text("decision_id", lang), str(record.id)),
        (text("at", lang), record.at[:19].replace("T", " ")),
        (text("advisor", lang), record.advisor or text("none", lang)),
        (text("final_decision", lang), word(record.decision)),
        (text("model_decision", lang), word(record.model_decision)),
    ]
    score = [
        (text("probability", lang), fmt_percent(record.default_probability, lang, 2)),
        (text("threshold", lang), fmt_percent(record.threshold, lang, 2)),
        (text("review_band", lang), text("review_band_value", lang, band=fmt_percent(record.review_band, lang, 1),
                                         verdict=verdict)),
        (text("model_version", lang), record.model_version),
        (text("model", lang), model),
    ]
    offer = [(labels.label(k, lang), labels.format_value(k, v, lang)) for k, v in sorted((record.offer or {}).items())]
    inputs = [(labels.label(k, lang), k, labels.format_value(k, v, lang)) for k, v in sorted(record.application.items())]
    return {"head": head, "score": score, "offer": offer, "inputs": inputs, "reasons": list(record.reasons),
            "flags": [flag_text(f, labels, lang) for f in record.flags],
            "override": record.decision != record.model_decision,
            "justification": record.justification or text("none", lang)}


# ------------------------------------------------------------------------------------------------ HTML
_CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 2em auto; max-width: 52em; color: #1d2733; }
h1 { font-size: 1.5em; } h2 { font-size: 1.1em; margin-top: 1.4em; border-bottom: 1px solid #ccd; }
table { border-collapse: collapse; width: 100%; } td, th { text-align: left; padding: 2px 8px; vertical-align: top; }
th { color: #55606e; font-weight: normal; width: 40%; }
.justification { white-space: pre-wrap; overflow-wrap: anywhere; font-style: italic; }
code { color: #55606e; } footer { margin-top: 2em; color: #55606e; font-size: 0.85em; }
"""


def decision_file_html(record: DecisionRecord, labels: LabelDictionary, lang: str = "fr") -> str:
    """The decision file as one self-contained HTML page; every value escaped."""
    e = html.escape
    c = _lines(record, labels, lang)

    def pairs(rows) -> str:
        return "<table>" + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows) + "</table>"

    def items(rows, empty_key) -> str:
        if not rows:
            return f"<p>{e(text(empty_key, lang))}</p>"
        return "<ul>" + "".join(f"<li>{e(r)}</li>" for r in rows) + "</ul>"

    override = f"<p><strong>{e(text('override', lang))}</strong></p>" if c["override"] else ""
    offer = pairs(c["offer"]) if c["offer"] else f"<p>{e(text('no_offer', lang))}</p>"
    inputs = ("<table><tr><th>" + e(text("column", lang)) + "</th><th>" + e(text("value", lang)) + "</th></tr>"
              + "".join(f"<tr><td>{e(label)} <code>{e(column)}</code></td><td>{e(value)}</td></tr>"
                        for label, column, value in c["inputs"]) + "</table>")
    title = f"{text('title', lang)} — {text('client', lang)} {record.client_id}, {text('decision_id', lang)} {record.id}"
    return f"""<!DOCTYPE html>
<html lang="{e(lang)}"><head><meta charset="utf-8"><title>{e(title)}</title><style>{_CSS}</style></head>
<body class="decision-file">
<h1>{e(title)}</h1>
{pairs(c["head"])}
{override}
<h2>{e(text("justification", lang))}</h2>
<p class="justification">{e(c["justification"])}</p>
<h2>{e(text("score", lang))}</h2>
{pairs(c["score"])}
<h2>{e(text("reasons", lang))}</h2>
{items(c["reasons"], "no_reasons")}
<h2>{e(text("offer", lang))}</h2>
{offer}
<h2>{e(text("flags", lang))}</h2>
{items(c["flags"], "no_flags")}
<h2>{e(text("inputs", lang))}</h2>
{inputs}
<footer>{e(text("footer", lang))}</footer>
</body></html>
"""


# ------------------------------------------------------------------------------------------------ PDF
def pdf_font() -> Path | None:
    """The TTF font of the PDF: `SCORING_PDF_FONT`, else DejaVu Sans when installed, else None (fpdf2's core
    Helvetica: Latin-1 only, other characters become "?")."""
    configured = os.environ.get(FONT_ENV)
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{FONT_ENV}={configured}: no such font file")
        return path
    return FONT_PATH if FONT_PATH.is_file() else None


class _Document(FPDF):
    def __init__(self, lang: str):
        super().__init__(format="A4")
        self.lang = lang
        font = pdf_font()
        if font is None:
            self.family, self.unicode = "Helvetica", False
        else:
            # one face: parsing a TTF costs ~250 ms, so headings differ by size and colour, not by a bold face
            self.family, self.unicode = "DejaVu", True
            self.add_font("DejaVu", "", str(font))
        self.set_auto_page_break(True, margin=15)
        self.alias_nb_pages()

    def safe(self, value: str) -> str:
        if self.unicode:
            return value
        value = value.replace("\u202f", "\u00a0").replace("—", "-").replace("’", "'").replace("•", "-")
        return value.encode("latin-1", "replace").decode("latin-1")

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.family, "", 7)
        self.cell(0, 5, self.safe(f"{text('footer', self.lang)}  {self.page_no()}/{{nb}}"), align="C")

    def heading(self, value: str, size: int = 12) -> None:
        self.ln(2)
        self.set_font(self.family, "", size)
        self.set_text_color(20, 60, 120)
        self.multi_cell(0, 7, self.safe(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0, 0, 0)
        self.set_font(self.family, "", 10)

    def paragraph(self, value: str) -> None:
        self.multi_cell(0, 5, self.safe(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def pairs(self, rows, widths=(60, 120)) -> None:
        with self.table(col_widths=widths, first_row_as_headings=False, text_align="LEFT", line_height=5,
                        borders_layout="HORIZONTAL_LINES") as table:
            for row in rows:
                cells = table.row()
                for value in row:
                    cells.cell(self.safe(value))


def decision_file_pdf(record: DecisionRecord, labels: LabelDictionary, lang: str = "fr") -> bytes:
    """The decision file as a PDF document (A4)."""
    c = _lines(record, labels, lang)
    pdf = _Document(lang)
    title = f"{text('title', lang)} — {text('client', lang)} {record.client_id}"
    pdf.set_title(pdf.safe(title))
    pdf.set_author(pdf.safe(record.advisor or ""))
    pdf.add_page()
    pdf.heading(title, 15)
    pdf.pairs(c["head"])
    if c["override"]:
        pdf.ln(1)
        pdf.set_text_color(150, 40, 30)
        pdf.paragraph(text("override", lang))
        pdf.set_text_color(0, 0, 0)
    pdf.heading(text("justification", lang))
    pdf.paragraph(c["justification"])
    pdf.heading(text("score", lang))
    pdf.pairs(c["score"])
    pdf.heading(text("reasons", lang))
    for reason in c["reasons"] or [text("no_reasons", lang)]:
        pdf.paragraph(f"• {reason}" if c["reasons"] else reason)
    pdf.heading(text("offer", lang))
    if c["offer"]:
        pdf.pairs(c["offer"])
    else:
        pdf.paragraph(text("no_offer", lang))
    pdf.heading(text("flags", lang))
    for flag in c["flags"] or [text("no_flags", lang)]:
        pdf.paragraph(f"• {flag}" if c["flags"] else flag)
    pdf.heading(text("inputs", lang))
    pdf.set_font(pdf.family, "", 8)
    pdf.pairs([(text("column", lang), text("value", lang))]
              + [(f"{label} ({column})", value) for label, column, value in c["inputs"]], widths=(120, 60))
    return bytes(pdf.output())
