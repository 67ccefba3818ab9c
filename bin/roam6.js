#!/usr/bin/env node
// roam6 entry point: the compiled CLI (npm ci builds dist/).
import { main } from '../dist/src/cli/main.js';

// `roam6 bindings | head` closes our stdout early: that is not an error.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const code = await main(process.argv.slice(2));
if (code !== 0) process.exitCode = code;
