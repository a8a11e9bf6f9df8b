import json

import numpy as np
import pytest

from blastwatch_train import CLASS_FOLDERS
from blastwatch_train.cache import load_cache, write_cache
from blastwatch_train.sweep import AUGMENTS, make_config, pack, run_sweep, unpack
from conftest import synthetic_images


def test_pack_round_trip_keeps_masks_exact_and_images_close(synthetic_cache, tmp_path):
    base = load_cache(synthetic_cache)
    info = pack(synthetic_cache, tmp_path / "pack")
    assert info["images"] == len(base)
    unpack(tmp_path / "pack", tmp_path / "rebuilt")
    rebuilt = load_cache(tmp_path / "rebuilt")
    assert rebuilt.items == base.items and rebuilt.classes == base.classes
    base_mask = base.segmented.max(1) > 0
    assert np.array_equal(rebuilt.segmented, rebuilt.original * base_mask[:, None])
    # JPEG q90 on smooth synthetic images: a few levels of error on average, never a different image
    diff = np.abs(rebuilt.original.astype(int) - base.original.astype(int))
    assert diff.mean() < 3, diff.mean()
    assert not np.array_equal(rebuilt.original, base.original)  # it is lossy, and says so


def test_pack_refuses_a_cache_whose_segmented_is_not_original_times_mask(tmp_path):
    o, s, items = synthetic_images(2)
    s[1, 0, 0, 0] = 7  # a background pixel that is not the original's
    o[1, 0, 0, 0] = 9
    write_cache(tmp_path / "c", o, s, items, CLASS_FOLDERS)
    with pytest.raises(ValueError, match="item 1"):
        pack(tmp_path / "c", tmp_path / "pack")


def test_make_config_rejects_unknown_keys_and_picks_the_augmentation():
    cfg = make_config({"name": "x", "width": 0.75, "epochs": 3, "aug": "light"})
    assert cfg.width == 0.75 and cfg.epochs == 3 and cfg.augment == AUGMENTS["light"]
    assert make_config({"name": "y"}).augment == AUGMENTS["default"]
    with pytest.raises(ValueError, match="widht"):
        make_config({"name": "z", "widht": 0.5})


def test_sweep_runs_each_config_in_its_own_process_and_reports(synthetic_cache, tmp_path):
    from blastwatch_train.split import make_split, write_split

    split_path = tmp_path / "split.json"
    write_split(make_split(load_cache(synthetic_cache), fractions=(1 / 3, 1 / 3, 1 / 3)), split_path)
    configs = tmp_path / "configs.json"
    configs.write_text(json.dumps([
        {"name": "tiny", "width": 0.25, "epochs": 1, "max_steps": 1, "batch_size": 4},
    ]))
    out = tmp_path / "out"
    results = run_sweep(None, synthetic_cache, split_path, configs, out, device="cpu", jobs=1)
    assert [r["name"] for r in results] == ["tiny"]
    r = results[0]
    assert r["history"][0]["step"] == 1
    n_test = sum(sum(row) for row in r["test"]["confusion"])
    assert n_test == len(json.loads(split_path.read_text())["splits"]["test"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary[0]["name"] == "tiny" and summary[0]["val_acc"] == r["val"]["accuracy"]
    assert (out / "tiny.pt").is_file()
