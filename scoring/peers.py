"""Similar applicants: the k labelled clients nearest to a client, and how often they defaulted.

The space is the model's most important features (global importance), numeric ones only, protected attributes
left out, standardised with the labelled clients' mean and spread, missing values set to the training median.
One scikit-learn `NearestNeighbors` index, fitted once per process on the labelled clients.
"""

from __future__ import annotations

import threading

import numpy as np
from sklearn.neighbors import NearestNeighbors

from .features import FeatureSpec
from .reasons import protected_features

SPACE_SIZE = 10   # features of the comparison space


def peer_space(spec: FeatureSpec, ranked: list[str], size: int = SPACE_SIZE) -> list[int]:
    """Indices of the features of the space: the first `size` of `ranked` (by global importance) that are
    numeric (or ratios) and not protected."""
    protected = protected_features(spec)
    chosen = []
    for name in ranked:
        j = spec.index(name)
        if spec.features[j].kind in ("numeric", "ratio") and name not in protected:
            chosen.append(j)
        if len(chosen) == size:
            break
    return chosen


class PeerIndex:
    """Nearest labelled neighbours in a standardised space of a few model features."""

    def __init__(self, X: np.ndarray, rows: np.ndarray, columns: list[int]):
        """`rows`: the rows of the feature matrix `X` (memory-mapped) of the labelled clients, in increasing order;
        only their `columns` are read (a store of millions holds a few hundred thousand labelled files)."""
        self.columns = columns
        self.rows = np.asarray(rows, dtype=np.int64)   # rows of the feature matrix that are in the index
        train = np.asarray(X[np.ix_(self.rows, columns)], dtype=np.float64)
        self.median = np.nanmedian(train, axis=0)
        self.median[~np.isfinite(self.median)] = 0.0
        train = np.where(np.isfinite(train), train, self.median)
        self.mean = train.mean(axis=0)
        self.scale = train.std(axis=0)
        self.scale[~(self.scale > 0)] = 1.0
        self._nn = NearestNeighbors().fit((train - self.mean) / self.scale)
        self._lock = threading.Lock()

    def standardise(self, x: np.ndarray) -> np.ndarray:
        v = np.asarray(x, dtype=np.float64)[self.columns]
        v = np.where(np.isfinite(v), v, self.median)
        return ((v - self.mean) / self.scale).reshape(1, -1)

    def nearest(self, x: np.ndarray, k: int, exclude_row: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rows of the feature matrix, distances) of the k nearest labelled clients, never `exclude_row`."""
        n = min(k + 1, len(self.rows))
        with self._lock:  # kneighbors is read-only, but keep one query at a time per process
            dist, idx = self._nn.kneighbors(self.standardise(x), n_neighbors=n)
        rows, dist = self.rows[idx[0]], dist[0]
        keep = rows != exclude_row if exclude_row is not None else np.ones(len(rows), bool)
        return rows[keep][:k], dist[keep][:k]
