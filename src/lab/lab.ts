/**
 * `roam6 lab`: a whole roam6 deployment on this machine, built from network namespaces —
 * a core router, the Home Agent, a correspondent, two hypervisor hosts on different /64
 * segments, and N lab guests: namespaces whose veth moves between hosts (the netns driver), or
 * real QEMU guests under TCG (`hypervisor: 'qemu'`: the qemu driver, live migration over QMP,
 * the migration stream over a unix socket in the lab directory).
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
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { guestPortName, guestLinkAlias } from '../core/guest-link-identity.js';
import { apiRequest } from '../cli/api-client.js';
import { QemuDriver } from '../platform/qemu/driver.js';
import { qemuGuestPaths } from '../platform/qemu/command-line.js';
import { processAlive, processMentions, readPidfile, stopProcess } from '../platform/hypervisor/process.js';
import { DEFAULT_GUEST_IMAGE_DIR, ensureGuestImage } from './guest-image.js';

export const LAB_HOSTS = ['host-a', 'host-b'] as const;
export type LabHost = (typeof LAB_HOSTS)[number];

export const LAB_ADDR = {
  ha: '2001:db8:1::2',
  cn: '2001:db8:c::2',
  'host-a': '2001:db8:a::2',
  'host-b': '2001:db8:b::2',
  mnpPool: '2001:db8:100::/40',
} as const;

export type LabHypervisor = 'netns' | 'qemu';

/** What a QEMU lab guest runs from boot (its kernel command line; deploy/guest-image/init). */
export const LAB_QEMU_STREAM = {
  /** The guest streams to the CN on this port… */
  port: 5001,
  rateKbit: 520,
  size: 1400,
  /** …and echoes UDP on this port back to the sender's address, port `echoReplyPort`. */
  echoPort: 7,
  echoReplyPort: 5002,
} as const;

export interface LabOptions {
  readonly name: string;
  readonly guests: number;
  /** Where state, configs, sockets and logs go. */
  readonly dir?: string;
  /** First BU retransmission timeout for the agents, ms. */
  readonly initialTimeoutMs?: number;
  /** `netns` (default): namespace guests; `qemu`: real QEMU guests under TCG. */
  readonly hypervisor?: LabHypervisor;
  /** qemu: where the guest image is built (default /var/tmp/roam6-guest-image). */
  readonly guestImageDir?: string;
  /** qemu: guest memory (default 128 MiB). */
  readonly guestMemoryMiB?: number;
  /** qemu: migrate-set-parameters max-bandwidth, MiB/s (default QEMU's). */
  readonly maxBandwidthMiBs?: number;
  /**
   * The HA's data plane: `userspace` (default) holds a migrating guest's packets and delivers
   * them at the new host (zero-loss handover); `kernel` forwards in the kernel (seg6), lossy
   * over the pause.
   */
  readonly haBackend?: 'kernel' | 'userspace';
  readonly log?: (line: string) => void;
}

export interface LabGuest {
  readonly id: string;
  readonly mnp: string;
  /** The guest's namespace (netns guests); '' for QEMU guests. */
  readonly ns: string;
  readonly host: LabHost;
  readonly hypervisor?: LabHypervisor;
}

export interface LabQemuState {
  readonly kernel: string;
  readonly initrd: string;
  readonly memoryMiB: number;
  /** Per-guest definition files, shared by both hosts (identical machines on both sides). */
  readonly guestsDir: string;
  /** Each host's qemu driver state: pidfiles, QMP sockets, serial logs, migration sockets. */
  readonly stateDirs: Record<LabHost, string>;
  readonly maxBandwidthMiBs?: number;
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
  /** Bearer token for the HA API's write operations (DELETE bindings, POST migrations). */
  readonly haToken: string;
  readonly agentApis: Record<LabHost, string>;
  readonly guests: LabGuest[];
  readonly startedAt: string;
  readonly hypervisor?: LabHypervisor;
  readonly qemu?: LabQemuState;
  readonly haBackend?: 'kernel' | 'userspace';
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
  const hypervisor = opts.hypervisor ?? 'netns';
  let qemu: LabQemuState | undefined;
  if (hypervisor === 'qemu') {
    say('building the QEMU guest image (deploy/guest-image/build.sh; skipped when up to date)');
    const image = ensureGuestImage(opts.guestImageDir ?? DEFAULT_GUEST_IMAGE_DIR);
    qemu = {
      kernel: image.kernel,
      initrd: image.initrd,
      memoryMiB: opts.guestMemoryMiB ?? 128,
      guestsDir: join(dir, 'qemu', 'guests'),
      stateDirs: { 'host-a': join(dir, 'qemu', 'host-a'), 'host-b': join(dir, 'qemu', 'host-b') },
      ...(opts.maxBandwidthMiBs !== undefined ? { maxBandwidthMiBs: opts.maxBandwidthMiBs } : {}),
    };
    for (const d of [qemu.guestsDir, ...Object.values(qemu.stateDirs)]) mkdirSync(d, { recursive: true, mode: 0o700 });
  }
  const state: LabState = {
    name: opts.name,
    dir,
    namespaces: ns,
    pids,
    commands: {},
    redisUrl: `unix://${join(dir, 'redis.sock')}`,
    haApi: `unix:${join(dir, 'ha.sock')}`,
    haToken: randomBytes(24).toString('hex'),
    agentApis: { 'host-a': `unix:${join(dir, 'agent-host-a.sock')}`, 'host-b': `unix:${join(dir, 'agent-host-b.sock')}` },
    guests: [],
    startedAt: new Date().toISOString(),
    hypervisor,
    ...(qemu ? { qemu } : {}),
    haBackend: opts.haBackend ?? 'userspace',
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
    pids.orchestrator = launch(state, 'orchestrator', null, process.execPath, [
      BIN, 'orchestrator', '--redis', state.redisUrl, '--lock-ms', String(LAB_QUEUE_TIMING.lockMs), '--stalled-check-ms', String(LAB_QUEUE_TIMING.stalledCheckMs),
    ]);
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
    dataplane: { backend: s.haBackend ?? 'kernel' },
    api: { listen: s.haApi, token: s.haToken },
    redis: { url: s.redisUrl },
  };
}

function labHypervisorConfig(s: LabState, host: LabHost) {
  if (s.qemu) {
    return {
      driver: 'qemu',
      qemu: {
        stateDir: s.qemu.stateDirs[host],
        guestsDir: s.qemu.guestsDir,
        incoming: { transport: 'unix' },
        ...(s.qemu.maxBandwidthMiBs !== undefined ? { maxBandwidthMiBs: s.qemu.maxBandwidthMiBs } : {}),
        startTimeoutMs: 20_000,
      },
    };
  }
  return { driver: 'netns', namespaces: { 'host-a': s.namespaces['host-a'], 'host-b': s.namespaces['host-b'] } };
}

function agentConfig(s: LabState, host: LabHost, initialTimeoutMs: number) {
  return {
    hostId: host,
    coa: LAB_ADDR[host],
    haAddress: LAB_ADDR.ha,
    dataplane: { backend: 'kernel' },
    redis: { url: s.redisUrl },
    hypervisor: labHypervisorConfig(s, host),
    api: { listen: s.agentApis[host] },
    registration: { lifetimeSec: 400, initialTimeoutMs, useTimestamp: true },
    routerAdvertisements: { intervalMs: 3000, rdnss: [] },
    heartbeatMs: 1000,
    queue: LAB_QUEUE_TIMING,
    ha: { api: s.haApi, token: s.haToken },
  };
}

/** A lab recovers from a killed process within seconds: short job locks, frequent stalled checks. */
const LAB_QUEUE_TIMING = { lockMs: 5000, stalledCheckMs: 1000 };

/** The failpoint file of a lab process (util/failpoints.ts): a test arms a point by writing to it. */
export const labFailpointFile = (state: Pick<LabState, 'dir'>, name: string): string => join(state.dir, `failpoints-${name}`);

function launch(state: LabState, name: string, ns: string | null, cmd: string, args: string[]): number {
  state.commands[name] = { ns, cmd, args };
  return startProcess(name, state.dir, ns, cmd, args);
}

export interface RestartOptions {
  /**
   * A command the process is started under, this time only, e.g. `['env', 'LD_PRELOAD=…',
   * 'FAKETIME=-30s']` to skew its clock. It must exec the process (not fork it): the recorded pid
   * is the wrapper's. The recorded command stays as it was, so a later restart runs it plain.
   */
  readonly wrapper?: readonly string[];
}

/** Start a lab process again (after a crash or a kill), as it was started first. */
export function restartLabProcess(state: LabState, name: string, opts: RestartOptions = {}): number {
  const c = state.commands[name];
  if (!c) throw new Error(`no lab process ${name}`);
  state.pids[name] = startProcess(name, state.dir, c.ns, c.cmd, c.args, opts.wrapper ?? []);
  writeFileSync(stateFile(state.dir), `${JSON.stringify(state, null, 2)}\n`);
  return state.pids[name]!;
}

/** Spawn a detached process (in a namespace, or not) whose output goes to logs/<name>.log. */
function startProcess(name: string, dir: string, ns: string | null, cmd: string, args: string[], wrapper: readonly string[] = []): number {
  const out = openSync(join(dir, 'logs', `${name}.log`), 'a');
  const argv = [...wrapper, cmd, ...args];
  const child = spawn(ns ? 'ip' : argv[0]!, ns ? ['netns', 'exec', ns, ...argv] : argv.slice(1), {
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, ROAM6_LOG_LEVEL: process.env.ROAM6_LOG_LEVEL ?? 'info', ROAM6_FAILPOINTS: labFailpointFile({ dir }, name) },
  });
  closeSync(out); // the child has its own copy
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
      if (state.qemu) {
        await registry.put({
          id,
          mnps: [guestMnp(i)],
          sas: [{ spi: 0x10000 + i, algorithm: 'hmac-sha256-128', key: randomBytes(32).toString('hex') }],
          mobileRouter: true,
          host,
        });
        await startQemuGuest(state, id, i, host);
        state.guests.push({ id, mnp: guestMnp(i), ns: '', host, hypervisor: 'qemu' });
        continue;
      }
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
          // Generous: hundreds of guests built at once on a loaded machine queue on the kernel's RTNL lock.
          const r = await apiRequest(state.agentApis[host], 'POST', `/api/v1/guests/${encodeURIComponent(g.id)}/activate`, {}, undefined, 60_000);
          if (r.status !== 200) throw new Error(`activating ${g.id} on ${host} failed: ${JSON.stringify(r.body)}`);
        }
      }),
    );
  } finally {
    await redis.close();
  }
}

/** Write a QEMU guest's definition (shared by both hosts) and boot it on `host`. */
async function startQemuGuest(state: LabState, id: string, index: number, host: LabHost): Promise<void> {
  const q = state.qemu!;
  const st = LAB_QEMU_STREAM;
  const append = [
    'console=ttyS0', 'quiet', 'panic=-1',
    `roam6.cn=${LAB_ADDR.cn}`, `roam6.port=${st.port}`, `roam6.rate=${st.rateKbit}`, `roam6.size=${st.size}`, `roam6.sid=${index}`,
    `roam6.echo=${st.echoPort}`, `roam6.echoreply=${st.echoReplyPort}`,
  ].join(' ');
  writeFileSync(join(q.guestsDir, `${encodeURIComponent(id)}.json`), `${JSON.stringify({ id, kernel: q.kernel, initrd: q.initrd, append, memoryMiB: q.memoryMiB }, null, 2)}\n`);
  const driver = labQemuDriver(state, host);
  try {
    await driver.start(id);
  } finally {
    driver.close();
  }
}

/** A qemu driver for one lab host, used from outside its namespace (QEMU starts inside it). */
export function labQemuDriver(state: LabState, host: LabHost): QemuDriver {
  const q = state.qemu;
  if (!q) throw new Error(`lab ${state.name} does not run QEMU guests`);
  return new QemuDriver({
    stateDir: q.stateDirs[host],
    guestsDir: q.guestsDir,
    spawnPrefix: ['ip', 'netns', 'exec', state.namespaces[host]!],
    linkExists: async () => false,
    startTimeoutMs: 20_000,
  });
}

/** What a QEMU lab guest last printed on its console (deploy/guest-image/init, r6stream). */
export interface QemuGuestConsole {
  /** The host whose serial log has the newest status line: where the guest runs. */
  readonly host: LabHost;
  /** Guest uptime (s) of that line. */
  readonly uptimeSec: number;
  readonly addr: string | null;
  readonly router: string | null;
  readonly routerMac: string | null;
  /** The guest's stream sender: sequence numbers used, failed sends, skipped slots. */
  readonly send: { seq: number; errors: number; skipped: number } | null;
  /** The guest's echo/receiver: stream packets received, holes in the sequence numbers. */
  readonly echo: { received: number; lost: number; reordered: number; echoed: number } | null;
}

export function qemuGuestConsole(state: LabState, guest: string): QemuGuestConsole | null {
  const q = state.qemu;
  if (!q) return null;
  let best: QemuGuestConsole | null = null;
  for (const host of LAB_HOSTS) {
    let text: string;
    try {
      text = readFileSync(qemuGuestPaths(q.stateDirs[host], guest).serial, 'utf8');
    } catch {
      continue;
    }
    const lines = text.split('\n');
    const status = [...lines].reverse().map((l) => /r6guest: t=([\d.]+) addr=(\S+) router=(\S+) lladdr=(\S+)/.exec(l)).find(Boolean);
    if (!status) continue;
    const uptimeSec = Number(status[1]);
    if (best && best.uptimeSec >= uptimeSec) continue;
    const send = [...lines].reverse().map((l) => /r6stream send: seq=(\d+) errors=(\d+) skipped=(\d+)/.exec(l)).find(Boolean);
    const echo = [...lines].reverse().map((l) => /r6stream echo: received=(\d+) lost=(\d+) reordered=(\d+) echoed=(\d+)/.exec(l)).find(Boolean);
    const v = (s: string | undefined) => (s === undefined || s === 'none' ? null : s);
    best = {
      host,
      uptimeSec,
      addr: v(status[2]),
      router: v(status[3]),
      routerMac: v(status[4]),
      send: send ? { seq: Number(send[1]), errors: Number(send[2]), skipped: Number(send[3]) } : null,
      echo: echo ? { received: Number(echo[1]), lost: Number(echo[2]), reordered: Number(echo[3]), echoed: Number(echo[4]) } : null,
    };
  }
  return best;
}

/**
 * The guest's global address (SLAAC in its MNP), or null while it has none. A QEMU guest is
 * asked through its console log (`state` needed); a netns guest through its namespace.
 */
export function guestAddress(guest: Pick<LabGuest, 'ns'> & Partial<Pick<LabGuest, 'id' | 'hypervisor'>>, state?: LabState): string | null {
  if (guest.hypervisor === 'qemu') {
    if (!state || !guest.id) throw new Error('guestAddress of a QEMU guest needs the lab state');
    return qemuGuestConsole(state, guest.id)?.addr ?? null;
  }
  const out = nsExec(guest.ns, 'ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global');
  const m = /inet6 ([0-9a-f:]+)\/64/.exec(out);
  return m ? m[1]! : null;
}

/** Stop the lab's QEMUs by their own pidfiles (never a wrapper), so their TAPs go with them. */
async function stopLabQemus(dir: string): Promise<number> {
  const base = join(dir, 'qemu');
  let stopped = 0;
  let hosts: string[];
  try {
    hosts = readdirSync(base);
  } catch {
    return 0;
  }
  const pids: number[] = [];
  for (const h of hosts) {
    let files: string[];
    try {
      files = readdirSync(join(base, h)).filter((f) => f.endsWith('.pid'));
    } catch {
      continue;
    }
    for (const f of files) {
      const pid = readPidfile(join(base, h, f));
      if (pid !== null && processAlive(pid) && processMentions(pid, base)) pids.push(pid);
    }
  }
  await Promise.all(pids.map(async (pid) => {
    await stopProcess(pid, 3000);
    stopped++;
  }));
  return stopped;
}

/** Stop every process and remove every namespace of the lab (also after a crash). */
export async function labDown(name: string, dir = labDir(name), opts: { keepDir?: boolean } = {}): Promise<{ killed: number; namespaces: number }> {
  const state = readLabState(name, dir);
  const pids = Object.values(state?.pids ?? {});
  let killed = await stopLabQemus(dir);
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
