#!/usr/bin/env node
// Builds the native backend (native/ -> native/build/Release/charnn_native.node) with the
// node-gyp from node_modules. Run by npm's "install" script, so on every `npm ci` / `npm install`
// in a checkout. It never fails the install: when the build cannot be done (no compiler, no
// Python, an unsupported platform) it prints one line to stderr and exits 0, and charnn falls
// back to the TypeScript backend.
//
//   node scripts/build-native.mjs            build (quiet; the compiler log goes to native/build/build.log)
//   node scripts/build-native.mjs --verbose  show the compiler output
//   CHARNN_SKIP_NATIVE=1                     skip the build altogether

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const verbose = process.argv.includes('--verbose') || process.env.CHARNN_NATIVE_VERBOSE === '1';
const logFile = join(nativeDir, 'build', 'build.log'); // native/build/ is gitignored

function giveUp(reason) {
  process.stderr.write(`charnn: native backend not built (${reason}); using the TypeScript backend\n`);
  process.exit(0);
}

if (process.env.CHARNN_SKIP_NATIVE === '1') giveUp('CHARNN_SKIP_NATIVE=1');
if (process.platform === 'win32') giveUp('Windows is not supported by the native kernels (GCC/Clang vector extensions)');
if (!existsSync(join(nativeDir, 'binding.gyp'))) giveUp('native/binding.gyp is missing');

let gypBin;
try {
  const require = createRequire(join(root, 'package.json'));
  gypBin = require.resolve('node-gyp/bin/node-gyp.js');
  require.resolve('node-addon-api');
} catch {
  giveUp('node-gyp or node-addon-api is not installed');
}

const args = [gypBin, 'rebuild', '--directory', nativeDir, `--jobs=${process.env.JOBS ?? 'max'}`];
// Use the headers of the running Node when they are installed beside it (distribution packages,
// official tarballs): node-gyp would otherwise try to download them, which fails offline.
const configured = process.env.npm_config_nodedir;
if (!configured) {
  const prefix = resolve(dirname(process.execPath), '..');
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h')) && existsSync(join(prefix, 'include', 'node', 'common.gypi'))) {
    args.push(`--nodedir=${prefix}`);
  }
}

const started = Date.now();
const r = spawnSync(process.execPath, args, {
  cwd: nativeDir,
  stdio: verbose ? 'inherit' : 'pipe',
  encoding: 'utf8',
  env: process.env,
  maxBuffer: 64 * 1024 * 1024,
});

if (!verbose) {
  try {
    mkdirSync(dirname(logFile), { recursive: true });
    writeFileSync(logFile, `${r.stdout ?? ''}${r.stderr ?? ''}`);
  } catch {
    // the log is a convenience
  }
}

if (r.error) giveUp(`could not run node-gyp: ${r.error.message}`);
if (r.status !== 0) {
  const text = `${r.stderr ?? ''}`.split('\n');
  const first = text.find((l) => /error/i.test(l) && !/^gyp ERR! (stack|System|command|cwd|node -v|node-gyp -v|not ok)/.test(l));
  const why = first ? first.trim().slice(0, 200) : `node-gyp exited with ${r.status}`;
  giveUp(`build failed: ${why}${verbose ? '' : '; see native/build/build.log'}`);
}

const out = join(nativeDir, 'build', 'Release', 'charnn_native.node');
if (!existsSync(out)) giveUp('the build produced no charnn_native.node');

// Load it once, so that a broken binary is reported now rather than at the first training run.
try {
  const require = createRequire(import.meta.url);
  const addon = require(out);
  const info = addon.info();
  if (verbose || process.env.npm_lifecycle_event !== 'install') {
    console.log(`charnn: native backend built (${info.isa}, ${info.threads} threads) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
} catch (e) {
  giveUp(`the built addon does not load: ${String(e?.message ?? e).split('\n')[0]}`);
}
