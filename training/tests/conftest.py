import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
torch.set_num_threads(2)

from blastwatch_train import CLASS_FOLDERS  # noqa: E402
from blastwatch_train.cache import write_cache  # noqa: E402


def synthetic_images(n_per_class: int, size: int = 224, seed: int = 0):
    """Class-dependent blobs on a pinkish background; segmented = original x disc mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    originals, segs, items = [], [], []
    for label, cls in enumerate(CLASS_FOLDERS):
        for k in range(n_per_class):
            bg = np.array([225, 190, 200]) + rng.integers(-10, 10, 3)
            # low-frequency random texture, so unrelated images get unrelated perceptual hashes
            texture = np.kron(rng.normal(0, 25, (8, 8)), np.ones((size // 8, size // 8)))
            img = np.ones((size, size, 3)) * bg + texture[:, :, None]
            cy, cx = rng.integers(size // 3, 2 * size // 3, 2)
            r = size // 8 + label * size // 32
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
            img[disc] = np.array([120 + 25 * label, 60, 150 - 20 * label]) + rng.integers(-8, 8, 3)
            img = np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)
            o = img.transpose(2, 0, 1)
            s = (o * disc[None]).astype(np.uint8)
            originals.append(o)
            segs.append(s)
            items.append({
                "index": len(items), "path": f"{cls}/img-{k:03d}.jpg", "label": label, "class": cls,
                "sha256": f"{len(items):064x}", "source_width": size, "source_height": size,
                "foreground_fraction": float(disc.mean()),
            })
    return np.stack(originals), np.stack(segs), items


@pytest.fixture
def synthetic_cache(tmp_path):
    o, s, items = synthetic_images(12)
    root = tmp_path / "cache"
    write_cache(root, o, s, items, CLASS_FOLDERS, {"segmentation": {"k": 7, "threshold": 141}})
    return root
