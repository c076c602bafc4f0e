#!/usr/bin/env node
// Copies gpu.js into dist/vendor/gpu.js, without the two dependencies charnn's users must not
// install. Run by `npm run build` (so by `npm ci`'s prepare, `npm test`'s pretest and `npm pack`).
//
// Why: gpu.js 2.24.1 declares `webgpu@0.2.9` (a second Dawn, 84 MB, whose binary does not even
// load on Debian 12's glibc) and an optional `gl@8.1.6` (headless-gl, which compiles ANGLE when
// its prebuilt binary cannot be downloaded). charnn uses gpu.js only in its `cpu` and `webgpu`
// modes, and gives gpu.js its own Dawn (webgpu@0.6.2, see src/backend/gpu/webgpu.ts); gpu.js's
// source never loads `webgpu`, and loads `gl` inside a try/catch. package.json's `overrides`
// fix both only inside this repository; a user's `npm install` or `npx` ignores them. So gpu.js
// is a devDependency, and the package ships this copy (dist/ is in package.json's `files`) with
// gpu.js's remaining dependencies (acorn, gpu-mock.js) declared by charnn itself.
// src/backend/gpu/gpujs.ts loads it.
//
// Fails (exit 1) when gpu.js's remaining dependencies are not charnn's own dependencies with the
// same version ranges: a gpu.js update then needs package.json updated with it.

import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** gpu.js dependencies that charnn's users must not install (see above). */
const DROPPED = ['webgpu', 'gl'];

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'vendor', 'gpu.js');
const charnn = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

function die(message) {
  process.stderr.write(`vendor-gpujs: ${message}\n`);
  process.exit(1);
}

let from;
try {
  from = dirname(createRequire(join(root, 'package.json')).resolve('gpu.js/package.json'));
} catch {
  // A user's install of the packed tarball runs no build; a checkout without devDependencies
  // (npm ci --omit=dev) cannot make the copy, and its gpu backend says so when asked for.
  if (existsSync(join(out, 'package.json'))) process.exit(0);
  die('gpu.js is not installed (it is a devDependency: run npm ci without --omit=dev)');
}

const gpujs = JSON.parse(readFileSync(join(from, 'package.json'), 'utf8'));
if (gpujs.version !== charnn.devDependencies?.['gpu.js']) {
  die(`node_modules holds gpu.js ${gpujs.version}, package.json pins ${charnn.devDependencies?.['gpu.js']} (run npm ci)`);
}
const kept = Object.fromEntries(Object.entries(gpujs.dependencies ?? {}).filter(([name]) => !DROPPED.includes(name)));
const unmatched = Object.entries(kept).filter(([name, range]) => charnn.dependencies?.[name] !== range);
if (unmatched.length > 0) {
  die(
    `gpu.js ${gpujs.version} needs ${unmatched.map(([n, r]) => `${n}@${r}`).join(', ')}: ` +
      `add ${unmatched.length === 1 ? 'it' : 'them'} to charnn's dependencies with the same range`,
  );
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
cpSync(join(from, 'src'), join(out, 'src'), { recursive: true });
cpSync(join(from, 'LICENSE'), join(out, 'LICENSE'));
// The package.json also makes Node read src/*.js as CommonJS (charnn's own is "type": "module").
const manifest = {
  name: 'gpu.js',
  version: gpujs.version,
  description: `gpu.js ${gpujs.version} (MIT, The gpu.js Team) as shipped inside charnn: its src/ unchanged, without the dependencies ${DROPPED.join(' and ')} (see charnn's scripts/vendor-gpujs.mjs)`,
  license: gpujs.license,
  type: 'commonjs',
  main: './src/index.js',
  dependencies: kept,
};
writeFileSync(join(out, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');
