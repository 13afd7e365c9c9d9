#!/usr/bin/env bash
# The parity report: every method on the UUID demo's GPT-2 model and on a LLaMA-style model of the same size, at
# the demo's settings (d 128, 2 layers, 4 heads, batch 32, r 8, α 16, warm-up 30 of a 500-step cosine schedule,
# restarts every 50 steps), for STEPS steps (default 200) from seeded weights. The engine writes each case, the
# PyTorch reference redoes it, compare prints one row per case. A case whose losses drift apart by more than the
# late target is redone in float64 too, to tell float32 rounding (both float32 runs drift from the float64 one by the
# same amount) from a real difference. Needs /usr/bin/python3 with python3-torch.
#   bash bench/parity/run-report.sh [STEPS] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
steps=${1:-200}
out=${2:-runs/parity}
dotnet build -c Release bench/parity/MoraEngine.Parity >/dev/null
parity="dotnet bench/parity/MoraEngine.Parity/bin/Release/net10.0/MoraEngine.Parity.dll"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=2
dirs=()
for arch in uuid llama; do
  for method in "fft --lr 1e-3" "lora" "mora --mora-type 1" "mora --mora-type 6" "relora" "remora --mora-type 1"; do
    name="$arch-$(echo "$method" | sed 's/ --mora-type /-type/; s/ --lr .*//')"
    # shellcheck disable=SC2086
    $parity run --arch "$arch" --method $method --steps "$steps" --schedule-steps 500 --restart-every 50 --out "$out/$name"
    /usr/bin/python3 bench/parity/reference.py "$out/$name"
    $parity compare "$out/$name" >/dev/null || /usr/bin/python3 bench/parity/reference.py --double "$out/$name"
    dirs+=("$out/$name")
  done
done
$parity compare "${dirs[@]}" | tee "$out/report.md"
