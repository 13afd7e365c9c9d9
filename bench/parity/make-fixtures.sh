#!/usr/bin/env bash
# Regenerates the test suite's parity fixtures (tests/MoraEngine.Tests/Parity/Fixtures/*.json): one small case per
# method and architecture, run by the engine, redone by the PyTorch reference, condensed to PyTorch's losses and
# step-0 gradient norms. Needs /usr/bin/python3 with Debian's python3-torch and python3-numpy.
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet build -c Release bench/parity/MoraEngine.Parity >/dev/null
parity="dotnet bench/parity/MoraEngine.Parity/bin/Release/net10.0/MoraEngine.Parity.dll"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=tests/MoraEngine.Tests/Parity/Fixtures
mkdir -p "$out"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=2
small=(--d-model 32 --layers 2 --heads 2 --rank 4 --batch 8 --pairs 16 --steps 20 --warmup 5 --lr 1e-2 --restart-every 8)
for arch in uuid llama; do
  for method in "fft" "lora" "mora --mora-type 1" "mora --mora-type 6" "relora" "remora --mora-type 1"; do
    # shellcheck disable=SC2206
    args=(--arch "$arch" --method $method "${small[@]}")
    name="$arch-$(echo "$method" | sed 's/ --mora-type /-type/')"
    $parity run "${args[@]}" --out "$work/$name" >/dev/null
    /usr/bin/python3 bench/parity/reference.py "$work/$name" >/dev/null
    $parity compare "$work/$name" | tail -1
    /usr/bin/python3 bench/parity/make_fixture.py "$work/$name" "$out/$name.json" "${args[@]}"
  done
done
