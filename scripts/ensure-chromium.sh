#!/usr/bin/env bash
# Makes sure Debian's Chromium is at /usr/bin/chromium for the HTML viewer test
# (test/dump-html.test.ts drives it headless through playwright-core). Idempotent: does
# nothing when Chromium is already there. Never fails the build: where it cannot be installed
# (no root, no apt-get, no network) it says so and the test skips itself with a message.
set -u
CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: apt-get not found; the HTML viewer test will be skipped" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "ensure-chromium: not root and no password-less sudo; the HTML viewer test will be skipped" >&2
    exit 0
  fi
fi
echo "ensure-chromium: installing Debian's chromium (for the HTML viewer test)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; then
  echo "ensure-chromium: could not install chromium; the HTML viewer test will be skipped" >&2
  exit 0
fi
if [ -x "$CHROMIUM" ]; then
  echo "ensure-chromium: $("$CHROMIUM" --version 2>/dev/null || echo chromium installed)" >&2
else
  echo "ensure-chromium: chromium installed but $CHROMIUM is missing; the HTML viewer test will be skipped" >&2
fi
exit 0
