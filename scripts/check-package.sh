#!/usr/bin/env bash
# Checks the package a user installs: packs this checkout, then, in an empty folder with a fresh
# npm cache (so every dependency is downloaded and every install script runs, as on a user's
# first `npx`), installs the tarball through `npx`, trains a few iterations and samples through
# `npx`, and prints what the install cost. Fails (exit 1) when the install is larger or slower
# than a user should wait for, when it holds more than one copy of Dawn (`webgpu`), or when the
# gpu backend's code (the bundled gpu.js) does not load from the installed package.
#
#   bash scripts/check-package.sh            limits: 180 MB, 120 s
#   CHECK_PACKAGE_MAX_MB=150 CHECK_PACKAGE_MAX_S=60 bash scripts/check-package.sh
#   CHECK_PACKAGE_KEEP=1                      keep the scratch folder (its path is printed)
#
# The size limit is the one user-facing number: the webgpu package alone is 132 MB. The time
# limit is generous (about 30 s is typical on 2 cores with a good network) so that a loaded CI
# machine does not fail on it; the time is always printed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
max_mb=${CHECK_PACKAGE_MAX_MB:-180}
max_s=${CHECK_PACKAGE_MAX_S:-120}

work=$(mktemp -d "${TMPDIR:-/tmp}/charnn-check-package.XXXXXX")
cleanup() { if [ "${CHECK_PACKAGE_KEEP:-0}" = 1 ]; then echo "check-package: kept $work" >&2; else rm -rf "$work"; fi; }
trap cleanup EXIT
fail() { echo "check-package: FAIL: $*" >&2; exit 1; }

# Everything npm does below uses this empty cache and nothing of this checkout's node_modules.
export npm_config_cache="$work/npm-cache"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
mkdir -p "$work/pack" "$work/user"

# `npm pack` runs `prepare` (the TypeScript build, which also writes the patched gpu.js copy).
tgz_name=$(npm pack --silent --pack-destination "$work/pack" | tail -n 1)
tgz="$work/pack/$tgz_name"
[ -f "$tgz" ] || fail "npm pack wrote no tarball ($tgz_name)"
echo "check-package: packed $tgz_name ($(du -k "$tgz" | cut -f1) kB)"

cd "$work/user"
cp "$root/corpora/arithmetic.txt" in.txt
npx_charnn() { npx --yes --package="$tgz" -- charnn "$@"; }

# 1. The install, as a user's first `npx` does it (then `charnn --version`, which is instant).
start_ms=$(( $(date +%s%N) / 1000000 ))
npx_charnn --version > version.txt 2> install.log || { tail -n 20 install.log >&2; fail "npx install of $tgz_name failed"; }
install_ms=$(( $(date +%s%N) / 1000000 - start_ms ))
install_s=$(printf '%d.%01d' $(( install_ms / 1000 )) $(( install_ms % 1000 / 100 )))
install_dir=$(dirname "$(find "$npm_config_cache/_npx" -mindepth 3 -maxdepth 3 -type d -path '*/node_modules/charnn' -print -quit)")
[ -d "$install_dir" ] || fail "no npx install folder under $npm_config_cache/_npx"
size_mb=$(( $(du -sk "$install_dir" | cut -f1) / 1024 ))
mapfile -t dawns < <(find "$install_dir" -type f -name package.json -path '*/node_modules/webgpu/package.json' | sed 's|/package.json$||')
mapfile -t gls < <(find "$install_dir" -type d -path '*/node_modules/gl' )

[ "$(cat version.txt)" = "$(node -p "require('$root/package.json').version")" ] || fail "npx charnn --version printed '$(cat version.txt)'"
echo "check-package: charnn $(cat version.txt) installed by npx in ${install_s} s, ${size_mb} MB in $install_dir"
echo "check-package: webgpu (Dawn) copies: ${#dawns[@]}"
for d in "${dawns[@]}"; do
  echo "  ${d#"$install_dir"/} $(node -p "require('$d/package.json').version") $(du -sm "$d" | cut -f1) MB"
done
echo "check-package: largest packages:"
du -sm "$install_dir"/* "$install_dir"/@*/* 2>/dev/null | sort -rn | awk 'NR <= 6' | sed "s|$install_dir/|  |"

# 2. Train and sample through npx, as the README's first command does.
npx_charnn train in.txt --iters 30 --eval-every 30 --seq 20 --batch 8 --hidden 32 --seed 1 --quiet --out m.charnn \
  || fail "npx charnn train failed"
npx_charnn sample -m m.charnn --length 60 --seed 1 > sample.txt || fail "npx charnn sample failed"
[ -s sample.txt ] || fail "npx charnn sample printed nothing"
echo "check-package: trained and sampled through npx: $(head -c 60 sample.txt | tr '\n' ' ')"

# 3. The gpu backend's kernels load from the installed package (gpu.js in cpu mode: no GPU needed).
node --input-type=module -e "
  const { GpuBackend } = await import('$install_dir/charnn/dist/index.js');
  const b = new GpuBackend({ mode: 'cpu' });
  const t = b.upload(new Float32Array([1, 2, 3]), [3]);
  b.scale(t, 2);
  const r = Array.from(await b.read(t));
  if (r.join() !== '2,4,6') throw new Error('gpu backend computed ' + r.join() + ' for 2 * [1, 2, 3]');
  await b.destroy();
  console.log('check-package: gpu backend (gpu.js cpu mode) loads from the installed package');
" || fail "the gpu backend does not load from the installed package"

# 4. The limits.
status=0
[ "${#dawns[@]}" -eq 1 ] || { echo "check-package: FAIL: ${#dawns[@]} copies of webgpu installed (want 1)" >&2; status=1; }
[ "${#gls[@]}" -eq 0 ] || { echo "check-package: FAIL: headless-gl (gl) installed: ${gls[*]}" >&2; status=1; }
[ "$size_mb" -le "$max_mb" ] || { echo "check-package: FAIL: install is $size_mb MB (limit $max_mb MB)" >&2; status=1; }
[ "$install_ms" -le $(( max_s * 1000 )) ] || { echo "check-package: FAIL: install took $install_s s (limit $max_s s)" >&2; status=1; }
[ $status -eq 0 ] && echo "check-package: ok (limits $max_mb MB, $max_s s)"
exit $status
