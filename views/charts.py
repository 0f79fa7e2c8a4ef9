"""Chart helpers shared by the views: colours, locale-formatted axis ticks, the client marker, the gauge.

Plots are HoloViews `DynamicMap`s fed by `streams.Pipe`: new data is streamed into the Bokeh
figure instead of rebuilding it. The client's marker on population histograms moves on every
client switch, so it is a Bokeh `Span` added through a HoloViews hook and moved in place
(one property change instead of a HoloViews re-render).
"""

from __future__ import annotations

import html
import math
import weakref
from typing import Callable

import holoviews as hv
import numpy as np
from bokeh.models import Span

from scoring.labels import current as current_labels

from .i18n import fmt_percent, t

ACCEPTED = "#1b7f3b"
REFUSED = "#b3261e"
REPAID = "#2b6cb0"
DEFAULTED = "#dd6b20"
POPULATION = "#8a8f98"
CLIENT = "#111111"
TOOLBAR = dict(toolbar=None, default_tools=["hover"])

# The Bokeh backend, without the notebook output of hv.extension (the notebook calls pn.extension itself).
hv.renderer("bokeh")
hv.Store.set_current_backend("bokeh")


def nice_ticks(lo: float, hi: float, fmt: Callable[[float, int], str], n: int = 5) -> list[tuple[float, str]]:
    """About `n` round tick positions between lo and hi, labelled by `fmt(value, decimals)` (locale-aware)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [(lo, fmt(lo, 0))] if math.isfinite(lo) else []
    raw = (hi - lo) / max(n, 1)
    power = 10 ** math.floor(math.log10(raw))
    multiple = next(m for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    step = multiple * power
    decimals = max(0, -math.floor(math.log10(step)) + (1 if multiple == 2.5 else 0))
    start = math.ceil(lo / step - 1e-9) * step
    ticks = np.arange(start, hi + step * 1e-6, step)
    return [(float(round(v, 12)), fmt(float(round(v, 12)), decimals)) for v in ticks]


class ClientMarker:
    """A vertical line at the client's value, on every figure the hook is applied to.

    `hook` goes in the plot's `.opts(hooks=[...])` from the first frame on (a line added to a figure
    already in the browser would not be synchronised); `move(x)` updates the line(s) in place.
    Lines are tracked weakly, so a closed session's figures are not kept alive.
    """

    def __init__(self, color: str = CLIENT, dash: str = "dashed", width: int = 2):
        """`dash`: "dashed" for a client, "dotted" for a threshold, "solid" for a mean."""
        self._props = dict(dimension="height", line_color=color, line_dash=dash, line_width=width, level="overlay")
        self._spans: "weakref.WeakSet[Span]" = weakref.WeakSet()
        self.location: float | None = None

    def hook(self, plot, element) -> None:
        figure = plot.state
        if any(s in figure.center for s in self._spans):
            return
        span = Span(location=self.location if self.location is not None else 0.0,
                    visible=self.location is not None, **self._props)
        figure.add_layout(span)
        self._spans.add(span)

    def move(self, x: float | None) -> None:
        self.location = None if x is None or not math.isfinite(x) else float(x)
        for span in list(self._spans):
            if self.location is None:
                span.visible = False
            else:
                span.update(location=self.location, visible=True)


class DrawnPlots:
    """The HoloViews plots an element is drawn in, captured by `hook` and tracked weakly.

    Hooks end up in HoloViews' process-wide option store: a hook bound to a view would keep its
    whole session alive after the browser tab closes (tests/test_sessions.py), this one holds nothing.
    """

    def __init__(self):
        self._plots: "weakref.WeakSet" = weakref.WeakSet()

    def hook(self, plot, element) -> None:
        self._plots.add(plot)

    def __iter__(self):
        return iter(list(self._plots))

    def __bool__(self) -> bool:
        return len(self._plots) > 0


# ---------------------------------------------------------------------------------------- the gauge
def _gauge_position(p: float, threshold: float) -> float:
    """Needle position in [0, 1]: the threshold sits at the top of the dial, 0 % left, 100 % right."""
    p = min(max(p, 0.0), 1.0)
    if p <= threshold:
        return 0.5 * p / threshold if threshold > 0 else 0.5
    return 0.5 + 0.5 * (p - threshold) / (1 - threshold) if threshold < 1 else 1.0


def gauge_svg(probability: float, threshold: float, language: str = "fr", width: int = 220, labels=None) -> str:
    """A half-dial gauge: green below the refusal threshold, red above, the needle at the client
    (`labels`: the session's label dictionary, `scoring.labels.current()` by default)."""
    labels = labels if labels is not None else current_labels()
    cx, cy, r, stroke = 110.0, 110.0, 78.0, 18.0

    def point(frac: float, radius: float) -> tuple[float, float]:
        angle = math.pi * (1 - frac)
        return cx + radius * math.cos(angle), cy - radius * math.sin(angle)

    def arc(f0: float, f1: float, color: str) -> str:
        (x0, y0), (x1, y1) = point(f0, r), point(f1, r)
        return (f'<path d="M {x0:.1f} {y0:.1f} A {r} {r} 0 0 1 {x1:.1f} {y1:.1f}" fill="none" '
                f'stroke="{color}" stroke-width="{stroke}"/>')

    needle = _gauge_position(probability, threshold)
    nx, ny = point(needle, r - stroke)
    tx, ty = point(0.5, r + stroke / 2 + 4)
    prob_text = fmt_percent(probability, language)
    threshold_text = html.escape(t("threshold_short", language, value=fmt_percent(threshold, language)))
    title = html.escape(f'{labels.label("default_probability", language)} {prob_text}, ') + threshold_text
    height = int(width * 135 / 220)
    return (
        f'<svg class="gauge" role="img" aria-label="{title}" viewBox="0 0 220 135" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{title}</title>'
        f'{arc(0, 0.5, ACCEPTED)}{arc(0.5, 1, REFUSED)}'
        f'<line x1="{cx}" y1="{cy}" x2="{nx:.1f}" y2="{ny:.1f}" stroke="{CLIENT}" stroke-width="4" stroke-linecap="round"/>'
        f'<circle cx="{cx}" cy="{cy}" r="6" fill="{CLIENT}"/>'
        f'<text x="{cx - r}" y="{cy + 18}" font-size="11" text-anchor="middle">{fmt_percent(0, language, 0)}</text>'
        f'<text x="{cx + r}" y="{cy + 18}" font-size="11" text-anchor="middle">{fmt_percent(1, language, 0)}</text>'
        f'<text x="{tx:.1f}" y="{ty:.1f}" font-size="11" text-anchor="middle">{threshold_text}</text>'
        f'</svg>')
