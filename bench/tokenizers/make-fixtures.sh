#!/usr/bin/env bash
# Rebuilds the tokenizer fixtures in tests/MoraEngine.Tests/TestData/tokenizers/ from reference tokenizers this
# project did not write: gpt-3-encoder (npm; a port of OpenAI's GPT-2 encoder), sentencepiece (Debian's
# python3-sentencepiece 0.1.97) and Hugging Face's Tokenizers.js (npm @huggingface/tokenizers) for the
# tokenizer.json files. CI does not run this: the tests read the committed outputs. Needs node + npm and
#   apt-get install -y python3-sentencepiece
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../../tests/MoraEngine.Tests/TestData/tokenizers"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out" "$tmp/npm" "$tmp/scratch"
(cd "$tmp/npm" && npm init -y >/dev/null && npm install --no-audit --no-fund gpt-3-encoder@1.1.4 @huggingface/tokenizers@0.2.0 >/dev/null)
node "$here/gpt2_reference.js" "$tmp/npm/node_modules/gpt-3-encoder" "$tmp/scratch" "$out"
/usr/bin/python3 "$here/make_sentencepiece.py" "$out"
node "$here/tokenizer_json_reference.mjs" "$tmp/npm/node_modules/@huggingface/tokenizers" "$out"
du -ab "$out" | sort -k2
