#!/usr/bin/env bash
# The default weights at a 320 px input (NOTES 2026-12-02: a full fine-tune at 320 px was
# ahead of 224 px on held-out ultrasound): the 224 px supervised backbone (real_default.sh,
# stage 1) trained further at 320 px, then A-VPT prompts on it, frozen. Run from the
# repository root with the data beside it (../shared/data, never committed).
# STEP=refine runs steps 3-4 alone, on stage 2's saved set; STEP=stage2 runs steps 1-2 and scores
# stage 2's set on fold 2 only. STAGE1_INIT=SET continues stage 1 from an earlier stage-1 set
# (--init) instead of starting it from the 224 px backbone.
# On 2 CPU cores: preparing the 320 px examples about 8 minutes (cached after), stage 1 about
# 11 minutes an epoch (170 steps of 16, then validation), stages 2 and 3 about 9.
set -euo pipefail
B=${BUSBRA:-../shared/data/bus-bra/BUSBRA}
M=${MIAS:-../shared/data/mini-mias/all-mias}
OUT=${OUT:-runs/real-320}
EPOCHS1=${EPOCHS1:-4}
EPOCHS2=${EPOCHS2:-4}
EPOCHS3=${EPOCHS3:-6}
STEP=${STEP:-all}
case "$STEP" in all | refine | stage2) ;; *) echo "real_320.sh: STEP must be all, refine or stage2, not $STEP" >&2; exit 2 ;; esac
BACKBONE=${BACKBONE:-weights/vit_tiny_breast.safetensors}
NAP=${NAP:-.venv/bin/napari-avpt}
mkdir -p "$OUT"
TRAIN=(--data "$B:folds=3,4,5" --data "$M:folds=3,4,5" --data phantoms:MG:40 --data phantoms:US:30 --data phantoms:MR:16)
VAL=(--val-data "$B:folds=2" --val-data "$M:folds=2" --val-data phantoms:MG:12:7 --val-data phantoms:US:12:7
  --val-data phantoms:MR:4:7)
COMMON=(--img-size 320 --strong-augment --batch-size 16 --lambda-negative 0.05 --tissue anatomy --choose-on MG,US --threads 2)

if [ -n "${STAGE1_INIT:-}" ]; then START=(--init "$STAGE1_INIT"); else START=(--backbone-weights "$BACKBONE"); fi

if [ "$STEP" != refine ]; then
# 1. The whole ViT and its heads at 320 px (position embeddings resampled), from the 224 px backbone.
$NAP train --method full "${TRAIN[@]}" "${VAL[@]}" "${COMMON[@]}" --epochs "$EPOCHS1" --patience "$EPOCHS1" \
  "${START[@]}" --out "$OUT/full.safetensors" --overwrite
$NAP export-backbone "$OUT/full.safetensors" --out "$OUT/vit_tiny_breast.safetensors" --overwrite \
  --recipe "supervised on BUS-BRA and mini-MIAS folds 3-5 and phantoms, 224 px then 320 px (napari-avpt train --method full)"

# 2. A-VPT prompts and heads on that backbone, frozen; the decoder starts from stage 1's.
$NAP train --method avpt "${TRAIN[@]}" "${VAL[@]}" "${COMMON[@]}" --epochs "$EPOCHS2" --patience "$EPOCHS2" \
  --backbone-weights "$OUT/vit_tiny_breast.safetensors" --decoder-from "$OUT/full.safetensors" \
  --out "$OUT/avpt.safetensors" --overwrite
fi
if [ "$STEP" = stage2 ]; then
  $NAP bench --part real --prompts "$OUT/avpt.safetensors" --backbone-weights "$OUT/vit_tiny_breast.safetensors" \
    --real-data "$B:folds=2" --real-data "$M:folds=2" --json "$OUT/stage2_fold2.json"
  exit 0
fi

# 3. More prompt epochs from stage 2's set (the shipped default had 4 + 6 in all).
$NAP train --init "$OUT/avpt.safetensors" --method avpt "${TRAIN[@]}" "${VAL[@]}" "${COMMON[@]}" \
  --epochs "$EPOCHS3" --patience "$EPOCHS3" --backbone-weights "$OUT/vit_tiny_breast.safetensors" \
  --out "$OUT/avpt_refined.safetensors" --overwrite

# 4. Fold 2 (the choosing patients) against the shipped default, then held-out fold 1.
for F in 2 1; do
  $NAP bench --part real --prompts "$OUT/avpt_refined.safetensors" --backbone-weights "$OUT/vit_tiny_breast.safetensors" \
    --real-data "$B:folds=$F" --real-data "$M:folds=$F" --json "$OUT/real_fold$F.json"
done
