#!/usr/bin/env bash
# Packaging test: packs MoraEngine and the mora tool (MoraEngine.Cli) into a temporary feed, builds a console project
# outside the repository that references only the MoraEngine package (tests/packaging/consumer: kernels declared by
# [assembly: MoraKernel] and *.mora.json files), runs it (it trains a tiny model with MoRA and checks that the kernels
# generated into it are the ones in use), checks that an invalid declaration fails the build with MORA001, then
# installs the tool into a temporary tool path and runs `mora info`.
# Offline: the consumer restores from the temporary feed plus the machine's package folders (the NuGet cache and
# /opt/nuget/packages) as fallback folders, with a dead proxy set so any network access fails. Exits non-zero on any
# failure; removes its temporary folders either way.
# Run from anywhere: bash tests/packaging/run.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
work=$(mktemp -d "${TMPDIR:-/tmp}/mora-packaging.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$SECONDS

step() { echo "packaging: [$((SECONDS - start))s] $*"; }
fail() { echo "packaging: FAIL: $*" >&2; exit 1; }
# Runs a command with its output in a log; on failure shows the end of the log and stops.
quiet() {
  local log=$1; shift
  if ! "$@" > "$log" 2>&1; then
    tail -n 60 "$log" >&2
    fail "$* (full log above, last 60 lines)"
  fi
}

# ---------------------------------------------------------------------------------------------------- pack
feed=$work/feed
step "dotnet pack -c Release of $repo into a temporary feed"
quiet "$work/pack.log" dotnet pack "$repo/MoraEngine.sln" -c Release -o "$feed"
version=$(dotnet msbuild "$repo/src/MoraEngine/MoraEngine.csproj" -getProperty:Version)
[ -n "$version" ] || fail "no Version from src/MoraEngine/MoraEngine.csproj"
expected_files="MoraEngine.$version.nupkg MoraEngine.$version.snupkg MoraEngine.Cli.$version.nupkg MoraEngine.Cli.$version.snupkg"
got=$(cd "$feed" && ls | sort | tr '\n' ' ' | sed 's/ $//')
want=$(echo "$expected_files" | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//')
[ "$got" = "$want" ] || fail "the feed holds [$got], expected [$want]"
if grep -E "warning (NU|NETSDK)[0-9]+" "$work/pack.log"; then fail "dotnet pack printed the warnings above"; fi
step "packed version $version: $got"

lib=$feed/MoraEngine.$version.nupkg
tool=$feed/MoraEngine.Cli.$version.nupkg
lib_files=$(unzip -Z1 "$lib")
tool_files=$(unzip -Z1 "$tool")
for f in lib/net10.0/MoraEngine.dll analyzers/dotnet/cs/MoraEngine.Generators.dll \
         buildTransitive/MoraEngine.targets build/MoraEngine.targets README.md; do
  grep -qxF "$f" <<< "$lib_files" || fail "MoraEngine.$version.nupkg lacks $f"
done
if grep -iE 'dependency id="(Microsoft\.CodeAnalysis|MoraEngine\.Generators)' <<< "$(unzip -p "$lib" MoraEngine.nuspec)"; then
  fail "the generator's references became dependencies of the MoraEngine package (above)"
fi
for f in tools/net10.0/any/mora.dll tools/net10.0/any/MoraEngine.dll tools/net10.0/any/DotnetToolSettings.xml README.md; do
  grep -qxF "$f" <<< "$tool_files" || fail "MoraEngine.Cli.$version.nupkg lacks $f"
done
grep -q '<packageType name="DotnetTool"' <<< "$(unzip -p "$tool" MoraEngine.Cli.nuspec)" || fail "MoraEngine.Cli is not a DotnetTool package"
grep -q 'Command Name="mora"' <<< "$(unzip -p "$tool" tools/net10.0/any/DotnetToolSettings.xml)" || fail "the tool's command is not 'mora'"
step "MoraEngine carries lib/, the generator in analyzers/dotnet/cs/ and build(Transitive)/ targets, without Microsoft.CodeAnalysis dependencies; MoraEngine.Cli is a DotnetTool with command mora"

# ---------------------------------------------------------------------------------------------------- offline NuGet set-up
# Dependencies (ILGPU, Microsoft.ML.Tokenizers, ...) come from the machine's package folders, used as fallback folders
# without copying; MoraEngine itself only from the feed: the fallback folders are views of those folders without any
# moraengine* package, and restores go to an empty global packages folder, so a MoraEngine of the same version that
# was installed on this machine before cannot stand in for the one just packed.
fallbacks=""
n=0
for src in "${NUGET_PACKAGES:-$HOME/.nuget/packages}" /opt/nuget/packages; do
  [ -d "$src" ] || continue
  n=$((n + 1))
  view=$work/fallback$n
  mkdir -p "$view"
  for d in "$src"/*/; do
    id=$(basename "$d")
    case "$id" in moraengine|moraengine.*) continue ;; esac
    ln -s "${d%/}" "$view/$id"
  done
  fallbacks+="    <add key=\"fallback$n\" value=\"$view\" />"$'\n'
done
[ -n "$fallbacks" ] || fail "no NuGet package folder found (looked at \$NUGET_PACKAGES, ~/.nuget/packages, /opt/nuget/packages)"

consumer=$work/consumer
cp -r "$repo/tests/packaging/consumer" "$consumer"
rm -rf "$consumer/bin" "$consumer/obj"
cat > "$consumer/nuget.config" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="mora-test-feed" value="$feed" />
  </packageSources>
  <fallbackPackageFolders>
    <clear />
$fallbacks  </fallbackPackageFolders>
</configuration>
EOF
export NUGET_PACKAGES=$work/packages
unset NUGET_FALLBACK_PACKAGES
# Nothing below may use the network: a dead proxy makes any attempt fail at once.
export HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9
export NO_PROXY= no_proxy=
cd "$consumer"

# ---------------------------------------------------------------------------------------------------- consumer build
step "building a consumer project outside the repository ($consumer) with PackageReference MoraEngine $version"
quiet "$work/build.log" dotnet build -c Release -p:MoraEngineVersion="$version"

sha_feed=$(openssl dgst -sha512 -binary "$lib" | base64 -w0)
sha_used=$(cat "$NUGET_PACKAGES/moraengine/$version/moraengine.$version.nupkg.sha512" 2>/dev/null || true)
[ "$sha_feed" = "$sha_used" ] || fail "the consumer did not restore the MoraEngine package just packed (sha512 differs or it came from elsewhere)"
if grep -q '"Microsoft.CodeAnalysis' obj/project.assets.json; then fail "Microsoft.CodeAnalysis reached the consumer's dependency graph"; fi
step "restored MoraEngine $version from the temporary feed (same sha512), its dependencies from the package folders"

items=$(dotnet msbuild -p:MoraEngineVersion="$version" -getItem:AdditionalFiles)
for f in tiny.mora.json listed.mora.json; do
  c=$(grep -c "\"Identity\": \"[^\"]*$f\"" <<< "$items" || true)
  [ "$c" = 1 ] || fail "AdditionalFiles holds $f $c times, expected once: $items"
done
generated=$(find obj -path '*generated/MoraEngine.Generators/*' -name '*.g.cs' -printf '%f\n' | sort)
for f in MoraKernels.96x96.r39.Sharing.g.cs MoraKernels.96x384.r62.Sharing.g.cs MoraKernels.384x96.r62.Sharing.g.cs \
         MoraKernels.96x96.r38.Rope.g.cs MoraKernels.96x384.r62.Rope.g.cs MoraKernels.384x96.r62.Rope.g.cs \
         MoraKernelRegistration.g.cs; do
  grep -qxF "$f" <<< "$generated" || fail "the generator did not write $f (it wrote: $(echo $generated))"
done
step "the package's generator ran in the consumer: $(echo "$generated" | wc -l) files ($(echo $generated))"

# ---------------------------------------------------------------------------------------------------- consumer run
step "running the consumer: MoRA training steps with the kernels generated into it"
dotnet bin/Release/net10.0/Consumer.dll || fail "the consumer's checks failed (above)"

# ---------------------------------------------------------------------------------------------------- diagnostics
step "building the consumer with an invalid [assembly: MoraKernel(Rank = 0)]: expecting error MORA001"
if dotnet build -c Release -p:MoraEngineVersion="$version" -p:MoraBadKernel=true > "$work/bad.log" 2>&1; then
  fail "the build with Rank = 0 succeeded"
fi
grep -q "error MORA001" "$work/bad.log" || { tail -n 30 "$work/bad.log" >&2; fail "the failed build did not report MORA001"; }
step "the build failed with: $(grep -m1 -o 'error MORA001[^[]*' "$work/bad.log")"

# ---------------------------------------------------------------------------------------------------- tool
tools=$work/tools
step "dotnet tool install --tool-path $tools --add-source $feed MoraEngine.Cli --version $version"
quiet "$work/tool.log" dotnet tool install --tool-path "$tools" --add-source "$feed" MoraEngine.Cli --version "$version"
step "running $tools/mora info"
"$tools/mora" info > "$work/info.log" 2>&1 || { cat "$work/info.log" >&2; fail "mora info exited non-zero"; }
cat "$work/info.log"
grep -q "$version" "$work/info.log" || fail "mora info does not show version $version"
grep -q "specialisations loaded" "$work/info.log" || fail "mora info lists no MoRA kernel specialisations"

step "passed in $((SECONDS - start)) s"
