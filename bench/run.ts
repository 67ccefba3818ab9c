/**
 * `npm run bench`: every benchmark, one after the other (they share the machine and must not
 * overlap), each writing its own section of docs/benchmarks.md. `npm run bench -- codec ha`
 * runs only those.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ALL = ['codec', 'ha', 'dataplane', 'agent', 'migrate', 'api', 'migrate-qemu', 'handover'] as const;
const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const list = wanted.length ? wanted : [...ALL];
const failed: string[] = [];

for (const name of list) {
  const file = join(here, `${name}.js`);
  if (!existsSync(file)) {
    console.error(`no benchmark ${name} (${file})`);
    failed.push(name);
    continue;
  }
  console.log(`\n=== bench:${name}`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [file], { stdio: 'inherit' });
  console.log(`=== bench:${name} ${r.status === 0 ? 'done' : 'FAILED'} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  if (r.status !== 0) failed.push(name);
}
if (failed.length) {
  console.error(`failed: ${failed.join(', ')}`);
  process.exitCode = 1;
}
