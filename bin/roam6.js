#!/usr/bin/env node
// roam6 entry point: the compiled CLI (npm ci builds dist/).
import { main } from '../dist/src/cli/main.js';

const code = await main(process.argv.slice(2));
if (code !== 0) process.exitCode = code;
