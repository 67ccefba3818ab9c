/**
 * `roam6 lab`: a whole roam6 deployment on this machine, built from network namespaces —
 * a core router, the Home Agent, a correspondent, two hypervisor hosts on different /64
 * segments, and N lab guests (namespaces whose veth moves between hosts: the netns driver).
 * It starts Redis, the HA, both agents and the orchestrator as real processes, and records
 * everything in a state file so `lab down` removes exactly what `lab up` made, even after a
 * crash. Lab tooling may shell out to `ip`; the daemons never do.
 *
 *                 cn 2001:db8:c::2
 *                        |
 *   ha 2001:db8:1::2 — core — host-a 2001:db8:a::2 — [guests g1…gN]
 *                        |
 *                      host-b 2001:db8:b::2
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { guestPortName, guestLinkAlias } from '../core/guest-link-identity.js';
import { apiRequest } from '../cli/api-client.js';

export const LAB_HOSTS = ['host-a', 'host-b'] as const;
export type LabHost = (typeof LAB_HOSTS)[number];

export const LAB_ADDR = {
  ha: '2001:db8:1::2',
  cn: '2001:db8:c::2',
  'host-a': '2001:db8:a::2',
  'host-b': '2001:db8:b::2',
  mnpPool: '2001:db8:100::/40',
} as const;

export interface LabOptions {
  readonly name: string;
  readonly guests: number;
  /** Where state, configs, sockets and logs go. */
  readonly dir?: string;
  /** First BU retransmission timeout for the agents, ms. */
  readonly initialTimeoutMs?: number;
  readonly log?: (line: string) => void;
}

export interface LabGuest {
  readonly id: string;
  readonly mnp: string;
  readonly ns: string;
  readonly host: LabHost;
}

export interface LabState {
  readonly name: string;
  readonly dir: string;
  readonly namespaces: Record<string, string>;
  readonly pids: Record<string, number>;
  /** How each process was started, so tests and operators can restart one. */
  readonly commands: Record<string, { ns: string | null; cmd: string; args: string[] }>;
  readonly redisUrl: string;
  readonly haApi: string;
  readonly agentApis: Record<LabHost, string>;
  readonly guests: LabGuest[];
  readonly startedAt: string;
}

/** bin/roam6.js of this checkout, found from this module in src/ (tests) or dist/src/ (CLI). */
const BIN = ((): string => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the roam6 checkout (package.json) above the lab module');
    dir = up;
  }
  return join(dir, 'bin', 'roam6.js');
})();

export function labDir(name: string): string {
  return `/tmp/roam6-lab-${name}`;
}

function stateFile(dir: string): string {
  return join(dir, 'lab.json');
}

export function readLabState(name: string, dir = labDir(name)): LabState | null {
  try {
    return JSON.parse(readFileSync(stateFile(dir), 'utf8')) as LabState;
  } catch {
    return null;
  }
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
export const nsExec = (ns: string, ...args: string[]) =>
  execFileSync('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });

export function guestId(i: number, name: string): string {
  return `g${i}@${name}.lab`;
}

export function guestMnp(i: number): string {
  return `2001:db8:1${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16)}::/64`;
}

/** Build the lab and start every process. Throws (after cleaning up) if anything fails. */
export async function labUp(opts: LabOptions): Promise<LabState> {
  const say = opts.log ?? (() => {});
  const dir = opts.dir ?? labDir(opts.name);
  await labDown(opts.name, dir);
  mkdirSync(join(dir, 'logs'), { recursive: true, mode: 0o700 });
  const p = `r6lab-${opts.name}`;
  const ns: Record<string, string> = { core: `${p}-core`, ha: `${p}-ha`, cn: `${p}-cn`, 'host-a': `${p}-host-a`, 'host-b': `${p}-host-b` };
  const pids: Record<string, number> = {};
  const state: LabState = {
    name: opts.name,
    dir,
    namespaces: ns,
    pids,
    commands: {},
    redisUrl: `unix://${join(dir, 'redis.sock')}`,
    haApi: `unix:${join(dir, 'ha.sock')}`,
    agentApis: { 'host-a': `unix:${join(dir, 'agent-host-a.sock')}`, 'host-b': `unix:${join(dir, 'agent-host-b.sock')}` },
    guests: [],
    startedAt: new Date().toISOString(),
  };
  const save = () => writeFileSync(stateFile(dir), `${JSON.stringify(state, null, 2)}\n`);
  save();
  try {
    say(`building namespaces ${p}-*`);
    buildTopology(ns);

    say('starting redis-server');
    mkdirSync(join(dir, 'redis'), { mode: 0o700 });
    pids.redis = launch(state, 'redis', null, 'redis-server', [
      '--port', '0', '--unixsocket', join(dir, 'redis.sock'), '--unixsocketperm', '700', '--dir', join(dir, 'redis'),
      '--save', '', '--appendonly', 'yes', '--daemonize', 'no',
    ]);
    save();
    await waitUntil(() => existsSync(join(dir, 'redis.sock')), 10_000, 'redis-server did not start');

    say('starting the home agent');
    writeFileSync(join(dir, 'ha.json'), JSON.stringify(haConfig(state), null, 2));
    pids.ha = launch(state, 'ha', ns.ha!, process.execPath, [BIN, 'ha', '--config', join(dir, 'ha.json')]);
    save();
    await waitForApi(state.haApi, 'HA', join(dir, 'logs/ha.log'));

    for (const host of LAB_HOSTS) {
      say(`starting the agent on ${host}`);
      writeFileSync(join(dir, `agent-${host}.json`), JSON.stringify(agentConfig(state, host, opts.initialTimeoutMs ?? 100), null, 2));
      pids[`agent-${host}`] = launch(state, `agent-${host}`, ns[host]!, process.execPath, [BIN, 'agent', '--config', join(dir, `agent-${host}.json`)]);
      save();
      await waitForApi(state.agentApis[host], `agent ${host}`, join(dir, `logs/agent-${host}.log`));
    }

    say('starting the orchestrator');
    pids.orchestrator = launch(state, 'orchestrator', null, process.execPath, [BIN, 'orchestrator', '--redis', state.redisUrl]);
    save();

    if (opts.guests > 0) {
      say(`enrolling and starting ${opts.guests} guest(s) on host-a`);
      await addGuests(state, opts.guests, 'host-a');
    }
    save();
    return state;
  } catch (e) {
    save();
    const logs = dir;
    await labDown(opts.name, dir, { keepDir: true }).catch(() => {});
    throw new Error(`${(e as Error).message}\n(lab logs kept in ${logs}/logs)`);
  }
}

function buildTopology(ns: Record<string, string>): void {
  for (const n of Object.values(ns)) {
    ip('netns', 'add', n);
    nsExec(n, 'ip', 'link', 'set', 'lo', 'up');
    nsExec(n, 'sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0');
  }
  nsExec(ns.core!, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1');
  const link = (a: string, aIf: string, aAddr: string, b: string, bIf: string, bAddr: string) => {
    ip('link', 'add', aIf, 'netns', a, 'type', 'veth', 'peer', 'name', bIf, 'netns', b);
    nsExec(a, 'ip', 'link', 'set', aIf, 'up');
    nsExec(b, 'ip', 'link', 'set', bIf, 'up');
    nsExec(a, 'ip', '-6', 'addr', 'add', aAddr, 'dev', aIf, 'nodad');
    nsExec(b, 'ip', '-6', 'addr', 'add', bAddr, 'dev', bIf, 'nodad');
  };
  link(ns.core!, 'c-ha', '2001:db8:1::1/64', ns.ha!, 'ha-c', `${LAB_ADDR.ha}/64`);
  link(ns.core!, 'c-cn', '2001:db8:c::1/64', ns.cn!, 'cn-c', `${LAB_ADDR.cn}/64`);
  link(ns.core!, 'c-a', '2001:db8:a::1/64', ns['host-a']!, 'a-c', `${LAB_ADDR['host-a']}/64`);
  link(ns.core!, 'c-b', '2001:db8:b::1/64', ns['host-b']!, 'b-c', `${LAB_ADDR['host-b']}/64`);
  nsExec(ns.ha!, 'ip', '-6', 'route', 'add', 'default', 'via', '2001:db8:1::1');
  nsExec(ns.cn!, 'ip', '-6', 'route', 'add', 'default', 'via', '2001:db8:c::1');
  nsExec(ns['host-a']!, 'ip', '-6', 'route', 'add', 'default', 'via', '2001:db8:a::1');
  nsExec(ns['host-b']!, 'ip', '-6', 'route', 'add', 'default', 'via', '2001:db8:b::1');
  nsExec(ns.core!, 'ip', '-6', 'route', 'add', LAB_ADDR.mnpPool, 'via', LAB_ADDR.ha);
}

function haConfig(s: LabState) {
  return {
    addresses: [LAB_ADDR.ha],
    servedPrefixes: [LAB_ADDR.mnpPool],
    replayProtection: { requireTimestamp: true, windowMs: 7000 },
    rateLimit: { perSec: 100, burst: 200 },
    dataplane: { backend: 'kernel' },
    api: { listen: s.haApi },
    redis: { url: s.redisUrl },
  };
}

function agentConfig(s: LabState, host: LabHost, initialTimeoutMs: number) {
  return {
    hostId: host,
    coa: LAB_ADDR[host],
    haAddress: LAB_ADDR.ha,
    dataplane: { backend: 'kernel' },
    redis: { url: s.redisUrl },
    hypervisor: { driver: 'netns', namespaces: { 'host-a': s.namespaces['host-a'], 'host-b': s.namespaces['host-b'] } },
    api: { listen: s.agentApis[host] },
    registration: { lifetimeSec: 400, initialTimeoutMs, useTimestamp: true },
    routerAdvertisements: { intervalMs: 3000, rdnss: [] },
    heartbeatMs: 1000,
  };
}

function launch(state: LabState, name: string, ns: string | null, cmd: string, args: string[]): number {
  state.commands[name] = { ns, cmd, args };
  return startProcess(name, state.dir, ns, cmd, args);
}

/** Start a lab process again (after a crash or a kill), as it was started first. */
export function restartLabProcess(state: LabState, name: string): number {
  const c = state.commands[name];
  if (!c) throw new Error(`no lab process ${name}`);
  state.pids[name] = startProcess(name, state.dir, c.ns, c.cmd, c.args);
  writeFileSync(stateFile(state.dir), `${JSON.stringify(state, null, 2)}\n`);
  return state.pids[name]!;
}

/** Spawn a detached process (in a namespace, or not) whose output goes to logs/<name>.log. */
function startProcess(name: string, dir: string, ns: string | null, cmd: string, args: string[]): number {
  const out = openSync(join(dir, 'logs', `${name}.log`), 'a');
  const child = spawn(ns ? 'ip' : cmd, ns ? ['netns', 'exec', ns, cmd, ...args] : args, {
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, ROAM6_LOG_LEVEL: process.env.ROAM6_LOG_LEVEL ?? 'info' },
  });
  child.unref();
  if (!child.pid) throw new Error(`could not start ${name}`);
  return child.pid;
}

async function waitUntil(fn: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(what);
}

async function waitForApi(api: string, what: string, logFile: string): Promise<void> {
  try {
    await waitUntil(async () => (await apiRequest(api, 'GET', '/api/v1/health').catch(() => null))?.status === 200, 20_000, `${what} did not come up`);
  } catch (e) {
    let tail = '';
    try {
      tail = readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n');
    } catch {
      /* no log */
    }
    throw new Error(`${(e as Error).message}; last lines of ${logFile}:\n${tail}`);
  }
}

/** Create guest namespaces with their veth on `host`, enrol them, and activate them there. */
export async function addGuests(state: LabState, count: number, host: LabHost): Promise<void> {
  const { connectRedis } = await import('../platform/redis/connection.js');
  const { RedisGuestRegistry } = await import('../platform/redis/guest-registry.js');
  const redis = await connectRedis({ url: state.redisUrl, name: 'roam6-lab', log: () => {} });
  try {
    const registry = new RedisGuestRegistry(redis.client);
    const start = state.guests.length + 1;
    for (let i = start; i < start + count; i++) {
      const id = guestId(i, state.name);
      const gns = `r6lab-${state.name}-g${i}`;
      ip('netns', 'add', gns);
      nsExec(gns, 'ip', 'link', 'set', 'lo', 'up');
      // An unmodified guest: default sysctls (accept_ra=1, autoconf=1); only DAD off for speed.
      nsExec(gns, 'sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0');
      const port = guestPortName(id);
      ip('link', 'add', 'eth0', 'netns', gns, 'type', 'veth', 'peer', 'name', port, 'netns', state.namespaces[host]!);
      nsExec(state.namespaces[host]!, 'ip', 'link', 'set', port, 'alias', guestLinkAlias(id));
      nsExec(gns, 'sysctl', '-qw', 'net.ipv6.conf.eth0.accept_dad=0');
      nsExec(gns, 'ip', 'link', 'set', 'eth0', 'up');
      await registry.put({
        id,
        mnps: [guestMnp(i)],
        sas: [{ spi: 0x10000 + i, algorithm: 'hmac-sha256-128', key: randomBytes(32).toString('hex') }],
        mobileRouter: true,
        host,
      });
      state.guests.push({ id, mnp: guestMnp(i), ns: gns, host });
    }
    const todo = state.guests.slice(start - 1);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(16, todo.length) }, async () => {
        for (let g = todo[next++]; g; g = todo[next++]) {
          const r = await apiRequest(state.agentApis[host], 'POST', `/api/v1/guests/${encodeURIComponent(g.id)}/activate`);
          if (r.status !== 200) throw new Error(`activating ${g.id} on ${host} failed: ${JSON.stringify(r.body)}`);
        }
      }),
    );
  } finally {
    await redis.close();
  }
}

/** The guest's global address (SLAAC in its MNP), or null while it has none. */
export function guestAddress(guest: Pick<LabGuest, 'ns'>): string | null {
  const out = nsExec(guest.ns, 'ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global');
  const m = /inet6 ([0-9a-f:]+)\/64/.exec(out);
  return m ? m[1]! : null;
}

/** Stop every process and remove every namespace of the lab (also after a crash). */
export async function labDown(name: string, dir = labDir(name), opts: { keepDir?: boolean } = {}): Promise<{ killed: number; namespaces: number }> {
  const state = readLabState(name, dir);
  const pids = Object.values(state?.pids ?? {});
  let killed = 0;
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
      killed++;
    } catch {
      /* gone */
    }
  }
  const deadline = Date.now() + 5000;
  for (const pid of pids) {
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (alive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  const prefix = `r6lab-${name}-`;
  let namespaces = 0;
  for (const line of ip('netns', 'list').split('\n')) {
    const n = line.split(' ')[0];
    if (!n?.startsWith(prefix)) continue;
    try {
      for (const pid of ip('netns', 'pids', n).split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    } catch {
      /* gone */
    }
    try {
      ip('netns', 'del', n);
      namespaces++;
    } catch {
      /* gone */
    }
  }
  if (!opts.keepDir) rmSync(dir, { recursive: true, force: true });
  return { killed, namespaces };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
