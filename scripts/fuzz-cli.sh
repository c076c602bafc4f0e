#!/bin/sh
# The CLI fuzz (test/cli-fuzz.test.ts) for longer than CI runs it: RUNS random commands
# (default 2000, about 20 minutes on 2 cores). A failure prints the command and its seed;
# CHARNN_FUZZ_SEED=<seed> repeats that run of the fuzz.
#   scripts/fuzz-cli.sh [RUNS]
set -e
cd "$(dirname "$0")/.."
npm run build >/dev/null
CHARNN_FUZZ_RUNS="${1:-2000}" exec npx vitest run test/cli-fuzz.test.ts
