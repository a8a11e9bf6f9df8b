"""The acquisition traits: the corner mark's style and the red cells' size in pixels, on drawn
smears whose red-cell radius and mark are known."""
import json

import cv2
import numpy as np
import pytest

from blastwatch_train.acquisition import (CLASSES, acquisition_report, corner_mark_style, red_cell_layer,
                                          red_cell_radius)

PLASMA = (236, 232, 240)
RED_CELL = (196, 170, 190)  # greyish pink: darker than plasma, a* well under the paper's 141
NUCLEUS = (110, 50, 160)  # purple: a* far above 141


def smear(radius: int, seed: int = 0, mark: str = "none", size: int = 224) -> np.ndarray:
    """Red cells of one radius on a grid with jitter, each with a pale centre, one nucleus."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size, 3), PLASMA, np.uint8)
    step = 2 * radius + 6
    for cy in range(radius + 2, size - radius - 2, step):
        for cx in range(radius + 2, size - radius - 2, step):
            y, x = cy + int(rng.integers(-2, 3)), cx + int(rng.integers(-2, 3))
            cv2.circle(img, (x, y), radius, RED_CELL, -1)
            cv2.circle(img, (x, y), max(1, radius // 3), (214, 200, 212), -1)  # central pallor
    cv2.circle(img, (size // 2, size // 2), 14, NUCLEUS, -1)
    h, w = size, size
    if mark == "red":
        cv2.putText(img, "10um", (w - 40, h - 8), cv2.FONT_HERSHEY_PLAIN, 0.8, (220, 30, 40), 1)
    elif mark == "dark":
        cv2.line(img, (w - 40, h - 6), (w - 8, h - 6), (0, 0, 0), 2)
    return img


@pytest.mark.parametrize("radius", [6, 8, 10])
def test_red_cell_radius_follows_the_drawn_radius(radius):
    measured = red_cell_radius(smear(radius))
    assert measured is not None
    # the pattern spectrum's mean radius of discs of radius R lies just below R
    assert radius * 0.7 <= measured <= radius * 1.05


def test_red_cell_radius_scales_with_magnification():
    small, large = red_cell_radius(smear(6)), red_cell_radius(smear(8))
    assert small / large == pytest.approx(6 / 8, abs=0.06)


def test_nuclei_are_not_red_cells_and_an_empty_field_has_no_figure():
    img = smear(8)
    layer = red_cell_layer(img)
    assert not layer[112, 112], "the purple nucleus is left out"
    assert layer.mean() > 0.2
    blank = np.full((224, 224, 3), PLASMA, np.uint8)
    assert red_cell_radius(blank) is None


@pytest.mark.parametrize("mark", ["red", "dark", "none"])
def test_corner_mark_style(mark):
    assert corner_mark_style(smear(8, mark=mark)) == mark


def test_report_counts_marks_and_sizes_per_class_and_scores_a_scale_only_classifier(tmp_path):
    # Each class photographed at its own magnification: the scale alone gives the label away.
    radius = {"Benign": 5, "Early": 7, "Pre": 9, "Pro": 11}
    splits = {"train": [], "val": [], "test": []}
    for label, cls in enumerate(CLASSES):
        (tmp_path / cls).mkdir()
        for k in range(6):
            path = f"{cls}/img-{k}.png"
            img = smear(radius[cls], seed=k, mark="red" if cls == "Early" else "dark")
            cv2.imwrite(str(tmp_path / path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            splits["train" if k < 4 else "val" if k == 4 else "test"].append({"path": path, "label": label})
    report = acquisition_report(tmp_path, {"splits": splits})
    json.dumps(report)  # serialisable as the CLI writes it
    train = report["by_split"]["train"]
    assert train["Early"]["mark"] == {"red": 4, "dark": 0, "none": 0}
    assert train["Pro"]["mark"] == {"red": 0, "dark": 4, "none": 0}
    medians = [train[c]["red_cell_radius"]["median"] for c in CLASSES]
    assert medians == sorted(medians) and medians[-1] > 1.6 * medians[0]
    assert report["train_red_cell_radius_by_mark"]["Early"]["red"]["n"] == 4
    assert report["scale_only"]["test"] == {"n": 4, "accuracy": 1.0, "majority_class_share": 0.25}
