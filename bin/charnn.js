#!/usr/bin/env node
// The charnn command. The CLI lives in dist/cli (compiled from src/cli by `npm run build`,
// which `npm ci` runs through the prepare script).
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
