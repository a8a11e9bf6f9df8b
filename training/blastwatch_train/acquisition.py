"""How the data set's pictures were taken, measured apart from the cells' disease.

Two traits of the acquisition, not of the patient, can still predict the label when classes were
photographed in different sessions:

- the scale mark that the camera software burns into the bottom-right corner: either a small mark
  with red text or a black bar with black text;
- the red cells' apparent size. Red cells are nearly the same size in any smear (about 7.5 um
  across), so their size in pixels measures the magnification (objective, camera adapter, crop).

The red-cell size is a granulometry (Serra's pattern spectrum): the cell layer (pixels darker than
the plasma by Otsu's threshold on grey, central pallor filled) minus the stained nuclei (a* more
than 10 above the layer's median, opened by the 3 x 3 cross, widened by 2 px) is opened with discs of radius 1..15 px; the mean radius at
which its area goes is the figure. A field whose red-cell layer covers under 5 % of it has no
figure. Read with OpenCV straight from the files: this describes the data, it feeds no model.

    python -m blastwatch_train acquisition --data ../shared/data/all-smears \\
        --split training/split.json [--out FILE]
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

CLASSES = ("Benign", "Early", "Pre", "Pro")
SIZE = 224
# The corner the mark sits in, as shares of the side (the same box as `blank:br` in
# scripts/camera-shifts.ts), and the pixel counts that tell its two styles apart.
CORNER_WIDTH, CORNER_HEIGHT = 0.2, 0.15
RED_TEXT_PIXELS = 5
DARK_PIXELS = 15
NUCLEUS_A_STAR_ABOVE_LAYER = 10  # a nucleus: a* (OpenCV's 8-bit, 128 = neutral) this far above the layer's median
MAX_RADIUS = 15
MIN_RED_CELL_SHARE = 0.05
_DISCS = [cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)) for r in range(1, MAX_RADIUS + 1)]
_CROSS = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path}: not an image OpenCV can read")
    if bgr.shape[:2] != (SIZE, SIZE):
        bgr = cv2.resize(bgr, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def corner_mark_style(rgb: np.ndarray) -> str:
    """'red' (red text), 'dark' (black bar or text) or 'none' in the bottom-right corner box."""
    h, w = rgb.shape[:2]
    box = rgb[h - round(h * CORNER_HEIGHT):, w - round(w * CORNER_WIDTH):].astype(np.int32)
    r, g, b = box[..., 0], box[..., 1], box[..., 2]
    if int(((r > 150) & (g < 110) & (b < 130)).sum()) >= RED_TEXT_PIXELS:
        return "red"
    luma = (77 * r + 150 * g + 29 * b) >> 8
    return "dark" if int((luma < 90).sum()) >= DARK_PIXELS else "none"


def red_cell_layer(rgb: np.ndarray) -> np.ndarray:
    """Boolean mask of the red cells: darker than the plasma, pallor filled, nuclei left out."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    _, dark = cv2.threshold(grey, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    # Holes: background regions that do not touch the border (a red cell's pale centre).
    count, labels = cv2.connectedComponents((1 - dark).astype(np.uint8), connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    filled = (dark > 0) | ((dark == 0) & ~np.isin(labels, border))
    a_star = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)[..., 1]
    # A nucleus is markedly more magenta than the cells around it; relative to the layer, because
    # a lamp's colour moves every pixel's a* (a fixed cut took red cells for nuclei under a red gain).
    layer_a = np.sort(a_star[filled])
    cut = int(layer_a[(layer_a.size - 1) // 2]) + NUCLEUS_A_STAR_ABOVE_LAYER if layer_a.size else 128
    # Opened by the 3 x 3 cross first: single pixels a noisy sensor pushes over the cut are no nucleus.
    above = cv2.morphologyEx((a_star > cut).astype(np.uint8), cv2.MORPH_OPEN, _CROSS)
    nuclei = cv2.dilate(above, np.ones((5, 5), np.uint8)) > 0
    return filled & ~nuclei


def red_cell_radius(rgb: np.ndarray) -> float | None:
    """Mean radius (px at 224 x 224) of the red-cell layer's pattern spectrum, or None."""
    layer = red_cell_layer(rgb).astype(np.uint8)
    area = int(layer.sum())
    if area < MIN_RED_CELL_SHARE * layer.size:
        return None
    remaining = [area] + [int(cv2.morphologyEx(layer, cv2.MORPH_OPEN, disc).sum()) for disc in _DISCS]
    lost = -np.diff(np.asarray(remaining, dtype=np.float64))
    return float((lost * np.arange(1, MAX_RADIUS + 1)).sum() / lost.sum()) if lost.sum() > 0 else None


def _summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    q10, median, q90 = np.quantile(values, [0.1, 0.5, 0.9])
    return {"n": len(values), "median": round(float(median), 3), "q10": round(float(q10), 3),
            "q90": round(float(q90), 3)}


def _scale_only_accuracy(train: list[tuple[int, float]], held_out: list[tuple[int, float]]) -> dict:
    """One Gaussian per class on log radius (fitted on train, class priors) as the only input:
    how much of the labels the magnification alone gives away."""
    log = {c: np.log([r for label, r in train if label == c]) for c in range(len(CLASSES))}
    prior = {c: len(v) / len(train) for c, v in log.items()}
    mean = {c: float(v.mean()) for c, v in log.items()}
    sd = {c: float(v.std()) + 1e-6 for c, v in log.items()}
    right = 0
    for label, r in held_out:
        x = np.log(r)
        scores = [-0.5 * ((x - mean[c]) / sd[c]) ** 2 - np.log(sd[c]) + np.log(prior[c]) for c in log]
        right += int(np.argmax(scores)) == label
    majority = max(sum(1 for label, _ in held_out if label == c) for c in log)
    return {"n": len(held_out), "accuracy": round(right / len(held_out), 4),
            "majority_class_share": round(majority / len(held_out), 4)}


def acquisition_report(data: Path, split: dict) -> dict:
    """Mark styles and red-cell radius per split and class, radius by class and mark style on
    the training split, and the accuracy of a classifier that sees only the radius."""
    by_split: dict = {}
    measured: dict[str, list[tuple[int, float, str]]] = {}
    for name, entries in split["splits"].items():
        rows = by_split.setdefault(name, {})
        measured[name] = []
        for entry in entries:
            rgb = read_rgb(data / entry["path"])
            style, radius = corner_mark_style(rgb), red_cell_radius(rgb)
            cls = CLASSES[entry["label"]]
            row = rows.setdefault(cls, {"n": 0, "mark": {"red": 0, "dark": 0, "none": 0}, "radii": []})
            row["n"] += 1
            row["mark"][style] += 1
            if radius is not None:
                row["radii"].append(radius)
                measured[name].append((entry["label"], radius, style))
    train_by_mark: dict = {}
    for label, radius, style in measured.get("train", []):
        train_by_mark.setdefault(CLASSES[label], {}).setdefault(style, []).append(radius)
    report = {
        "method": "blastwatch_train.acquisition: corner mark style; red-cell granulometry (discs r 1..15 px at 224 px)",
        "by_split": {s: {c: {"n": v["n"], "mark": v["mark"], "red_cell_radius": _summary(v.pop("radii"))}
                         for c, v in sorted(rows.items())} for s, rows in by_split.items()},
        "train_red_cell_radius_by_mark": {c: {m: _summary(v) for m, v in sorted(marks.items())}
                                          for c, marks in sorted(train_by_mark.items())},
    }
    train = [(label, r) for label, r, _ in measured.get("train", [])]
    if train and len({label for label, _ in train}) == len(CLASSES):
        report["scale_only"] = {s: _scale_only_accuracy(train, [(label, r) for label, r, _ in measured[s]])
                                for s in ("val", "test") if measured.get(s)}
    return report


def run_acquisition(data: Path, split_path: Path, out: Path | None) -> dict:
    report = acquisition_report(data, json.loads(split_path.read_text()))
    text = json.dumps(report, indent=1)
    if out:
        out.write_text(text + "\n")
    return report
