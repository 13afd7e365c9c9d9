#!/usr/bin/env bash
# Regenerates the tiny Hugging Face-format fixtures of tests/MoraEngine.Tests/TestData/hf/ (see bench/hf/README.md)
# and bench/hf/reference-check.txt, from public reference code that is imported, never copied into this repository.
#
# Needs /usr/bin/python3 with Debian's python3-torch and python3-numpy (no transformers, no safetensors package):
#   apt-get install -y python3-torch python3-numpy libopenblas0-pthread
#
# Usage: bench/hf/make-hf-fixtures.sh NANOGPT_DIR LLAMA2C_DIR [OUT_DIR]
# where the two directories are checkouts of the reference repositories, e.g.
#   git clone https://github.com/karpathy/nanoGPT  /tmp/ref/nanogpt
#   git clone https://github.com/karpathy/llama2.c /tmp/ref/llama2c
#   git -C /tmp/ref/nanogpt checkout 3adf61e154c3fe3fca428ad6bc3818b27a3b8291   # the commits the checked-in
#   git -C /tmp/ref/llama2c checkout 350e04fe35433e6d2941dce5a1f53308f87058eb   # fixtures were made from
# Only nanoGPT's model.py and llama2.c's model.py and export.py are read, so a directory holding just those files
# works too (then pass NANOGPT_COMMIT / LLAMA2C_COMMIT in the environment to record the commits). In a sandbox
# without network access, extract them from a bare mirror instead, e.g.
#   git --git-dir=MIRROR/nanoGPT.git show HEAD:model.py > /tmp/ref/nanogpt/model.py
#   git --git-dir=MIRROR/llama2.c.git show HEAD:model.py > /tmp/ref/llama2c/model.py
#   git --git-dir=MIRROR/llama2.c.git show HEAD:export.py > /tmp/ref/llama2c/export.py
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit 2
fi
nanogpt=$(realpath "$1")
llama2c=$(realpath "$2")
cd "$(dirname "$0")/../.."
out=${3:-tests/MoraEngine.Tests/TestData/hf}
args=(--nanogpt "$nanogpt" --llama2c "$llama2c" --out "$out" --report bench/hf/reference-check.txt)
[ -n "${NANOGPT_COMMIT:-}" ] && args+=(--nanogpt-commit "$NANOGPT_COMMIT")
[ -n "${LLAMA2C_COMMIT:-}" ] && args+=(--llama2c-commit "$LLAMA2C_COMMIT")
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
/usr/bin/python3 bench/hf/make_hf_fixtures.py "${args[@]}"
/usr/bin/python3 bench/hf/make_peft_fixtures.py
# The models' tokenizers: the truncated GPT-2 BPE and the tiny SentencePiece model of bench/tokenizers (both 512
# tokens; GPT-2's eos 511, LLaMA's bos 1 / eos 2), so the fixtures work end to end with mora generate/eval/train.
tok=tests/MoraEngine.Tests/TestData/tokenizers
for d in gpt2-tiny gpt2-tiny-noprefix-f16; do cp "$tok/gpt2-tiny/vocab.json" "$tok/gpt2-tiny/merges.txt" "$out/$d/"; done
for d in llama-tiny-gqa llama-tiny-tied-bf16-sharded; do cp "$tok/llama-tiny/tokenizer.model" "$out/$d/"; done
