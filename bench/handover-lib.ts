/**
 * Pieces of bench/handover.ts that are not the experiment itself: the HA's hold counters from
 * its /metrics, a QEMU guest's own counters from a serial log, and the same-segment QEMU
 * migration used as the QEMU baseline (copied from bench/migrate-qemu.ts, which another bench
 * owns).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';

import { apiRequest } from '../src/cli/api-client.js';
import { guestLinkIdentity } from '../src/core/guest-link-identity.js';
import { labQemuDriver, type LabHost, type LabState } from '../src/lab/lab.js';
import { qemuArgs, type QemuGuestPaths } from '../src/platform/qemu/command-line.js';
import { QmpClient } from '../src/platform/qemu/qmp.js';
import { processAlive, readPidfile, stopProcess } from '../src/platform/hypervisor/process.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// the HA's hold counters

/** What bench:handover reads from the HA's GET /metrics. */
export interface HoldCounters {
  /** roam6_ha_handover_held_packets_total */
  heldPackets: number;
  /** roam6_ha_handover_holds_released_total */
  holdsReleased: number;
  /** roam6_dataplane_drops_total by reason (hold_overflow among them). */
  drops: Record<string, number>;
  /** roam6_dataplane_packets_total by direction (tx = HA → host). */
  packets: Record<string, number>;
}

/** Parses the few series bench:handover needs out of Prometheus text. */
export function parseHoldCounters(text: string): HoldCounters {
  const out: HoldCounters = { heldPackets: 0, holdsReleased: 0, drops: {}, packets: {} };
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eE]+|NaN)$/.exec(line.trim());
    if (!m) continue;
    const [, name, labels, value] = m;
    const v = Number(value);
    const label = (k: string) => new RegExp(`${k}="([^"]*)"`).exec(labels ?? '')?.[1];
    if (name === 'roam6_ha_handover_held_packets_total') out.heldPackets = v;
    else if (name === 'roam6_ha_handover_holds_released_total') out.holdsReleased = v;
    else if (name === 'roam6_dataplane_drops_total') out.drops[label('reason') ?? ''] = v;
    else if (name === 'roam6_dataplane_packets_total') out.packets[label('direction') ?? ''] = v;
  }
  return out;
}

export async function readHoldCounters(haApi: string): Promise<HoldCounters> {
  const r = await apiRequest(haApi, 'GET', '/metrics', { accept: 'text/plain' });
  if (r.status !== 200 || typeof r.body !== 'string') throw new Error(`GET /metrics on the HA: HTTP ${r.status}`);
  return parseHoldCounters(r.body);
}

/** b − a, per field (a missing drop reason counts as 0). */
export function holdDelta(a: HoldCounters, b: HoldCounters): HoldCounters {
  const sub = (x: Record<string, number>, y: Record<string, number>) =>
    Object.fromEntries([...new Set([...Object.keys(x), ...Object.keys(y)])].map((k) => [k, (y[k] ?? 0) - (x[k] ?? 0)]));
  return { heldPackets: b.heldPackets - a.heldPackets, holdsReleased: b.holdsReleased - a.holdsReleased, drops: sub(a.drops, b.drops), packets: sub(a.packets, b.packets) };
}

// ---------------------------------------------------------------------------------------------
// a QEMU guest's own counters (deploy/guest-image/r6stream.c status lines)

export interface GuestStreamCounters {
  /** r6stream send: sequence numbers used, failed sends, skipped slots. */
  send: { seq: number; errors: number; skipped: number } | null;
  /** r6stream echo: stream packets received, holes in the sequence numbers, out of order, echoed. */
  echo: { received: number; lost: number; reordered: number; echoed: number } | null;
}

/** The last status lines in one serial log (null fields when there are none). */
export function guestCountersFromSerial(path: string): GuestStreamCounters {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return { send: null, echo: null };
  }
  const lines = text.split('\n').reverse();
  const send = lines.map((l) => /r6stream send: seq=(\d+) errors=(\d+) skipped=(\d+)/.exec(l)).find(Boolean);
  const echo = lines.map((l) => /r6stream echo: received=(\d+) lost=(\d+) reordered=(\d+) echoed=(\d+)/.exec(l)).find(Boolean);
  return {
    send: send ? { seq: Number(send[1]), errors: Number(send[2]), skipped: Number(send[3]) } : null,
    echo: echo ? { received: Number(echo[1]), lost: Number(echo[2]), reordered: Number(echo[3]), echoed: Number(echo[4]) } : null,
  };
}

// ---------------------------------------------------------------------------------------------
// the QEMU baseline: the same live migration inside one segment, no roam6

export interface SameSegmentResult {
  readonly downtimeMs: number;
  readonly totalMs: number;
}

/**
 * One QEMU migration over QMP between two QEMUs of the guest on `host`, no roam6 involved: the
 * second QEMU's TAP joins the guest's bridge, as a second host's TAP on the same segment would.
 * (Also the baseline of bench/migrate-qemu.ts.)
 */
export async function sameSegmentMigration(lab: LabState, host: LabHost, guest: string, from: QemuGuestPaths, to: QemuGuestPaths): Promise<SameSegmentResult> {
  const ns = lab.namespaces[host]!;
  const driver = labQemuDriver(lab, host);
  const def = driver.definition(guest);
  driver.close();
  for (const f of [to.pidfile, to.qmp, to.migrationSocket]) rmSync(f, { force: true });
  execFileSync('ip', ['netns', 'exec', ns, 'qemu-system-x86_64', ...qemuArgs(guest, def, to, { incoming: true })], { stdio: 'pipe' });
  const dst = await QmpClient.connect(to.qmp);
  await dst.execute('migrate-incoming', { uri: `unix:${to.migrationSocket}` });
  const bridge = guestLinkIdentity(guest).ifname;
  execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${to.tap}.disable_ipv6=1`]);
  execFileSync('ip', ['-n', ns, 'link', 'set', to.tap, 'mtu', '1460', 'master', bridge, 'up']);
  await sleep(300); // linkwatch: the new port must pass traffic before the guest lands on it
  const src = await QmpClient.connect(from.qmp);
  try {
    await src.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
    await src.execute('migrate', { uri: `unix:${to.migrationSocket}` });
    let info: { status?: string; downtime?: number; 'total-time'?: number; 'error-desc'?: string } = {};
    for (;;) {
      info = await src.execute('query-migrate');
      if (info.status === 'completed' || info.status === 'failed' || info.status === 'cancelled') break;
      await sleep(10);
    }
    if (info.status !== 'completed') throw new Error(`baseline migration failed: ${info['error-desc'] ?? info.status}`);
    for (let i = 0; i < 200 && !info['total-time']; i++) {
      await sleep(5);
      info = await src.execute('query-migrate');
    }
    await src.execute('quit').catch(() => undefined);
    return { downtimeMs: info.downtime ?? NaN, totalMs: info['total-time'] ?? NaN };
  } finally {
    src.close();
    dst.close();
    const pid = readPidfile(from.pidfile);
    if (pid !== null && processAlive(pid)) await stopProcess(pid, 3000);
  }
}

// ---------------------------------------------------------------------------------------------
// packet captures (--capture): where a lost packet was last seen

/** `tcpdump -i any` inside a namespace, writing a pcap (Linux cooked v2: interface index and direction per packet). */
export class NsCapture {
  private readonly child: ChildProcess;
  private readonly names = new Map<number, string>();
  private err = '';

  /** `filter`: a pcap filter, e.g. `greater 500` to keep only the 1400-byte stream packets. */
  constructor(readonly ns: string, readonly label: string, readonly file: string, filter: string[] = []) {
    this.child = spawn('ip', ['netns', 'exec', ns, 'tcpdump', '-i', 'any', '-n', '-U', '-s', '200', '-w', file, ...filter], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr!.on('data', (d: Buffer) => (this.err += d.toString()));
  }

  async ready(timeoutMs = 5000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!/listening on/.test(this.err)) {
      if (this.child.exitCode !== null || Date.now() > end) throw new Error(`tcpdump in ${this.ns}: ${this.err.trim() || 'did not start'}`);
      await sleep(50);
    }
  }

  /** Remember the namespace's interface names now (interfaces come and go: TAPs, moved veths). */
  snapshot(): void {
    let out = '';
    try {
      out = execFileSync('ip', ['-n', this.ns, '-o', 'link', 'show'], { encoding: 'utf8' });
    } catch {
      return;
    }
    for (const m of out.matchAll(/^(\d+): ([^:@\s]+)/gm)) this.names.set(Number(m[1]), m[2]!);
  }

  ifname(index: number): string {
    return this.names.get(index) ?? `if${index}`;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise<void>((res) => {
      const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      this.child.once('exit', () => {
        clearTimeout(t);
        res();
      });
      this.child.kill('SIGINT');
    });
  }
}

/** One sighting of a stream packet in a capture. */
export interface Sighting {
  /** Epoch ms. */
  t: number;
  where: string;
  ifname: string;
  /** Linux cooked: 'out' (sent by this namespace), 'in' (to it), or the raw packet type. */
  dir: string;
  dport: number;
  streamId: number;
  seq: number;
  /** Inside an IPv6-in-IPv6 tunnel. */
  tunnelled: boolean;
}

/** The stream packets (src/lab/stream.ts layout) in a capture, tunnelled or not. */
export function readSightings(cap: NsCapture): Sighting[] {
  let out = '';
  try {
    out = execFileSync('tshark', ['-r', cap.file, '-Y', 'udp.payload[0:4] == 52:36:53:54', '-T', 'fields', '-E', 'separator=;', '-e', 'frame.time_epoch', '-e', 'sll.ifindex', '-e', 'sll.pkttype', '-e', 'udp.dstport', '-e', 'udp.payload', '-e', 'ipv6.src'], { encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch (e) {
    out = String((e as { stdout?: string }).stdout ?? '');
  }
  const res: Sighting[] = [];
  for (const line of out.split('\n')) {
    const [t, ifindex, pkttype, dport, payload, srcs] = line.split(';');
    if (!t || !payload) continue;
    const hex = payload.replace(/:/g, '');
    res.push({
      t: Number(t) * 1000,
      where: cap.label,
      ifname: cap.ifname(Number(ifindex)),
      dir: pkttype === '4' ? 'out' : pkttype === '0' ? 'in' : `type${pkttype}`,
      dport: Number(dport),
      streamId: parseInt(hex.slice(16, 24), 16),
      seq: parseInt(hex.slice(24, 32), 16),
      tunnelled: (srcs ?? '').split(',').length > 1,
    });
  }
  return res;
}
