#!/usr/bin/env bash
# Stages 1, 2 and 5 of real_default.sh on one GPU, as one run of at most 10
# minutes: the supervised backbone, A-VPT prompts on it, and the ultrasound
# decoder of its own, each with a time budget (train --minutes) rather than
# a number of epochs. The class-from-shape fits (stages 4 and 6) and the
# held-out bench (stage 7) then run on the CPU, on the original files.
#
# Before (here): the training images packed, the missing packages as wheels:
#   python docs/experiments/pack_for_device.py --out .carry/real.tar.gz \
#     --busbra ../shared/data/bus-bra/BUSBRA --mias ../shared/data/mini-mias/all-mias --folds 2,3,4,5
# On the device (carry .carry and .whl): bash docs/experiments/real_default_device.sh
# With a GPU of one's own, real_default.sh with --minutes in place of --epochs does the same.
set -euo pipefail
export PYTHONUNBUFFERED=1
OUTDIR=${OUT:-/tmp/device-out}
RUN=${RUN:-/tmp/run}
DATA=${DATA:-/tmp/data}
M1=${M1:-3.5}  # minutes of training per stage
M2=${M2:-1.5}
M5=${M5:-0.6}
JOBS=${JOBS:-$(($(nproc) - 1))}
WORKERS=${WORKERS:-8}
N=${N:-}  # a dry run on a CPU: N=16 takes the first 16 images of each folder, 2 phantoms of each kind
mkdir -p "$OUTDIR" "$RUN"
exec > >(tee -a "$OUTDIR/log.txt") 2>&1
t0=$(date +%s)
stamp() { echo "[$(($(date +%s) - t0)) s] $*"; }

if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONPATH=${PYTHONPATH:-$PWD} NAPARI_AVPT_CACHE=${NAPARI_AVPT_CACHE:-/tmp/cache}
NAP=(python3 -m napari_avpt.cli)
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"
[ -d "$DATA/BUSBRA" ] || python3 docs/experiments/unpack_for_device.py .carry/real.tar.gz "$DATA"
stamp unpacked
B=$DATA/BUSBRA
M=$DATA/all-mias
n=${N:+:n=$N}
p() { if [ -n "$N" ]; then echo "phantoms:$1:2${3:-}"; else echo "phantoms:$1:$2${3:-}"; fi; }
TRAIN=(--data "$B:folds=3,4,5$n" --data "$M:folds=3,4,5$n" --data "$(p MG 40)" --data "$(p US 30)" --data "$(p MR 16)")
VAL=(--val-data "$B:folds=2$n" --val-data "$M:folds=2$n" --val-data "$(p MG 12 :7)" --val-data "$(p US 12 :7)"
  --val-data "$(p MR 4 :7)")
FAST=(--jobs "$JOBS" --workers "$WORKERS" --quiet --device auto)
# What comes back (at most 8 files): the prompt sets, the backbone in two parts, the log and
# the stages' stats in one tar, stage by stage.
stats() { (cd "$RUN" && tar -cf "$OUTDIR/stats.tar" ./*.stats.json); }

# 1. The backbone, supervised: the whole ViT from the phantom MAE backbone.
"${NAP[@]}" train --method full --strong-augment "${TRAIN[@]}" "${VAL[@]}" "${FAST[@]}" \
  --epochs 200 --minutes "$M1" --patience 200 --batch-size 16 --lambda-negative 0.05 --tissue anatomy \
  --backbone-weights weights/vit_tiny_mae_phantoms.safetensors --out "$RUN/full.safetensors"
stats
"${NAP[@]}" export-backbone "$RUN/full.safetensors" --out "$RUN/vit_tiny_breast.safetensors" --overwrite \
  --recipe "supervised on BUS-BRA and mini-MIAS folds 3-5 and phantoms (napari-avpt train --method full, $M1 min on one GPU)"
split -b 15M -d "$RUN/vit_tiny_breast.safetensors" "$OUTDIR/backbone.part"  # at most 16 MiB a file comes back
stamp stage 1 done

# 2. A-VPT prompts on that frozen backbone, the decoder from stage 1's, the epoch chosen on the real modalities.
"${NAP[@]}" train --method avpt --strong-augment "${TRAIN[@]}" "${VAL[@]}" "${FAST[@]}" \
  --epochs 200 --minutes "$M2" --patience 200 --choose-on MG,US --batch-size 16 --lambda-negative 0.05 \
  --tissue anatomy --backbone-weights "$RUN/vit_tiny_breast.safetensors" --decoder-from "$RUN/full.safetensors" \
  --out "$RUN/avpt.safetensors"
cp "$RUN/avpt.safetensors" "$OUTDIR/" && stats
stamp stage 2 done

# 5. One lesion decoder per modality, the ultrasound one drawn anew and trained alone.
"${NAP[@]}" train --init "$RUN/avpt.safetensors" --method avpt --tune decoder --decoder-per-modality --new-decoder \
  --data "$B:folds=3,4,5$n" --data "$(p US 30)" --val-data "$B:folds=2$n" "${FAST[@]}" \
  --epochs 200 --minutes "$M5" --patience 200 --choose-on US --batch-size 16 --lr 2e-3 --lambda-negative 0.05 \
  --tissue anatomy --out "$RUN/avpt_us.safetensors"
cp "$RUN/avpt_us.safetensors" "$OUTDIR/" && stats
stamp stage 5 done

# A CUDA run of segment on phantom files, timed (the second call: the first loads and warms up).
"${NAP[@]}" phantoms --format folder --n 6 --seed 5 --out /tmp/ph --quiet
for i in 1 2; do
  s0=$(date +%s.%N)
  "${NAP[@]}" segment /tmp/ph/images/* --out "/tmp/seg$i" --prompts "$RUN/avpt_us.safetensors" --device auto >/dev/null
  echo "segment of 6 phantom images on $(python3 -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")'): $(python3 -c "import time; print(round(time.time() - $s0, 1))") s"
done
stamp all done
