"""Parity helper: loads a preprocess-dataset cache exactly as training does
(blastwatch_train.cache.load_cache + to_float) and writes the float32 model inputs,
item by item in manifest order, to OUT/original.f32 and OUT/segmented.f32 (little-endian)."""

import sys
from pathlib import Path

repo = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(repo / "training"))

from blastwatch_train.cache import load_cache, to_float  # noqa: E402


def main(cache_dir: str, out_dir: str) -> None:
    cache = load_cache(cache_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    o, s = cache.tensors(list(range(len(cache))))
    for name, t in (("original", o), ("segmented", s)):
        x = to_float(t).numpy()
        assert x.dtype.str == "<f4", x.dtype
        (out / f"{name}.f32").write_bytes(x.tobytes(order="C"))
    print(len(cache))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
