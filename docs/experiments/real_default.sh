#!/usr/bin/env bash
# The shipped default weights, from real public images (BUS-BRA, mini-MIAS) and
# phantoms (MRI): the commands behind weights/README.md, in order. Run from the
# repository root with the data beside it (../shared/data, never committed).
# A GPU is used when there is one (--device auto); on 2 CPU cores stage 1 takes
# about 50 minutes, stage 2 about 30, stage 3 about 30, stage 5 about 24, stage 6b about 12 and step 7 about 40 (EPOCHS1 / EPOCHS2 change the first two).
set -euo pipefail
B=${BUSBRA:-../shared/data/bus-bra/BUSBRA}
M=${MIAS:-../shared/data/mini-mias/all-mias}
OUT=${OUT:-runs/real-default}
EPOCHS1=${EPOCHS1:-10}
EPOCHS2=${EPOCHS2:-6}
NAP=${NAP:-.venv/bin/napari-avpt}
mkdir -p "$OUT"
# Patients: folds 3-5 train, fold 2 chooses the epoch and calibrates, fold 1 is held out.
TRAIN=(--data "$B:folds=3,4,5" --data "$M:folds=3,4,5" --data phantoms:MG:40 --data phantoms:US:30 --data phantoms:MR:16)
VAL=(--val-data "$B:folds=2" --val-data "$M:folds=2" --val-data phantoms:MG:12:7 --val-data phantoms:US:12:7
  --val-data phantoms:MR:4:7)

# 1. A backbone trained with supervision: the whole ViT and its heads, from the phantom MAE backbone.
$NAP train --method full --strong-augment "${TRAIN[@]}" "${VAL[@]}" \
  --epochs "$EPOCHS1" --patience "$EPOCHS1" --batch-size 16 --lambda-negative 0.05 --tissue anatomy \
  --backbone-weights weights/vit_tiny_mae_phantoms.safetensors --out "$OUT/full.safetensors" --threads 2
$NAP export-backbone "$OUT/full.safetensors" --out "$OUT/vit_tiny_breast.safetensors" --overwrite \
  --recipe "supervised on BUS-BRA and mini-MIAS folds 3-5 and phantoms (napari-avpt train --method full)"

# 2. A-VPT prompts and heads on that backbone, frozen; the decoder starts from stage 1's.
$NAP train --method avpt --strong-augment "${TRAIN[@]}" "${VAL[@]}" \
  --epochs "$EPOCHS2" --patience "$EPOCHS2" --batch-size 16 --lambda-negative 0.05 --tissue anatomy \
  --backbone-weights "$OUT/vit_tiny_breast.safetensors" --decoder-from "$OUT/full.safetensors" \
  --out "$OUT/avpt.safetensors" --threads 2

# 3. Six more epochs from stage 2's set, with the mammogram crops free of the pectoral muscle
#    (engine.anatomy finds it on films with dark margins since), the epoch chosen on the real
#    modalities alone (the four MRI phantom volumes left out of the choice).
$NAP train --init "$OUT/avpt.safetensors" --method avpt --strong-augment "${TRAIN[@]}" "${VAL[@]}" \
  --epochs 6 --patience 6 --choose-on MG,US --batch-size 16 --lambda-negative 0.05 --tissue anatomy \
  --out "$OUT/avpt_refined.safetensors" --threads 2

# 4. The class from the drawn lesion's shape (ultrasound), fitted on the choosing patients.
$NAP calibrate-class --prompts "$OUT/avpt_refined.safetensors" --data "$B:folds=2" --out "$OUT/avpt_shape.safetensors"

# 5. One lesion decoder per modality; the ultrasound one drawn anew and trained alone on the frozen
#    set (prompts, class head and the mammogram and MRI decoders as they are), light augmentation.
$NAP train --init "$OUT/avpt_shape.safetensors" --method avpt --tune decoder --decoder-per-modality --new-decoder \
  --data "$B:folds=3,4,5" --data phantoms:US:30 --val-data "$B:folds=2" \
  --epochs 12 --patience 12 --choose-on US --batch-size 16 --lr 2e-3 --lambda-negative 0.05 --tissue anatomy \
  --out "$OUT/avpt_us.safetensors" --threads 2

# 6. The class-from-shape fit again: the drawn ultrasound lesions changed.
$NAP calibrate-class --prompts "$OUT/avpt_us.safetensors" --data "$B:folds=2" --out "$OUT/avpt_stage6.safetensors"

# 6b. Ten more epochs of the ultrasound decoder alone (lr 1e-3), the set of step 6 a candidate too
#     (train --init scores it first), then the class-from-shape fit once more.
$NAP train --init "$OUT/avpt_stage6.safetensors" --method avpt --tune decoder \
  --data "$B:folds=3,4,5" --data phantoms:US:30 --val-data "$B:folds=2" \
  --epochs 10 --minutes 18 --patience 10 --choose-on US --batch-size 16 --lr 1e-3 --lambda-negative 0.05 \
  --tissue anatomy --jobs 2 --out "$OUT/avpt_us2.safetensors" --threads 2
$NAP calibrate-class --prompts "$OUT/avpt_us2.safetensors" --data "$B:folds=2" --out "$OUT/avpt_us2_shape.safetensors"

# 7. The ultrasound decoder on the frames and the views zoomed on their lesions (every ultrasound
#    frame with a lesion gives one since: data.make_examples), 10 + 8 epochs; the set records its
#    zoomed second look (metadata zoom_look), then the class-from-shape fit again. (Steps 5 and 6
#    were run before zoomed views existed: run again today, they see them too.)
$NAP train --init "$OUT/avpt_us2_shape.safetensors" --method avpt --tune decoder \
  --data "$B:folds=3,4,5" --data phantoms:US:30 --val-data "$B:folds=2" \
  --epochs 10 --minutes 30 --patience 10 --choose-on US --batch-size 16 --lr 1e-3 --lambda-negative 0.05 \
  --tissue anatomy --jobs 2 --out "$OUT/avpt_zoom.safetensors" --threads 2
$NAP train --init "$OUT/avpt_zoom.safetensors" --method avpt --tune decoder \
  --data "$B:folds=3,4,5" --data phantoms:US:30 --val-data "$B:folds=2" \
  --epochs 8 --minutes 20 --patience 8 --choose-on US --batch-size 16 --lr 1e-3 --lambda-negative 0.05 \
  --tissue anatomy --jobs 2 --out "$OUT/avpt_zoom2.safetensors" --threads 2
$NAP calibrate-class --prompts "$OUT/avpt_zoom2.safetensors" --data "$B:folds=2" --out "$OUT/avpt_zoom2_shape.safetensors"

# 8. Which drawn ultrasound region is the lesion: a fit of the regions' features (metadata
#    lesion_choice; the tensors are unchanged).
$NAP calibrate-regions --prompts "$OUT/avpt_zoom2_shape.safetensors" --data "$B:folds=2" --out "$OUT/avpt_default.safetensors"

# 9. Held-out patients (fold 1), whole images as `segment` runs them.
$NAP bench --part real --prompts "$OUT/avpt_default.safetensors" \
  --real-data "$B:folds=1" --real-data "$M:folds=1" --json "$OUT/real.json"
