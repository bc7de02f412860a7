#!/usr/bin/env bash
# A quick A/B of the input size: the whole model (--method full) fine-tuned from the shipped
# backbone on 200 BUS-BRA frames of fold 2 at 224 and at 320 px (the position embeddings resampled),
# scored on the first 150 frames of held-out fold 1. SEED=1 for a second draw. Run from the repository root.
set -uo pipefail
OUT=${OUT:-runs/input-size}; mkdir -p "$OUT"
B=../shared/data/bus-bra/BUSBRA; NAP=.venv/bin/napari-avpt
for S in 224 320; do
  $NAP train --method full --img-size $S --data "$B:folds=2:n=200" --val-data "$B:folds=3:n=60" --seed ${SEED:-0} --epochs 4 --patience 4 \
    --batch-size 16 --lambda-negative 0.05 --tissue anatomy --backbone-weights weights/vit_tiny_breast.safetensors \
    --out $OUT/full$S.safetensors --overwrite --threads 2 --quiet > $OUT/train$S.log 2>&1 || echo "train $S failed"
  $NAP bench --part real --quiet --prompts $OUT/full$S.safetensors --real-data "$B:folds=1:n=150" --json $OUT/b$S.json > $OUT/bench$S.log 2>&1 || echo "bench $S failed"
  date
done
