import json

import numpy as np
import pytest
import torch

from blastwatch_train import CLASS_FOLDERS
from blastwatch_train.cache import CacheError, load_cache, to_float, write_cache
from blastwatch_train.split import hamming_matrix, make_split, perceptual_hashes, split_indices, write_split
from conftest import synthetic_images


def test_cache_loads_and_converts_bytes_exactly(synthetic_cache):
    cache = load_cache(synthetic_cache)
    assert len(cache) == 48 and cache.size == 224 and cache.classes == CLASS_FOLDERS
    o, s = cache.tensors([0, 5])
    x = to_float(o)
    assert x.dtype.is_floating_point and float(x.max()) <= 1.0
    assert np.array_equal((x * 255).round().numpy().astype(np.uint8), o.numpy())


def test_cache_rejects_truncated_file(synthetic_cache):
    path = synthetic_cache / "segmented.u8"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(CacheError, match="segmented.u8"):
        load_cache(synthetic_cache)


def test_cache_rejects_wrong_format(synthetic_cache):
    m = json.loads((synthetic_cache / "manifest.json").read_text())
    m["format"] = "something-else"
    (synthetic_cache / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(CacheError, match="format"):
        load_cache(synthetic_cache)


def test_phash_finds_near_duplicates_but_not_distinct_images():
    o, s, items = synthetic_images(3)
    o = o.copy()
    o[1] = np.clip(o[0].astype(int) + 2, 0, 255).astype(np.uint8)  # brightened twin of image 0
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        write_cache(tmp, o, s, items, CLASS_FOLDERS)
        d = hamming_matrix(perceptual_hashes(load_cache(tmp)))
    assert d[0, 1] <= 2
    assert d[0, 2] > 10


def test_split_drops_duplicates_keeps_groups_together_and_is_stratified(tmp_path):
    o, s, items = synthetic_images(20)
    o = o.copy()
    items[3]["sha256"] = items[2]["sha256"]  # exact duplicate file
    o[3] = o[2]
    s[3] = s[2]
    o[7] = np.clip(o[6].astype(int) + 1, 0, 255).astype(np.uint8)  # near-duplicate
    write_cache(tmp_path, o, s, items, CLASS_FOLDERS)
    cache = load_cache(tmp_path)
    split = make_split(cache, seed=0)
    assert split["dedupe"]["exact_duplicates_dropped"] == 1
    paths = {k: {e["path"] for e in v} for k, v in split["splits"].items()}
    assert not (paths["train"] & paths["val"]) and not (paths["train"] & paths["test"])
    assert not (paths["val"] & paths["test"])
    assert sum(len(v) for v in paths.values()) == len(items) - 1
    assert items[3]["path"] not in set().union(*paths.values())
    side = [k for k, v in paths.items() if items[6]["path"] in v]
    assert side and items[7]["path"] in paths[side[0]]
    for cls in CLASS_FOLDERS:
        assert split["counts"]["test"][cls] >= 2 and split["counts"]["train"][cls] >= 12
    digest = write_split(split, tmp_path / "split.json")
    assert len(digest) == 64
    again = make_split(cache, seed=0)
    assert again["splits"] == split["splits"]
    ix = split_indices(split, cache)
    assert set(ix) == {"train", "val", "test"}


def test_split_indices_refuses_changed_file(synthetic_cache):
    cache = load_cache(synthetic_cache)
    split = make_split(cache)
    assert split["splits"]["train"]
    split["splits"]["train"][0]["sha256"] = "f" * 64  # no synthetic item has this hash
    with pytest.raises(ValueError, match="sha256"):
        split_indices(split, cache)


def _variant_set(tmp_path, name, picks, relabel=None):
    """A variant cache holding PNG copies of some base images, with a recognisable pixel change."""
    o, s, items = synthetic_images(12)
    sel = [items[i] for i in picks]
    vo = (255 - o[picks]).astype(np.uint8)
    vs = (255 - s[picks]).astype(np.uint8)
    vitems = [{**it, "index": j, "path": it["path"].rsplit(".", 1)[0] + ".png"} for j, it in enumerate(sel)]
    if relabel is not None:
        vitems[0]["label"] = relabel
    root = tmp_path / "variants" / name
    write_cache(root, vo, vs, vitems, CLASS_FOLDERS)
    return root, vo, vs


def test_stain_variants_map_by_stem_and_fall_back_to_the_original(synthetic_cache, tmp_path):
    from blastwatch_train.cache import load_cache, load_stain_variants

    base = load_cache(synthetic_cache)
    _, vo, vs = _variant_set(tmp_path, "stain-1", [0, 5, 20])
    variants = load_stain_variants(base, tmp_path / "variants")
    assert len(variants) == 1
    assert variants.coverage(np.array([0, 5, 20])) == 1.0
    assert variants.coverage(np.array([0, 1])) == 0.5
    idx = np.array([0, 1, 20])
    o, s = variants.tensors(base, idx, np.array([1, 1, 0]))
    bo, bs = base.tensors(idx)
    assert torch.equal(o[0], torch.from_numpy(vo[0])) and torch.equal(s[0], torch.from_numpy(vs[0]))
    assert torch.equal(o[1], bo[1])  # no copy of image 1: the original is used
    assert torch.equal(o[2], bo[2]) and torch.equal(s[2], bs[2])  # choice 0: the original


def test_stain_variants_refuse_a_copy_with_another_label(synthetic_cache, tmp_path):
    from blastwatch_train.cache import CacheError, load_cache, load_stain_variants

    base = load_cache(synthetic_cache)
    _variant_set(tmp_path, "stain-1", [0, 5], relabel=3)
    with pytest.raises(CacheError, match="another label"):
        load_stain_variants(base, tmp_path / "variants")
