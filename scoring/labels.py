"""The bank's label dictionary: for every column and feature its French and English label, unit and display
kind, the translations of category values, and how a value reads to an advisor in each language.

One dictionary, like Shapash's features dictionary, read by every screen, API text and decision text. The
built-in entries (the whole Home Credit application table, the engineered features, the client files'
business columns) live in ``resources/labels.toml``; a dataset's TOML schema adds or overrides entries in a
``[labels]`` table (see `scoring.schema`). Plain Python and no locale database: the server's OS locale must
not change what advisors read.

    >>> format_value("DAYS_BIRTH", -12000)
    '32,9\\xa0ans'
    >>> category_label("NAME_CONTRACT_TYPE", "Revolving loans", "en")
    'Revolving loan'
"""

from __future__ import annotations

import json
import math
import numbers
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from importlib import resources
from typing import Any

LANGUAGES = ("fr", "en")
#: how a value reads (see resources/labels.toml for each kind's meaning)
KINDS = ("days", "years", "months", "ratio", "amount", "count", "flag", "category", "score", "hour", "number", "id")
NBSP = "\u00a0"          # before a unit or a percent sign in French
THIN = "\u202f"          # French thousands separator (narrow no-break space, as in CLDR)
DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = DAYS_PER_YEAR / 12

NOT_GIVEN = {"fr": "non renseigné", "en": "not given"}
_YES_NO = {"fr": ("Oui", "Non"), "en": ("Yes", "No")}
_TRUE_TEXT = {"Y", "YES", "TRUE", "1", "1.0"}
_FALSE_TEXT = {"N", "NO", "FALSE", "0", "0.0"}
# unit -> (French singular, French plural, English singular, English plural)
_UNIT_WORDS = {"years": ("an", "ans", "year", "years"), "months": ("mois", "mois", "month", "months"),
               "days": ("jour", "jours", "day", "days")}
_DEFAULT_UNITS = {"days": "years", "years": "years", "months": "months", "ratio": "%", "hour": "h"}
_DEFAULT_DECIMALS = {"days": 1, "years": 1, "months": 0, "ratio": 1, "amount": 0, "count": 0, "score": 2}
_CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥"}


# ------------------------------------------------------------------------------------------------ numbers

def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    if isinstance(value, numbers.Real):
        return not math.isfinite(float(value))
    try:
        return bool(value != value)          # NaN-like objects
    except (TypeError, ValueError):          # pandas.NA refuses to be a bool: it is missing
        return True


def _lang(lang: str) -> str:
    if lang not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}; got {lang!r}")
    return lang


def fmt_number(value: float | None, lang: str = "fr", decimals: int = 0) -> str:
    """`12 345,67` (fr) or `12,345.67` (en); an em dash for a missing value."""
    if _missing(value):
        return "—"
    text = f"{float(value):,.{decimals}f}"
    if text in ("-0", "-0." + "0" * decimals):
        text = text[1:]
    if lang == "en":
        return text
    return text.replace(",", THIN).replace(".", ",")


def fmt_money(value: float | None, lang: str = "fr", currency: str | None = None, decimals: int = 0) -> str:
    """An amount: `12 345 €` (fr) or `€12,345` (en) with `currency="EUR"`; the bare number without a currency.

    ISO codes with a common symbol (EUR, USD, GBP, JPY) show the symbol; other codes show as given
    (`12 345 KZT`, `KZT 12,345`)."""
    if _missing(value):
        return "—"
    number = fmt_number(abs(value), lang, decimals)
    sign = "-" if value < 0 else ""
    if not currency:
        return f"{sign}{number}"
    symbol = _CURRENCY_SYMBOLS.get(currency.upper(), currency)
    if lang == "fr":
        return f"{sign}{number}{NBSP}{symbol}"
    return f"{sign}{symbol}{number}" if symbol != currency else f"{sign}{symbol}{NBSP}{number}"


def fmt_percent(share: float | None, lang: str = "fr", decimals: int = 1) -> str:
    """A share (0.123) as a percentage: `12,3 %` (fr) or `12.3%` (en)."""
    if _missing(share):
        return "—"
    number = fmt_number(100.0 * float(share), lang, decimals)
    return f"{number}{NBSP}%" if lang == "fr" else f"{number}%"


def fmt_value(value: Any, lang: str = "fr") -> str:
    """A value of unknown kind, with as many decimals as its size calls for."""
    if _missing(value):
        return NOT_GIVEN[_lang(lang)]
    if isinstance(value, str):
        return value
    v = float(value)
    if v.is_integer():
        return fmt_number(v, lang, 0)
    magnitude = abs(v)
    decimals = 0 if magnitude >= 100 else 1 if magnitude >= 10 else 2 if magnitude >= 1 else 3
    return fmt_number(v, lang, decimals)


def _with_unit(value: float, decimals: int, unit: str, lang: str) -> str:
    text = fmt_number(value, lang, decimals)
    fr_one, fr_many, en_one, en_many = _UNIT_WORDS[unit]
    if lang == "fr":  # French takes the singular below two: "1,5 an"
        word = fr_one if abs(round(value, decimals)) < 2 else fr_many
    else:
        word = en_one if text in ("1", "-1") else en_many
    return f"{text}{NBSP}{word}"


# ------------------------------------------------------------------------------------------------ entries

@dataclass(frozen=True)
class Label:
    """One entry of the dictionary."""

    fr: str
    en: str
    kind: str = "number"
    #: the unit a value is shown in (days: "years", "months" or "days"; amount: a currency code)
    unit: str | None = None
    decimals: int | None = None
    #: values meaning "not given" (DAYS_EMPLOYED = 365243)
    missing: tuple[float, ...] = ()
    #: another key whose category translations apply (contract_type -> NAME_CONTRACT_TYPE)
    values: str | None = None

    def text(self, lang: str = "fr") -> str:
        return self.en if _lang(lang) == "en" else self.fr


_FIELDS = tuple(f.name for f in fields(Label))


def _humanize(name: str) -> str:
    text = name.replace("_", " ").strip().lower()
    return text[:1].upper() + text[1:]


def _check_entry(key: str, spec: Any) -> dict:
    """A [labels] entry, checked and normalised to JSON-able fields; ValueError says what is wrong."""
    where = f"[labels.{key}]"
    if isinstance(spec, str):  # shorthand: the French label
        spec = {"fr": spec}
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where} must be a table such as {{ fr = \"...\", en = \"...\", kind = \"amount\" }}")
    unknown = set(spec) - set(_FIELDS)
    if unknown:
        raise ValueError(f"{where} has unknown field(s) {', '.join(sorted(unknown))}; expected {', '.join(_FIELDS)}")
    out: dict[str, Any] = {}
    for name in ("fr", "en", "unit"):
        if name in spec:
            if not isinstance(spec[name], str) or not spec[name].strip():
                raise ValueError(f"{where} {name} must be a non-empty string")
            out[name] = spec[name]
    if "kind" in spec:
        if spec["kind"] not in KINDS:
            raise ValueError(f"{where} kind {spec['kind']!r} is not one of {', '.join(KINDS)}")
        out["kind"] = spec["kind"]
    if "decimals" in spec:
        d = spec["decimals"]
        if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 10:
            raise ValueError(f"{where} decimals must be a whole number from 0 to 10")
        out["decimals"] = d
    if "missing" in spec:
        m = spec["missing"] if isinstance(spec["missing"], list) else [spec["missing"]]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in m):
            raise ValueError(f"{where} missing must be a number or a list of numbers")
        out["missing"] = [float(v) for v in m]
    if "values" in spec:
        v = spec["values"]
        if isinstance(v, str):
            out["values"] = v
        elif isinstance(v, Mapping):
            out["values"] = {str(raw): _check_translation(f"{where} values.{raw}", t) for raw, t in v.items()}
        else:
            raise ValueError(f"{where} values must name another key or be a table of value = {{ fr, en }}")
    return out


def _check_translation(where: str, spec: Any) -> dict[str, str]:
    if isinstance(spec, str):
        spec = {"fr": spec}
    if (not isinstance(spec, Mapping) or not set(spec) <= {"fr", "en"} or "fr" not in spec
            or not all(isinstance(t, str) for t in spec.values())):
        raise ValueError(f"{where} must be a French text or {{ fr = \"...\", en = \"...\" }}")
    return dict(spec)


def check_overrides(overrides: Mapping[str, Any] | None) -> dict[str, dict]:
    """A dataset's [labels] table, checked and normalised (JSON-able: it is stored in the model card)."""
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise ValueError("[labels] must be a table of key = { fr = ..., en = ..., kind = ... }")
    return {str(key): _check_entry(str(key), spec) for key, spec in overrides.items()}


def _label(key: str, spec: Mapping[str, Any], base: Label | None = None) -> Label:
    given = {k: v for k, v in spec.items() if k != "values" or isinstance(v, str)}
    if "missing" in given:
        given["missing"] = tuple(given["missing"])
    if base is None:
        fr = given.get("fr") or given.get("en") or _humanize(key)
        base = Label(fr=fr, en=given.get("en") or _humanize(key))
    return replace(base, **given)


# ------------------------------------------------------------------------------------------------ dictionary

class LabelDictionary:
    """Labels, units, display kinds and category translations, looked up by column, feature or business key.

    Three namespaces share the keys: the dataset's columns and the model's features (``[columns]``,
    ``[features]``), the client files' business columns (``[client_file]``: ``income``, ``debt_ratio``...),
    and a dataset's own ``[labels]`` (overrides), which win over both. `label` finds business columns before
    dataset columns; model features (`feature_labels` with a schema's overrides) never take a business
    column's label, so a dataset's monthly ``income`` column is not called "yearly income".
    """

    def __init__(self, entries: Mapping[str, Label], business: Mapping[str, Label] | None = None,
                 values: Mapping[str, Mapping[str, Mapping[str, str]]] | None = None,
                 patterns: Mapping[str, tuple[tuple[re.Pattern, Mapping[str, str]], ...]] | None = None,
                 currency: str | None = None, overridden: frozenset[str] = frozenset()):
        self._entries = dict(entries)
        self._business = dict(business or {})
        self._values = {k: dict(v) for k, v in (values or {}).items()}
        self._patterns = dict(patterns or {})
        self._overridden = overridden
        #: the dataset's currency (ISO code) for amounts; None: amounts show no currency
        self.currency = currency
        self._derived: dict[str, LabelDictionary] = {}

    # ---------------------------------------------------------------- building
    @classmethod
    def from_toml(cls, text: str) -> "LabelDictionary":
        """Read the dictionary's TOML format (resources/labels.toml)."""
        doc = tomllib.loads(text)
        entries: dict[str, Label] = {}
        for section in ("columns", "features"):
            for key, spec in doc.get(section, {}).items():
                entries[key] = _label(key, _check_entry(key, spec))
        building = doc.get("building", {})
        for stat, s in building.get("statistics", {}).items():
            for block, b in building.get("blocks", {}).items():
                entries[f"{block}_{stat}"] = Label(f"{b['fr']} ({s['fr']})", f"{b['en']} ({s['en']})",
                                                   kind=building.get("kind", "number"))
        business = {key: _label(key, _check_entry(key, spec)) for key, spec in doc.get("client_file", {}).items()}
        values = {column: {raw: _check_translation(f"[values.{column}] {raw}", t) for raw, t in table.items()}
                  for column, table in doc.get("values", {}).items()}
        patterns = {column: tuple((re.compile(rx), _check_translation(f"[value_patterns.{column}]", t))
                                  for rx, t in table.items())
                    for column, table in doc.get("value_patterns", {}).items()}
        return cls(entries, business, values, patterns)

    def with_overrides(self, overrides: Mapping[str, Any] | None = None,
                       currency: str | None = None) -> "LabelDictionary":
        """This dictionary plus a dataset's ``[labels]`` table (and its currency, if given).

        An override inherits the fields it does not set from the entry it replaces: ``[labels.AMT_CREDIT]
        fr = "Montant emprunté"`` keeps the amount kind. ValueError for a malformed table."""
        checked = check_overrides(overrides)
        if not checked and currency is None:
            return self
        cache_key = json.dumps([checked, currency], sort_keys=True)
        cached = self._derived.get(cache_key)
        if cached is not None:
            return cached
        entries, values = dict(self._entries), {k: dict(v) for k, v in self._values.items()}
        for key, spec in checked.items():
            base = self._entries.get(key) or self._business.get(key)
            if base is None and key.endswith("_MISSING"):
                base = self._known(key, client_file=False)
            entries[key] = _label(key, spec, base)
            if isinstance(spec.get("values"), Mapping):
                values[key] = {**values.get(key, {}), **spec["values"]}
        out = LabelDictionary(entries, self._business, values, self._patterns,
                              currency if currency is not None else self.currency,
                              self._overridden | frozenset(checked))
        if len(self._derived) >= 32:  # datasets in one process are few; do not grow without bound
            self._derived.clear()
        self._derived[cache_key] = out
        return out

    # ---------------------------------------------------------------- lookups
    def _known(self, key: str, client_file: bool = True) -> Label | None:
        if key in self._overridden:
            return self._entries[key]
        if client_file and key in self._business:
            return self._business[key]
        if key in self._entries:
            return self._entries[key]
        if key.endswith("_MISSING"):
            base = self._known(key[: -len("_MISSING")], client_file)
            if base is not None:
                return Label(f"{base.fr} : non renseigné", f"{base.en}: not given", kind="flag")
        return None

    def __contains__(self, key: object) -> bool:
        """Whether `key` has a label of its own (not a readable version of its name)."""
        return isinstance(key, str) and self._known(key) is not None

    def keys(self) -> list[str]:
        """Every key with an entry: columns and features, then business columns."""
        return list(dict.fromkeys([*self._entries, *self._business]))

    def entry(self, key: str, client_file: bool = True) -> Label:
        """The entry of `key`; an unknown key gets a readable version of its name as label, kind "number".

        `client_file=False` looks `key` up as a dataset column or model feature only."""
        found = self._known(key, client_file)
        if found is not None:
            return found
        human = _humanize(key)
        if key.endswith("_MISSING"):
            base = _humanize(key[: -len("_MISSING")])
            return Label(f"{base} : non renseigné", f"{base}: not given", kind="flag")
        return Label(human, human)

    def label(self, key: str, lang: str = "fr") -> str:
        return self.entry(key).text(lang)

    def feature_labels(self, name: str, client_file: bool = True) -> tuple[str, str]:
        """(English, French) label of a feature."""
        e = self.entry(name, client_file)
        return e.en, e.fr

    def kind(self, key: str) -> str:
        return self.entry(key).kind

    def unit(self, key: str) -> str | None:
        """The unit a value of `key` is shown in: "years", "months", "%", a currency code, or None."""
        e = self.entry(key)
        if e.kind == "amount":
            return e.unit or self.currency
        return e.unit or _DEFAULT_UNITS.get(e.kind)

    # ---------------------------------------------------------------- categories
    def _translation(self, column: str, value: str) -> Mapping[str, str] | None:
        sources = [column]
        e = self._known(column)
        if e is not None and e.values:
            sources.append(e.values)
        for source in sources:
            found = self._values.get(source, {}).get(value)
            if found is not None:
                return found
        for source in sources:
            for rx, template in self._patterns.get(source, ()):
                m = rx.fullmatch(value)
                if m:
                    return {lang: m.expand(text) for lang, text in template.items()}
        return None

    def translates(self, column: str, value: str) -> bool:
        """Whether the dictionary has a translation of `column`'s category `value`."""
        return self._translation(column, str(value)) is not None

    def category_label(self, column: str, value: Any, lang: str = "fr") -> str:
        """A category value as an advisor reads it; unknown values are returned as given."""
        lang = _lang(lang)
        if _missing(value):
            return NOT_GIVEN[lang]
        text = str(value)
        found = self._translation(column, text)
        if found is None:
            return text
        return found["fr"] if lang == "fr" else found.get("en", text)

    # ---------------------------------------------------------------- values
    def format_value(self, key: str, value: Any, lang: str = "fr", currency: str | None = None) -> str:
        """The value as an advisor reads it: DAYS_* as positive years, ratios as %, amounts in the currency
        (`currency`, else the entry's unit, else the dictionary's; none by default), flags as Oui/Non,
        categories translated, a missing value as "non renseigné"."""
        lang = _lang(lang)
        e = self.entry(key)
        if _missing(value):
            return NOT_GIVEN[lang]
        if e.kind == "category":
            return self.category_label(key, value, lang)
        if e.kind == "flag":
            return self._flag(key, value, lang)
        if isinstance(value, str) or not isinstance(value, numbers.Real):
            return self.category_label(key, value, lang) if e.kind != "id" else str(value)
        v = float(value)
        if v in e.missing:
            return NOT_GIVEN[lang]
        decimals = e.decimals if e.decimals is not None else _DEFAULT_DECIMALS.get(e.kind)
        if e.kind == "id":
            return str(int(v)) if v.is_integer() else str(value)
        if e.kind == "days":  # days before the application: negative in the data, a positive duration here
            unit = e.unit or "years"
            per = {"years": DAYS_PER_YEAR, "months": DAYS_PER_MONTH, "days": 1.0}.get(unit)
            if per is None:
                raise ValueError(f"{key}: a days entry shows in years, months or days, not {unit!r}")
            if e.decimals is None and unit != "years":
                decimals = 0
            return _with_unit(-v / per, decimals, unit, lang)
        if e.kind in ("years", "months"):
            return _with_unit(v, decimals, e.kind, lang)
        if e.kind == "ratio":
            return fmt_percent(v, lang, decimals)
        if e.kind == "amount":
            return fmt_money(v, lang, currency or e.unit or self.currency, decimals)
        if e.kind == "hour":
            return f"{int(v)}{NBSP}h" if lang == "fr" else f"{int(v):02d}:00"
        if e.kind in ("count", "score"):
            return fmt_number(v, lang, decimals)
        return fmt_number(v, lang, decimals) if decimals is not None else fmt_value(v, lang)

    def _flag(self, key: str, value: Any, lang: str) -> str:
        text = str(value).strip()
        if self.translates(key, text):
            return self.category_label(key, text, lang)
        yes, no = _YES_NO[lang]
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value) not in (0.0, 1.0):
            return fmt_value(value, lang)
        upper = text.upper()
        if upper in _TRUE_TEXT:
            return yes
        if upper in _FALSE_TEXT:
            return no
        return text


def _builtin() -> LabelDictionary:
    text = resources.files(__package__).joinpath("resources").joinpath("labels.toml").read_text(encoding="utf-8")
    return LabelDictionary.from_toml(text)


#: the built-in dictionary (resources/labels.toml)
LABELS: LabelDictionary = _builtin()
_active: LabelDictionary = LABELS


# ------------------------------------------------------------------------------------------------ module API
# The functions below read the process's dictionary: the built-in one, plus what `register` added.

def register(overrides: Mapping[str, Any] | None = None, currency: str | None = None) -> LabelDictionary:
    """Add a dataset's labels (and currency) to the process's dictionary, e.g. once at the start of an app
    serving one model: ``register(schema.labels, schema.currency)``. Returns the new dictionary."""
    global _active
    _active = _active.with_overrides(overrides, currency)
    return _active


def reset() -> None:
    """Back to the built-in dictionary."""
    global _active
    _active = LABELS


def current() -> LabelDictionary:
    """The process's dictionary (the built-in one unless `register` was called)."""
    return _active


def feature_labels(name: str, overrides: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """(English, French) label of a feature; unknown features get a readable version of their name.

    `overrides` is a dataset schema's ``labels`` (even empty): `name` is then a column or feature of that
    dataset, so the client files' business columns are not looked up (a dataset's own ``income`` column does
    not take the client files' label "Revenu mensuel")."""
    if overrides is None:
        return _active.feature_labels(name)
    return _active.with_overrides(overrides).feature_labels(name, client_file=False)


def label(key: str, lang: str = "fr") -> str:
    """The label of a column, feature or business column in `lang`."""
    return _active.label(key, lang)


def unit(key: str) -> str | None:
    """The unit a value of `key` is shown in ("years", "months", "%", a currency code) or None."""
    return _active.unit(key)


def kind(key: str) -> str:
    """How a value of `key` reads: one of `KINDS`."""
    return _active.kind(key)


def category_label(column: str, value: str | None, lang: str = "fr") -> str:
    """A category value translated; unknown values as given, None as "non renseigné" / "not given"."""
    return _active.category_label(column, value, lang)


def format_value(key: str, value: Any, lang: str = "fr", currency: str | None = None) -> str:
    """The value of `key` as an advisor reads it (see `LabelDictionary.format_value`)."""
    return _active.format_value(key, value, lang, currency)


#: a trust flag (`scoring.contracts.TrustFlag`) in words: the overview, the decision record and the decision file
#: say the same sentence
FLAG_TEXTS: dict[str, tuple[str, str]] = {
    "out_of_range": ("Hors de la plage d'entraînement : {features}", "Outside the training range: {features}"),
    "many_missing": ("Beaucoup de données manquantes : {share} des variables du modèle (seuil {limit})",
                     "Many missing fields: {share} of the model's features (limit {limit})"),
    "segment_drift": ("Segment en dérive : demandes de {segment} (PSI du score {psi}{features})",
                      "Drifting segment: applications of {segment} (score PSI {psi}{features})"),
    "range_unknown": ("Plage d'entraînement inconnue : la carte du modèle ne la contient pas (reconstruire le "
                      "modèle pour la vérifier)",
                      "Training range unknown: the model card lacks it (rebuild the model to check it)"),
}


def flag_text(flag: Any, labels: LabelDictionary, lang: str = "fr") -> str:
    """A trust flag (`kind`, `features`, `value`, `limit`, `segment`) in plain words, its features by their labels."""
    names = ", ".join(labels.entry(f, client_file=False).text(lang) for f in flag.features)
    fr, en = FLAG_TEXTS.get(flag.kind, FLAG_TEXTS["range_unknown"])
    template = en if _lang(lang) == "en" else fr
    if flag.kind == "out_of_range":
        return template.format(features=names)
    if flag.kind == "many_missing":
        return template.format(share=fmt_percent(flag.value, lang, 0), limit=fmt_percent(flag.limit, lang, 0))
    if flag.kind == "segment_drift":
        return template.format(segment=flag.segment or "—", psi=fmt_number(flag.value, lang, 2),
                               features=(" ; " if lang == "fr" else "; ") + names if names else "")
    return template
