#!/usr/bin/env bash
# The development protocol of docs/results.md: every encoder trained with the same backbone, seed and
# sample budget on the LFW people outside pairs.txt folds 7-8, then verified on folds 7-8 from
# protected queries (one seeded random rank per image, flip-fused templates, 10 stratified folds).
# Training skips the per-epoch dev evaluation (DEV_PAIRS=); the eval step after it gives the numbers.
#   experiments/dev_protocol.sh [ROW ...]     (default: every row; run from the repository root)
# The rows are configs/rows/index.yaml: row NAME trains its base config + configs/rows/NAME.yaml.
# BUDGET (samples, default 40000), BACKBONE (default mobilefacenet_fast) and OUT (default runs/) override.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
PY=${PY:-.venv/bin/python}
BUDGET=${BUDGET:-40000}
BACKBONE=${BACKBONE:-mobilefacenet_fast}
OUT=${OUT:-runs}
LFW=../shared/data/lfw
ROWS=configs/rows

# The index as lines: the base config, then "NAME PER_RANK" for every row in table order.
mapfile -t index < <("$PY" -c 'import sys, yaml
index = yaml.safe_load(open(sys.argv[1]))
print(index["base"])
for name, row in index["rows"].items():
    print(name, int(bool(row.get("per_rank"))))' "$ROWS/index.yaml")
base=${index[0]}
known=() per_rank_rows=" "
for line in "${index[@]:1}"; do
  read -r name per_rank <<< "$line"
  known+=("$name")
  [ "$per_rank" = 1 ] && per_rank_rows+="$name "
done
rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=("${known[@]}")

for row in "${rows[@]}"; do
  if [[ " ${known[*]} " != *" $row "* ]]; then
    echo "unknown row $row ($(IFS=,; echo "${known[*]}" | sed 's/,/, /g'))" >&2; exit 2
  fi
  run="$OUT/dev_$row"
  start=$(date +%s)
  "$PY" -m partialface train "$base" "$ROWS/$row.yaml" --no-progress --set BACKBONE_NAME="$BACKBONE" \
    --set MAX_SAMPLES="$BUDGET" --set THREADS=1 --set WORKERS=1 --set DEV_PAIRS= --set OUT="$run"
  echo "$row: trained in $(( $(date +%s) - start )) s"
  per_rank=(); [[ "$per_rank_rows" == *" $row "* ]] && per_rank=(--per-rank)
  "$PY" -m partialface eval --model "$run/checkpoint.pt" --pairs "$LFW/pairs.txt" --images "$LFW/images" \
    --folds 7,8 --seed 0 --json "$run/eval.json" --roc "$run/roc.png" --threads 1 --quiet "${per_rank[@]}"
done
