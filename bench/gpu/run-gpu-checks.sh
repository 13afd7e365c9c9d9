#!/usr/bin/env bash
# The GPU check, on a host with an NVIDIA GPU and driver (no .NET needed), after bench/gpu/bundle.sh built .gpu/:
#
#   bash bench/gpu/run-gpu-checks.sh [RESULTS_DIR]      (default: bench/gpu/results-<date>; ~5-8 minutes)
#
# 1. nvidia-smi and `mora info` (the GPU's name, driver, what ILGPU sees)
# 2. `mora selftest --device cuda`: every ILGPU kernel against the CPU reference (the unit tests' cases plus larger
#    GEMM/attention ones) and tiny training runs whose losses must match the CPU's
# 3. `mora bench gemm --device cuda --size 4096 8192 --json`
# 4. `mora bench step --device cuda --config small-gpu --batch 64 --json` for fft, lora r=8, mora type 1 and type 6 r=8
# 5. `mora bench kernels --device cuda --json`: generated vs generic MoRA device kernels, MoRA vs LoRA per layer shape
# 6. TF32 tensor cores (opt-in): `bench gemm --tf32` 4096/8192 and `bench step --tf32` for fft and lora
# Every step has a time limit and writes its output to RESULTS_DIR; summary.md collects the numbers.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
out=${1:-${OUT:-$root/bench/gpu/results-$(date +%Y%m%d-%H%M)}}
mkdir -p "$out"
[[ -x .gpu/run.sh ]] || { echo "no .gpu/run.sh: run bench/gpu/bundle.sh on a machine with the .NET SDK first" >&2; exit 2; }

step() { # step NAME SECONDS CMD... : runs with a limit, tees output, records the exit code
  local name=$1 limit=$2; shift 2
  echo "== $name (limit ${limit}s)" | tee -a "$out/log.txt"
  local t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@" > >(tee "$out/$name.txt") 2> >(tee "$out/$name.err" >&2)
  local rc=$?
  echo "== $name: exit $rc in $((SECONDS - t0)) s" | tee -a "$out/log.txt"
  return 0
}

date -u +%Y-%m-%dT%H:%M:%SZ > "$out/date.txt"
step nvidia-smi 30 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
step info 45 bash .gpu/run.sh mora info
step selftest 120 bash .gpu/run.sh mora selftest --device cuda
step gemm 75 bash .gpu/run.sh mora bench gemm --device cuda --size 4096 8192 --repeats 3 --json
step step-fft 55 bash .gpu/run.sh mora bench step --device cuda --config small-gpu --batch 64 --method fft --json
step step-lora 55 bash .gpu/run.sh mora bench step --device cuda --config small-gpu --batch 64 --method lora --rank 8 --json
step step-mora1 55 bash .gpu/run.sh mora bench step --device cuda --config small-gpu --batch 64 --method mora --rank 8 --mora-type 1 --json
step step-mora6 55 bash .gpu/run.sh mora bench step --device cuda --config small-gpu --batch 64 --method mora --rank 8 --mora-type 6 --json
step kernels 90 bash .gpu/run.sh mora bench kernels --device cuda --json
step gemm-tf32 75 bash .gpu/run.sh mora bench gemm --device cuda --tf32 --size 4096 8192 --repeats 3 --json
step step-fft-tf32 55 bash .gpu/run.sh mora bench step --device cuda --tf32 --config small-gpu --batch 64 --method fft --json
step step-lora-tf32 55 bash .gpu/run.sh mora bench step --device cuda --tf32 --config small-gpu --batch 64 --method lora --rank 8 --json

{
  echo "# GPU check $(cat "$out/date.txt")"
  echo
  echo "GPU: $(tail -n +2 "$out/nvidia-smi.txt" 2>/dev/null | head -n 1)"
  echo
  echo "selftest: $(tail -n 1 "$out/selftest.txt" 2>/dev/null)"
  grep -h '^FAIL' "$out/selftest.txt" 2>/dev/null | sed 's/^/    /'
  echo
  echo "| benchmark | result |"
  echo "| --- | --- |"
  grep -h '"benchmark":"gemm"' "$out/gemm.txt" 2>/dev/null | sed -E 's/.*"size":([0-9]+),"gflops":([0-9.]+).*/| gemm \1³ | \2 GFLOP\/s |/'
  grep -h '"benchmark":"gemm"' "$out/gemm-tf32.txt" 2>/dev/null | sed -E 's/.*"size":([0-9]+),"gflops":([0-9.]+).*/| gemm \1³ TF32 | \2 GFLOP\/s |/'
  for f in fft lora mora1 mora6 fft-tf32 lora-tf32; do
    grep -h '"benchmark":"step"' "$out/step-$f.txt" 2>/dev/null | sed -E "s/.*\"ms_per_step\":([0-9.]+),\"min_ms\":([0-9.]+).*/| step small-gpu $f | \\1 ms (min \\2) |/"
  done
  grep -h '"benchmark":"kernels"' "$out/kernels.txt" 2>/dev/null | sed -E 's/.*"in":([0-9]+),"out":([0-9]+),"rank":([0-9]+),"mora_type":([0-9]+).*"kernels_generic_us":([0-9.]+),"kernels_specialised_us":([0-9.]+),"kernel_speedup":([0-9.]+),"mora_over_lora":([0-9.]+).*/| kernels \1→\2 type \4 | compress+decompress \5 → \6 µs (\7×), MoRA\/LoRA \8 |/'
  echo
  echo "Reference (issue): PyTorch 2.11 eager fp32 on an H200: FFT 24.1 ms (TF32 15.1), LoRA 23.6, MoRA type 1 28.0,"
  echo "MoRA type 6 39.1 ms per step. Targets: LoRA <= 24 ms, MoRA type 6 <= 1.3x our LoRA. Copy this table with the"
  echo "date and GPU name into bench/RESULTS.md."
} > "$out/summary.md"
cat "$out/summary.md"
