#!/usr/bin/env bash
# MoraEngine's training step against PyTorch's on the same machine, in one run (small-cpu, fft; then the adapters).
#   apt-get install python3-torch libopenblas0-pthread   # PyTorch 1.13 on OpenBLAS, Debian 12
#   bash bench/compare_step.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build -c Release src/MoraEngine.Cli >/dev/null
mora() { dotnet src/MoraEngine.Cli/bin/Release/net10.0/mora.dll "$@"; }
mora bench gemm --size 1024 2048 --json
mora bench step --config small-cpu --method fft --steps 15 --json
/usr/bin/python3 bench/pytorch_step.py --steps 10 --threads 1
/usr/bin/python3 bench/pytorch_step.py --steps 10 --threads 2
mora bench step --config small-cpu --method lora --rank 8 --steps 15 --json
mora bench step --config small-cpu --method mora --rank 8 --mora-type 1 --steps 15 --json
mora bench step --config small-cpu --method mora --rank 8 --mora-type 6 --steps 15 --json
