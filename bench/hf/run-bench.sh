#!/usr/bin/env bash
# The real-model benchmarks of the engine and of PyTorch, one after the other on the same machine (one run):
#   generation at batch 1 on GPT-2 124M's shape (random weights, 128-token prompt, 64 tokens, KV cache), and a
#   LoRA r=8 / MoRA r=8 (type 1) fine-tuning step on that shape (batch 4 x 256 tokens, adapters on every linear
#   layer of the blocks). Needs Debian's python3-torch for the PyTorch lines.
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet build -c Release src/MoraEngine.Cli -v q -nologo > /dev/null
mora() { dotnet src/MoraEngine.Cli/bin/Release/net10.0/mora.dll "$@"; }
torch() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=1 /usr/bin/python3 bench/hf/bench_torch.py "$@"; }
mora bench generate --config gpt2-124m --json --device cpu
torch generate
for m in lora mora; do
  mora bench step --config gpt2-124m --method "$m" --rank 8 --mora-type 1 --batch 4 --seq 256 --warmup 2 --steps 5 --json --device cpu
  torch "$m"
done
