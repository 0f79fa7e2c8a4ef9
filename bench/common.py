"""Timing helpers and the table every benchmark prints."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np


def timings_ms(fn: Callable[[], object], repeat: int, warmup: int = 5) -> np.ndarray:
    for _ in range(warmup):
        fn()
    out = np.empty(repeat)
    for i in range(repeat):
        t = time.perf_counter()
        fn()
        out[i] = (time.perf_counter() - t) * 1000
    return out


def p50(a) -> float:
    return float(np.percentile(a, 50))


def p95(a) -> float:
    return float(np.percentile(a, 95))


@dataclass
class Row:
    metric: str
    value: float
    unit: str
    target: str = ""
    ok: bool | None = None
    baseline: str = ""


def print_table(title: str, rows: list[Row]) -> None:
    print(f"\n## {title}\n")
    head = f"| {'metric':<52} | {'value':>12} | {'unit':<8} | {'target':<16} | {'baseline (same run)':<34} | ok |"
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for r in rows:
        ok = "" if r.ok is None else ("yes" if r.ok else "NO")
        value = f"{r.value:,.3f}" if abs(r.value) < 100 else f"{r.value:,.0f}"
        print(f"| {r.metric:<52} | {value:>12} | {r.unit:<8} | {r.target:<16} | {r.baseline:<34} | {ok:<2} |")
