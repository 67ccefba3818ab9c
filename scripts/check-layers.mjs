#!/usr/bin/env node
/**
 * The dependency rule (docs/architecture.md), checked on every `npm test`:
 *   wire     → wire only; no node:* and no packages (pure codecs)
 *   ports    → wire, ports, security (types)
 *   core     → wire, ports, core, security
 *   only platform/linux may load the native addon
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';

const root = resolve(dirname(new URL(import.meta.url).pathname), '..');
const src = join(root, 'src');
const RULES = {
  wire: { layers: ['wire'], node: false, packages: false },
  ports: { layers: ['wire', 'ports', 'security'], node: false, packages: false },
  core: { layers: ['wire', 'ports', 'core', 'security'], node: false, packages: false },
};

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* files(p);
    else if (p.endsWith('.ts')) yield p;
  }
}

const problems = [];
for (const file of files(src)) {
  const rel = relative(src, file);
  const layer = rel.split('/')[0];
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
    const spec = m[1] ?? m[2];
    if (/native\/build|\.node$|roam6_native/.test(spec) && !rel.startsWith('platform/linux/')) {
      problems.push(`${rel}: only platform/linux may load the native addon (${spec})`);
    }
    const rule = RULES[layer];
    if (!rule) continue;
    if (spec.startsWith('node:')) {
      if (!rule.node) problems.push(`${rel}: layer '${layer}' must not import ${spec}`);
      continue;
    }
    if (!spec.startsWith('.')) {
      if (!rule.packages) problems.push(`${rel}: layer '${layer}' must not import package ${spec}`);
      continue;
    }
    const target = relative(src, resolve(dirname(file), spec)).split('/')[0];
    if (!rule.layers.includes(target)) problems.push(`${rel}: layer '${layer}' must not import from '${target}' (${spec})`);
  }
}
if (problems.length) {
  console.error(`layer check failed:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log('layer check: ok');
