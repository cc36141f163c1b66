#!/usr/bin/env bash
# The development protocol of docs/results.md: every encoder trained with the same backbone, seed and
# sample budget on the LFW people outside pairs.txt folds 7-8, then verified on folds 7-8 from
# protected queries (one seeded random rank per image, flip-fused templates, 10 stratified folds).
# Training skips the per-epoch dev evaluation (DEV_PAIRS=); the eval step after it gives the numbers.
#   experiments/dev_protocol.sh [ENCODER ...]     (default: every row; run from the repository root)
# BUDGET (samples, default 40000), BACKBONE (default mobilefacenet_fast) and OUT (default runs/) override.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
PY=${PY:-.venv/bin/python}
BUDGET=${BUDGET:-40000}
BACKBONE=${BACKBONE:-mobilefacenet_fast}
OUT=${OUT:-runs}
LFW=../shared/data/lfw
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=(rgb partialface partialface_generated fixed pruned)

for row in "${rows[@]}"; do
  case "$row" in
    rgb) config=configs/rgb_lfw_dev.yaml; extra=() ;;
    partialface) config=configs/partialface_lfw_dev.yaml; extra=() ;;
    partialface_generated) config=configs/partialface_lfw_dev.yaml; extra=(--set "PLAN={generate: 2026, m: 6, n: 6}") ;;
    fixed) config=configs/partialface_lfw_dev.yaml; extra=(--set ENCODER=fixed --set NUM_AUG=1) ;;
    pruned) config=configs/partialface_lfw_dev.yaml; extra=(--set ENCODER=pruned --set NUM_AUG=1) ;;
    *) echo "unknown row $row (rgb, partialface, partialface_generated, fixed, pruned)" >&2; exit 2 ;;
  esac
  run="$OUT/dev_$row"
  start=$(date +%s)
  "$PY" -m partialface train "$config" --no-progress --set BACKBONE_NAME="$BACKBONE" --set MAX_SAMPLES="$BUDGET" \
    --set THREADS=1 --set WORKERS=1 --set DEV_PAIRS= --set OUT="$run" "${extra[@]}"
  echo "$row: trained in $(( $(date +%s) - start )) s"
  per_rank=(); [[ "$row" == partialface* ]] && per_rank=(--per-rank)
  "$PY" -m partialface eval --model "$run/checkpoint.pt" --pairs "$LFW/pairs.txt" --images "$LFW/images" \
    --folds 7,8 --seed 0 --json "$run/eval.json" --roc "$run/roc.png" --threads 1 --quiet "${per_rank[@]}"
done
