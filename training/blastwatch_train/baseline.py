"""Colour-only baseline: per-channel 16-bin histograms of the original image + logistic regression.

It shows how much of the task colour alone solves on this data set (a lot) and how badly such
a shortcut breaks when illumination or stain shifts - the robustness table compares it with
the CNN under the same perturbations.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .cache import Cache

BINS = 16


def colour_histograms(cache: Cache, indices: np.ndarray, batch: int = 256) -> np.ndarray:
    feats = []
    for start in range(0, len(indices), batch):
        o = np.asarray(cache.original[np.asarray(indices[start : start + batch])])
        q = (o >> 4).astype(np.int64)  # 256 levels -> 16 bins
        n, c = q.shape[:2]
        h = np.zeros((n, c, BINS))
        for ch in range(c):
            flat = q[:, ch].reshape(n, -1)
            offs = flat + np.arange(n)[:, None] * BINS
            h[:, ch] = np.bincount(offs.ravel(), minlength=n * BINS).reshape(n, BINS)
        feats.append((h / q[0, 0].size).reshape(n, c * BINS))
    return np.concatenate(feats) if feats else np.zeros((0, 3 * BINS))


class ColourBaseline:
    def __init__(self, seed: int = 0) -> None:
        self.model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0, random_state=seed))

    def fit(self, cache: Cache, indices: np.ndarray) -> "ColourBaseline":
        self.model.fit(colour_histograms(cache, indices), cache.labels[indices])
        return self

    def predict_proba(self, cache: Cache, indices: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(colour_histograms(cache, indices))
