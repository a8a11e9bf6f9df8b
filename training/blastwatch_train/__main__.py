"""Command line: `python -m blastwatch_train <stage> ...` (training/reproduce.sh runs the stages)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# OpenMP threads that spin while waiting turn a shared, oversubscribed 2-core machine into a
# 10-20x slowdown (measured: 5 s vs 0.3 s CPU per step); they must sleep instead. Set before
# torch loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from .evaluate import VIEW_COUNTS  # noqa: E402
from .models import BACKBONES  # noqa: E402


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", required=True, help="preprocess-dataset output folder")
    p.add_argument("--split", required=True, help="split.json")
    p.add_argument("--work", required=True, help="folder for checkpoints, ONNX files and results")
    p.add_argument("--smoke", action="store_true", help="tiny budget (CI): 1 step, tiny width")
    p.add_argument("--variants", default=None,
                   help="folder of stain-variant caches of the training images (ablation, final)")


def main(argv: list[str] | None = None) -> int:
    torch.set_num_threads(2)
    ap = argparse.ArgumentParser(prog="blastwatch_train")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("split", help="dedupe, group near-duplicates, stratified split -> split.json")
    p.add_argument("--cache", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--phash-threshold", type=int, default=10)
    p.add_argument("--smoke", action="store_true", help="thirds, so a few images still fill every split")

    p = sub.add_parser("test-files", help="write one split's relative paths (default: test), one per line")
    p.add_argument("--split", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--subset", default="test", choices=["train", "val", "test"])

    p = sub.add_parser("ablation", help="train every variant on the same split and small budget")
    _common(p)
    p.add_argument("--epochs", type=int, default=3)

    p = sub.add_parser("final", help="train the shipped variant, calibrate on val, export, quantize")
    _common(p)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--resume", action="store_true", help="reuse WORK/final.pt instead of training")
    p.add_argument("--backbone", default=None, choices=BACKBONES, help="instead of pipeline.FINAL's")
    p.add_argument("--width", type=float, default=None, help="instead of pipeline.FINAL's")
    p.add_argument("--camera-share", type=float, default=None,
                   help="share of samples with another camera's shifts, 0-1 (default pipeline.CAMERA_SHARE)")
    p.add_argument("--anneal-epochs", type=int, default=None,
                   help="epochs on the original images alone after the main ones, at a tenth of the rate; the main "
                        "stage is kept as WORK/main.pt (default pipeline.ANNEAL_EPOCHS)")
    p.add_argument("--reuse-main", action="store_true",
                   help="train only the annealing, from WORK/main.pt (trained with the same recipe and data)")
    p.add_argument("--anneal-magnification", type=float, default=None,
                   help="share of the annealing samples zoomed x0.75-1.25 as in the camera shifts "
                        "(default pipeline.ANNEAL_MAGNIFICATION)")
    p.add_argument("--anneal-overexposure", type=float, default=None,
                   help="share of the annealing samples brightened x1-1.25 and clipped at white "
                        "(default pipeline.ANNEAL_OVEREXPOSURE)")
    p.add_argument("--views", type=int, default=None, choices=VIEW_COUNTS,
                   help="test-time views to calibrate for and ship (default pipeline.VIEWS)")
    p.add_argument("--anneal-camera", type=float, default=0.0,
                   help="share of the annealing samples with all of another camera's shifts, colour included "
                        "(default 0: the originals alone, but for the zoom)")
    p.add_argument("--anneal-variants", type=float, default=0.0,
                   help="share of the annealing samples drawn from the re-stained copies (--variants), 0-1 "
                        "(default 0)")

    p = sub.add_parser("package", help="copy the trained files into models/ and write their model.json")
    _common(p)
    p.add_argument("--models", required=True, help="output folder for the shipped files")
    p.add_argument("--command", default="training/reproduce.sh")
    p.add_argument("--total-seconds", type=float, default=None)
    p.add_argument("--timing-note", default=None, help="how --total-seconds was measured")

    p = sub.add_parser("report", help="measure the packaged model on val, test and perturbed caches; "
                                      "write the figures into model.json and the card")
    _common(p)
    p.add_argument("--perturbed", default=None, help="folder of perturbed caches, one per kind")
    p.add_argument("--models", required=True, help="folder `package` wrote")

    p = sub.add_parser("acquisition", help="corner scale-mark styles and red-cell size per class (data, not model)")
    p.add_argument("--data", required=True, help="class-per-folder image folder (../shared/data/all-smears)")
    p.add_argument("--split", required=True, help="split.json")
    p.add_argument("--out", default=None, help="write the JSON here too")

    p = sub.add_parser("add-features-output",
                       help="add the head's pooled features as ONNX output `features` (the gate's distance)")
    p.add_argument("--model", required=True, help="ONNX file, changed in place unless --out")
    p.add_argument("--out", default=None)

    p = sub.add_parser("sweep-pack", help="compact copy of a cache for a GPU machine (see sweep.py)")
    p.add_argument("--cache", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--quality", type=int, default=90)

    p = sub.add_parser("sweep", help="train many configs at once on a GPU, one process each (see sweep.py)")
    p.add_argument("--pack", default=None, help="sweep-pack output, unpacked into --cache first")
    p.add_argument("--cache", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--configs", required=True, help="JSON list of {name, TrainConfig fields, aug}")
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="cuda")
    p.add_argument("--jobs", type=int, default=8)

    p = sub.add_parser("sweep-one", help="(internal) one sweep config")
    p.add_argument("--cache", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--spec", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="cuda")
    args = ap.parse_args(argv)

    from . import pipeline

    t0 = time.time()
    if args.cmd == "split":
        pipeline.run_split(Path(args.cache), Path(args.out), args.seed, args.phash_threshold,
                           (1 / 3, 1 / 3, 1 / 3) if args.smoke else (0.70, 0.15, 0.15))
    elif args.cmd == "test-files":
        split = json.loads(Path(args.split).read_text())
        Path(args.out).write_text("".join(e["path"] + "\n" for e in split["splits"][args.subset]))
    elif args.cmd == "ablation":
        pipeline.run_ablation(Path(args.cache), Path(args.split), Path(args.work), args.epochs, args.smoke,
                              Path(args.variants) if args.variants else None)
    elif args.cmd == "final":
        shipped = pipeline.Annealing()
        annealing = pipeline.Annealing(
            epochs=shipped.epochs if args.anneal_epochs is None else args.anneal_epochs,
            magnification=shipped.magnification if args.anneal_magnification is None else args.anneal_magnification,
            camera=args.anneal_camera, variants=args.anneal_variants,
            overexposure=shipped.overexposure if args.anneal_overexposure is None else args.anneal_overexposure)
        pipeline.run_final(Path(args.cache), Path(args.split), Path(args.work), args.epochs, args.smoke, args.resume,
                           Path(args.variants) if args.variants else None, args.backbone, args.width,
                           args.camera_share, annealing, args.reuse_main,
                           pipeline.VIEWS if args.views is None else args.views)
    elif args.cmd == "package":
        pipeline.run_package(Path(args.cache), Path(args.split), Path(args.work), Path(args.models), args.command,
                             args.total_seconds, args.smoke, args.timing_note)
    elif args.cmd == "report":
        pipeline.run_report(Path(args.cache), Path(args.split), Path(args.work), Path(args.models),
                            Path(args.perturbed) if args.perturbed else None, args.smoke)
    elif args.cmd == "acquisition":
        from .acquisition import run_acquisition

        print(json.dumps(run_acquisition(Path(args.data), Path(args.split), Path(args.out) if args.out else None),
                         indent=1))
    elif args.cmd == "add-features-output":
        from .features_output import add_features_output_file

        changed = add_features_output_file(Path(args.model), Path(args.out) if args.out else None)
        print("added output `features`" if changed else "output `features` already present")
    elif args.cmd == "sweep-pack":
        from . import sweep

        print(json.dumps(sweep.pack(Path(args.cache), Path(args.out), args.quality)))
    elif args.cmd == "sweep":
        from . import sweep

        sweep.run_sweep(Path(args.pack) if args.pack else None, Path(args.cache), Path(args.split),
                        Path(args.configs), Path(args.out), args.device, args.jobs)
    elif args.cmd == "sweep-one":
        from . import sweep

        sweep.run_one(Path(args.cache), Path(args.split), json.loads(args.spec), Path(args.out), args.device)
    print(f"[blastwatch_train {args.cmd}] {time.time() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
