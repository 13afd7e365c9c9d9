#!/usr/bin/env bash
# Bundles the mora CLI for a Linux GPU host that has the NVIDIA driver but no .NET: this machine's .NET runtime
# (packed once, ~26 MB xz) and `dotnet publish` of src/MoraEngine.Cli into .gpu/ at the repository root.
#
#   bench/gpu/bundle.sh                      -> .gpu/dotnet-rt.tar.xz, .gpu/app/mora/, .gpu/run.sh, this folder's scripts
#   bash .gpu/run.sh mora info               (on the GPU host, from the repository root)
#   bash bench/gpu/run-gpu-checks.sh         (the whole GPU check; see that script)
#
# .gpu/ is git-ignored; the folder stays well under 64 MB so it can be carried to a GPU machine.
set -euo pipefail
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
out=$root/.gpu
mkdir -p "$out/app"
dn=$(dirname "$(readlink -f "$(command -v dotnet)")")
ver=$(dotnet --list-runtimes | awk '/Microsoft.NETCore.App/ {v=$2} END {print v}')
if [[ ! -s $out/dotnet-rt.tar.xz || ! -f $out/dotnet-rt.version || $(cat "$out/dotnet-rt.version") != "$ver" ]]; then
  tmp=$(mktemp -d)
  mkdir -p "$tmp/dotnet/shared/Microsoft.NETCore.App" "$tmp/dotnet/host"
  cp -a "$dn/dotnet" "$tmp/dotnet/"
  cp -a "$dn/host/fxr" "$tmp/dotnet/host/"
  cp -a "$dn/shared/Microsoft.NETCore.App/$ver" "$tmp/dotnet/shared/Microsoft.NETCore.App/"
  XZ_OPT=-T0 tar -C "$tmp" -cJf "$out/dotnet-rt.tar.xz" dotnet
  echo "$ver" > "$out/dotnet-rt.version"
  rm -rf "$tmp"
fi
rm -rf "$out/app/mora"
dotnet publish "$root/src/MoraEngine.Cli" -c Release -o "$out/app/mora" -p:UseAppHost=false -p:DebugType=none >/dev/null
# Native libraries for other platforms are dead weight on a Linux x64 host.
find "$out/app/mora/runtimes" -mindepth 1 -maxdepth 1 ! -name 'linux-x64' -exec rm -rf {} + 2>/dev/null || true
cat > "$out/run.sh" <<'RUN'
#!/usr/bin/env bash
# Runs a bundled app on a host without .NET: bash .gpu/run.sh NAME [ARGS...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=$1; shift
rt=/tmp/dotnet-rt-$(cat "$here/dotnet-rt.version")
[[ -x $rt/dotnet/dotnet ]] || { mkdir -p "$rt" && tar -xJf "$here/dotnet-rt.tar.xz" -C "$rt"; }
export DOTNET_ROOT=$rt/dotnet DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/local/cuda/lib64:/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
dll=$(ls "$here/app/$name"/*.runtimeconfig.json | head -n 1); dll=${dll%.runtimeconfig.json}.dll
exec "$DOTNET_ROOT/dotnet" "$dll" "$@"
RUN
chmod +x "$out/run.sh"
du -sh "$out" | awk '{print "bundle: " $1 " in .gpu/ (carry it with the repository; keep it under 64 MB)"}'
