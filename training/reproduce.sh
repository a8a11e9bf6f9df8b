#!/usr/bin/env bash
# Reproduces the shipped model from the data set on a CPU machine, end to end:
#   preprocess-dataset (TypeScript, the daemon's own code) -> split -> colour reference of the
#   training split -> colour-normalised cache (the daemon's normalisation) -> ablation -> final training
#   (+ temperature, threshold, ONNX export, INT8 quantization) -> perturbed test copies
#   (scripts/perturb-images.ts + preprocess-dataset) -> model files + model.json in models/
#   -> the out-of-domain gate fitted on train/val (scripts/fit-gate.ts; full runs only)
#   -> what camera shifts of val need of the flag threshold, recorded (scripts/fit-threshold.ts;
#   full runs only; --lower would apply it)
#   -> the training images' red-cell size (scripts/fit-magnification.ts; full runs only)
#   -> evaluation of the model as shipped -> figures in model.json + MODEL_CARD.md
#
#   training/reproduce.sh            full run, writes models/ and training/split.json
#   training/reproduce.sh --smoke    seconds-long run of the same code on a few images, in a temp dir
#
# Env: DATA (default ../shared/data/all-smears), CACHE (default /work/cache/all-smears, reused
# when its manifest exists; REBUILD_CACHE=1 forces; the colour-normalised cache beside it, CACHE-colour,
# is rebuilt whenever the colour reference changes), WORK (default training/runs/reproduce),
# ABLATION_EPOCHS (2), FINAL_EPOCHS (80), STAIN_SETS (4 re-stained copies of each training image),
# SKIP_ABLATION=1; COLOUR_LOW_QUANTILE / COLOUR_HIGH_QUANTILE (0.1 / 0.9: the training backgrounds'
# range the colour normalisation moves images into; 0.5 / 0.5 = one reference colour); FINAL_BACKBONE / FINAL_WIDTH (another network than pipeline.FINAL's, e.g. resnet10
# 0.875 with FINAL_EPOCHS=60) with MODELS (default models/) so such a run does not replace the shipped files.
# CAMERA_SHARE (0-1; default pipeline.CAMERA_SHARE): the share of training samples that get another camera's shifts.
# ANNEAL_EPOCHS (default pipeline.ANNEAL_EPOCHS): epochs on the original images alone after the main ones, at a
# tenth of the rate; the main stage's network is kept as WORK/main.pt (`final --reuse-main` anneals it again).
# ANNEAL_MAGNIFICATION (0-1; default pipeline.ANNEAL_MAGNIFICATION): share of those samples zoomed x0.75-1.25.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
start=$(date +%s)
smoke=0
[ "${1:-}" = "--smoke" ] && smoke=1

bash training/setup.sh >/dev/null
py="$repo/training/.venv/bin/python"
export PYTHONPATH="$repo/training${PYTHONPATH:+:$PYTHONPATH}"
cli=(node --import tsx src/cli.ts)
log() { echo "[reproduce $(($(date +%s) - start))s] $*" >&2; }

if [ "$smoke" = 1 ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  DATA_ALL="${DATA:-$repo/../shared/data/all-smears}"
  data="$tmp/data"
  # a few real images per class: the committed samples if present, else the data set
  src="$repo/test/fixtures/samples"
  [ -d "$src/Benign" ] || src="$DATA_ALL"
  for c in Benign Early Pre Pro; do
    mkdir -p "$data/$c"
    find "$src/$c" -maxdepth 1 -type f | sort | head -n 6 | while read -r f; do cp "$f" "$data/$c/"; done
  done
  cache="$tmp/cache"; work="$tmp/work"; models="$tmp/models"; split="$tmp/split.json"
  colour_cache="$tmp/cache-colour"
  flag=(--smoke)
  variant_sets=1
else
  data="${DATA:-$repo/../shared/data/all-smears}"
  cache="${CACHE:-/work/cache/all-smears}"
  colour_cache="${cache%/}-colour"
  work="${WORK:-$repo/training/runs/reproduce}"
  models="${MODELS:-$repo/models}"; split="$repo/training/split.json"
  flag=()
  variant_sets="${STAIN_SETS:-4}"
fi
mkdir -p "$work"

if [ "$smoke" = 1 ] || [ "${REBUILD_CACHE:-0}" = 1 ] || [ ! -f "$cache/manifest.json" ]; then
  log "preprocess-dataset $data -> $cache"
  "${cli[@]}" preprocess-dataset --data "$data" --out "$cache"
fi

log "split"
"$py" -m blastwatch_train split --cache "$cache" --out "$split" "${flag[@]}"

# Colour constancy is part of the model: its reference range comes from the training split only
# (the split itself is made on the raw cache, so it does not depend on the reference), and every
# cache the model is trained or evaluated on goes through the same normalisation, which the
# package step copies into model.json (preprocessing.colour) for the daemon.
log "colour reference of the training split; colour-normalised cache"
node --import tsx scripts/colour-reference.ts --data "$data" --split "$split" --out "$work/colour.json" \
  --low-quantile "${COLOUR_LOW_QUANTILE:-0.1}" --high-quantile "${COLOUR_HIGH_QUANTILE:-0.9}" >/dev/null
colour_flag=(--colour "$work/colour.json")
if [ "$smoke" = 1 ] || [ "${REBUILD_CACHE:-0}" = 1 ] || ! "$py" - "$colour_cache/manifest.json" "$work/colour.json" <<'PY'
import json, sys
try:
    cached = json.load(open(sys.argv[1])).get("colour")
except OSError:
    sys.exit(1)
sys.exit(0 if cached == json.load(open(sys.argv[2])) else 1)
PY
then
  "${cli[@]}" preprocess-dataset --data "$data" --out "$colour_cache" "${colour_flag[@]}"
fi

# Stain variants: re-stained copies of the training images (exposure, saturation, hue, and another
# camera's white balance: --kind camera), run through the daemon's own preprocessing (colour
# normalisation, segmentation) so each copy carries what the normalisation leaves of the change
# and the mask it really produces. Training draws each sample from the original or one copy.
log "stain variants of the training split ($variant_sets sets) through preprocess-dataset"
"$py" -m blastwatch_train test-files --split "$split" --subset train --out "$work/train-files.txt"
rm -rf "$work/stain-images" "$work/stain-variants"
for n in $(seq 1 "$variant_sets"); do
  node --import tsx scripts/perturb-images.ts --data "$data" --out "$work/stain-images/stain-$n" --kind camera \
    --seed "$n" --files "$work/train-files.txt"
  "${cli[@]}" preprocess-dataset --data "$work/stain-images/stain-$n" --out "$work/stain-variants/stain-$n" \
    "${colour_flag[@]}"
  rm -rf "$work/stain-images/stain-$n"
done

# The shipped model first, so an interrupted run still leaves it; the ablation table after.
log "final training + calibration + export + INT8"
"$py" -m blastwatch_train final --cache "$colour_cache" --split "$split" --work "$work" \
  --variants "$work/stain-variants" --epochs "${FINAL_EPOCHS:-80}" "${flag[@]}" \
  ${FINAL_BACKBONE:+--backbone "$FINAL_BACKBONE"} ${FINAL_WIDTH:+--width "$FINAL_WIDTH"} \
  ${CAMERA_SHARE:+--camera-share "$CAMERA_SHARE"} ${ANNEAL_EPOCHS:+--anneal-epochs "$ANNEAL_EPOCHS"} \
  ${ANNEAL_MAGNIFICATION:+--anneal-magnification "$ANNEAL_MAGNIFICATION"}

if [ "${SKIP_ABLATION:-0}" != 1 ]; then
  log "ablation"
  "$py" -m blastwatch_train ablation --cache "$colour_cache" --split "$split" --work "$work" \
    --variants "$work/stain-variants" --epochs "${ABLATION_EPOCHS:-2}" "${flag[@]}"
fi

log "robustness: perturbed copies of the test split through the daemon's preprocessing"
"$py" -m blastwatch_train test-files --split "$split" --out "$work/test-files.txt"
kinds=(brightness+10 brightness-10 hue+10 saturation-15 blur1 jpeg70)
[ "$smoke" = 1 ] && kinds=(brightness+10)
rm -rf "$work/perturbed" "$work/perturbed-cache"
for kind in "${kinds[@]}"; do
  node --import tsx scripts/perturb-images.ts --data "$data" --out "$work/perturbed/$kind" --kind "$kind" \
    --files "$work/test-files.txt"
  "${cli[@]}" preprocess-dataset --data "$work/perturbed/$kind" --out "$work/perturbed-cache/$kind" \
    "${colour_flag[@]}"
done

log "package: model files and model.json"
# The card and model.json name the command as run: the settings below change what it trains.
cmd="training/reproduce.sh"; [ "$smoke" = 1 ] && cmd="training/reproduce.sh --smoke"
for v in CAMERA_SHARE ANNEAL_EPOCHS ANNEAL_MAGNIFICATION FINAL_EPOCHS FINAL_BACKBONE FINAL_WIDTH STAIN_SETS COLOUR_LOW_QUANTILE \
  COLOUR_HIGH_QUANTILE ABLATION_EPOCHS SKIP_ABLATION; do
  [ -n "${!v:-}" ] && cmd="$v=${!v} $cmd"
done
"$py" -m blastwatch_train package --cache "$colour_cache" --split "$split" --work "$work" --models "$models" \
  --command "$cmd" --total-seconds "$(($(date +%s) - start))" "${flag[@]}"
if [ "$smoke" != 1 ]; then
  # The out-of-domain gate belongs to these weights: fitted on train/val through the daemon's path.
  # It decides which images are screened, and so which misses are silent: what the camera shifts
  # need of the threshold is measured after it and recorded in model.json (threshold_fit); the
  # shipped threshold stays the clean rule's (training/README.md says why).
  log "out-of-domain gate"
  node --import tsx scripts/fit-gate.ts --data "$data" --split "$split" --model "$models"
  log "flag threshold under camera shifts"
  node --import tsx scripts/fit-threshold.ts --data "$data" --split "$split" --model "$models"
  # The training pictures' red-cell size, against which `blastwatch evaluate` checks another
  # microscope's magnification (docs/new-microscope.md); it changes no result.
  log "red-cell size of the training images"
  node --import tsx scripts/fit-magnification.ts --data "$data" --split "$split" --model "$models"
fi

log "report"
"$py" -m blastwatch_train report --cache "$colour_cache" --split "$split" --work "$work" --models "$models" \
  --perturbed "$work/perturbed-cache" "${flag[@]}"
log "done in $(($(date +%s) - start)) s; model files in $models"
