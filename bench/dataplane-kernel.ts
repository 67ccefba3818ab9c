/**
 * `node dist/bench/dataplane-kernel.js [N ...]` (root): what the kernel data plane costs to
 * program. For each N (default 10,000 and 100,000) one guest per /64 is installed on the HA
 * (encap route + PMTU funnel route each), every binding is then moved to another CoA (one
 * route replace each), and stop() removes everything. Prints one JSON document.
 *
 * Runs in a throwaway namespace `r6bench<pid>` (one veth holding 2001:db8:1::2), which it
 * creates, re-enters with `ip netns exec`, and deletes. nft is skipped: it is a fixed cost.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { KernelHaDataplane } from '../src/platform/linux/kernel-dataplane.js';
import { Rtnl } from '../src/platform/linux/rtnl.js';
import { parseIpv6, type Ipv6Address, type Ipv6Prefix } from '../src/wire/ipv6.js';

const INNER_ENV = 'ROAM6_BENCH_NETNS';
const HA = parseIpv6('2001:db8:1::2');
const HOSTS = 64;

interface SizeResult {
  bindings: number;
  routesPerBinding: number;
  installMs: number;
  installBindingsPerSec: number;
  moveMs: number;
  moveBindingsPerSec: number;
  dumpMs: number;
  stopMs: number;
  rssMiB: number;
}

function coa(host: number, round: number): Ipv6Address {
  const a = parseIpv6('2001:db8:a::');
  a[7] = round & 0xff; // 2001:db8:a:<round>::<host+2>
  a[14] = host >> 8;
  a[15] = (host & 0xff) + 2;
  return a;
}

function mnp(i: number): Ipv6Prefix {
  // 2001:db8:1<i bits 16..23>:<i bits 0..15>::/64
  const a = parseIpv6('2001:db8:100::');
  a[5] = (i >> 16) & 0xff;
  a[6] = (i >> 8) & 0xff;
  a[7] = i & 0xff;
  return { addr: a, len: 64 };
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function runSize(n: number): Promise<SizeResult> {
  const dp = new KernelHaDataplane({ haAddress: HA, nft: false });
  await dp.start();
  const ids = Array.from({ length: n }, (_, i) => i);
  const installMs = await timed(() =>
    Promise.all(ids.map((i) => dp.upsert({ guest: `g${i}`, prefixes: [mnp(i)], coa: coa(i % HOSTS, 0) }))));
  const moveMs = await timed(() =>
    Promise.all(ids.map((i) => dp.upsert({ guest: `g${i}`, prefixes: [mnp(i)], coa: coa((i + 1) % HOSTS, 1) }))));
  const nl = Rtnl.open();
  let routes = 0;
  const dumpMs = await timed(async () => { routes = (await nl.listRoutes()).length; });
  nl.close();
  if (routes < 2 * n) throw new Error(`expected ≥ ${2 * n} routes, dumped ${routes}`);
  const rssMiB = Math.round(process.memoryUsage().rss / 2 ** 20);
  const stopMs = await timed(() => dp.stop());
  return {
    bindings: n, routesPerBinding: 2,
    installMs: Math.round(installMs), installBindingsPerSec: Math.round(n / (installMs / 1000)),
    moveMs: Math.round(moveMs), moveBindingsPerSec: Math.round(n / (moveMs / 1000)),
    dumpMs: Math.round(dumpMs), stopMs: Math.round(stopMs), rssMiB,
  };
}

async function inner(sizes: number[]): Promise<void> {
  const results: SizeResult[] = [];
  for (const n of sizes) results.push(await runSize(n));
  process.stdout.write(`${JSON.stringify({ bench: 'dataplane-kernel', node: process.version, results }, null, 2)}\n`);
}

function outer(sizes: number[]): void {
  const ns = `r6bench${process.pid}`;
  const ip = (...args: string[]): void => { execFileSync('ip', args, { stdio: 'inherit' }); };
  ip('netns', 'add', ns);
  try {
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'link', 'add', 'b0', 'type', 'veth', 'peer', 'name', 'b1');
    ip('-n', ns, 'link', 'set', 'b0', 'up');
    ip('-n', ns, 'link', 'set', 'b1', 'up');
    ip('-n', ns, '-6', 'addr', 'add', '2001:db8:1::2/64', 'dev', 'b0', 'nodad');
    ip('-n', ns, '-6', 'route', 'add', 'default', 'via', '2001:db8:1::1', 'dev', 'b0', 'onlink');
    const self = fileURLToPath(import.meta.url);
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, self, ...sizes.map(String)], {
      stdio: 'inherit', env: { ...process.env, [INNER_ENV]: ns },
    });
    if (r.status !== 0) process.exitCode = r.status ?? 1;
  } finally {
    ip('netns', 'del', ns);
  }
}

const args = process.argv.slice(2).map(Number).filter((x) => Number.isInteger(x) && x > 0);
const sizes = args.length > 0 ? args : [10_000, 100_000];
if (process.env[INNER_ENV]) await inner(sizes);
else outer(sizes);
