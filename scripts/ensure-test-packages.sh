#!/usr/bin/env bash
# Installs the Debian packages some tests use, when they are missing:
# - chromium, for the HTML viewer test (test/dump-html.test.ts drives it headless through
#   playwright-core);
# - Mesa's EGL/GLES (llvmpipe, a software GPU), so that test/backend-gpu.test.ts also runs the
#   gpu backend's kernels in gpu.js webgpu mode, through Dawn's OpenGL ES backend.
# Idempotent, and never fails the build: where packages cannot be installed (no root, no
# apt-get, no network) it says so, and the tests that need them skip themselves with a message.
set -u
missing=()
purposes=()
if [ ! -x /usr/bin/chromium ]; then
  missing+=(chromium)
  purposes+=("the HTML viewer test")
fi
if ! ldconfig -p 2>/dev/null | grep -q 'libEGL_mesa.so'; then
  missing+=(libegl1 libegl-mesa0 libgles2 libvulkan1 mesa-vulkan-drivers)
  purposes+=("the gpu backend's webgpu-mode tests")
fi
[ ${#missing[@]} -eq 0 ] && exit 0
why=$(IFS=,; echo "${purposes[*]}" | sed 's/,/, /g')
skip() {
  echo "ensure-test-packages: $1; skipped: $why" >&2
  exit 0
}
command -v apt-get >/dev/null 2>&1 || skip "apt-get not found"
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    skip "not root and no password-less sudo"
  fi
fi
echo "ensure-test-packages: installing ${missing[*]} (for $why)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
  skip "could not install ${missing[*]}"
fi
exit 0
