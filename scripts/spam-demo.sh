#!/usr/bin/env bash
# The second demo: masked-LM pretraining of a small BERT on unlabelled SpamAssassin text (the test split held
# out), then spam/ham fine-tuning from that checkpoint vs the same recipe from random initialisation.
# Sizes via env: MLM_STEPS (default 120), VOCAB_SIZE (4000), SEQ (64 tokens for MLM), FT_SEQ (32 for fine-tuning:
# subject + first words), TRAIN (128 labelled texts), TEST (200), EPOCHS (8). SKIP_SETUP=1 skips scripts/setup.sh.
# Measured on a shared 2-core CPU adapter after set-up: 6 min (2 s per MLM step); up to ~16 min when the
# machine is busy (6.6 s per MLM step seen). MLM_STEPS=300 took 13.5 min.
set -euo pipefail
cd "$(dirname "$0")/.."
MLM_STEPS=${MLM_STEPS:-120} VOCAB_SIZE=${VOCAB_SIZE:-4000} SEQ=${SEQ:-64} FT_SEQ=${FT_SEQ:-32} TRAIN=${TRAIN:-128} TEST=${TEST:-200} EPOCHS=${EPOCHS:-8}
VOCAB=${VOCAB:-../shared/assets/bert/vocab.txt}
OUT=${OUT:-runs/spam-demo}
[ "${SKIP_SETUP:-}" = 1 ] || bash scripts/setup.sh
[ -f "$VOCAB" ] || { echo "spam-demo: no WordPiece vocabulary at $VOCAB (set VOCAB=path/to/vocab.txt)" >&2; exit 1; }
mkdir -p "$OUT"
# A small BERT (hidden 64, 2 layers, 2 heads); vocab_size is replaced by the trimmed vocabulary's size. No dropout
# and a wide init (0.1) for both runs: with HF's 0.02 + dropout 0.1 (40 fine-tuning steps, seq 64), and with 32
# steps at seq 64, neither run left the majority class (measured: both 68.5%, macro-F1 0.407).
cat > "$OUT/config.json" <<'EOF'
{ "model_type": "bert", "vocab_size": 30522, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
  "intermediate_size": 256, "max_position_embeddings": 128, "hidden_dropout_prob": 0, "attention_probs_dropout_prob": 0,
  "initializer_range": 0.1 }
EOF
now() { date +%s; }
t0=$(now)
echo "== MLM pretraining on unlabelled SpamAssassin text (every text outside the test split; labels unused)"
node dist/cli.js pretrain-mlm --data spam-assassin --test-fraction 0.2 --split-seed 0 --config "$OUT/config.json" --vocab "$VOCAB" \
  --vocab-size "$VOCAB_SIZE" --steps "$MLM_STEPS" --batch 32 --seq "$SEQ" --lr 3e-3 --seed 0 --out "$OUT/mlm" | tee "$OUT/mlm.txt"
t1=$(now)
common=(--model "$OUT/mlm" --data spam-assassin --test-fraction 0.2 --seed 0 --strategy full --train-limit "$TRAIN" --test-limit "$TEST"
        --epochs "$EPOCHS" --batch 16 --seq "$FT_SEQ" --lr 1e-3 --head-lr 1e-2 --json)
echo "== spam/ham fine-tuning from the MLM checkpoint ($TRAIN labelled texts)"
node dist/cli.js finetune-text "${common[@]}" | tail -1 > "$OUT/pretrained.json"
t2=$(now)
echo "== the same recipe from random initialisation (same architecture and vocabulary, no pretraining)"
node dist/cli.js finetune-text "${common[@]}" --from-scratch | tail -1 > "$OUT/scratch.json"
t3=$(now)
node -e '
const [p, s] = [process.argv[1], process.argv[2]].map((f) => JSON.parse(require("fs").readFileSync(f, "utf8")));
const row = (name, r) => `${name.padEnd(22)} accuracy ${(100 * r.accuracy).toFixed(1)}%  macro-F1 ${r.macroF1.toFixed(3)}  loss ${r.firstLoss.toFixed(3)} -> ${r.lastLoss.toFixed(3)}  ${r.steps} steps  ${r.seconds.toFixed(0)} s`;
console.log(`== summary: SpamAssassin spam/ham, ${p.train} train / ${p.test} test texts (test split never seen in pretraining)`);
console.log(row("MLM-pretrained", p));
console.log(row("random init", s));
' "$OUT/pretrained.json" "$OUT/scratch.json"
echo "MLM: $(grep -o '[0-9]* steps on [0-9]* texts.*' "$OUT/mlm.txt")"
echo "wall time: MLM $((t1 - t0)) s, fine-tune (pretrained) $((t2 - t1)) s, fine-tune (random init) $((t3 - t2)) s, total $((t3 - t0)) s"
