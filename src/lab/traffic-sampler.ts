/**
 * Interface counter sampler for figure 5: reads
 * /sys/class/net/<if>/statistics/{tx,rx}_{packets,bytes} on a drift-free schedule and logs one
 * JSON line per interface and sample (`TrafficSample` in ./analysis.ts). Run inside a namespace
 * (`ip netns exec NS roam6 lab sample …`), it reads that namespace's interfaces, because
 * `ip netns exec` mounts a fresh /sys for the namespace.
 *
 * An interface that is missing (not created yet, or moved to another namespace, as a lab
 * guest's veth is during a migration) is skipped for that round; `binTraffic` treats the
 * missing stretch as a break and a counter that restarts as a reset.
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

import type { TrafficSample } from './analysis.js';
import { nowMs } from './stream.js';

export const SYS_CLASS_NET = '/sys/class/net';

export interface InterfaceCounters {
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
}

/** The four counters of one interface, or null when it does not exist (here, now). */
export function readInterfaceCounters(iface: string, sysClassNet = SYS_CLASS_NET): InterfaceCounters | null {
  if (!/^[^/\0]{1,15}$/.test(iface) || iface === '.' || iface === '..') throw new RangeError(`not an interface name: ${iface}`);
  const dir = join(sysClassNet, iface, 'statistics');
  const read = (name: string): number => Number(readFileSync(join(dir, name), 'utf8').trim());
  try {
    return { txPackets: read('tx_packets'), txBytes: read('tx_bytes'), rxPackets: read('rx_packets'), rxBytes: read('rx_bytes') };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENODEV') return null;
    throw e;
  }
}

export interface TrafficSamplerOptions {
  ifaces: string[];
  intervalMs: number;
  /** Sample log: one JSON line per interface and sample. */
  out: string;
  /** Stop after this many seconds (default: until aborted). */
  durationSec?: number;
  /** Written into every sample (e.g. the host), so logs from several namespaces can be merged. */
  label?: string;
  /** Default /sys/class/net; tests point it at a directory of their own. */
  sysClassNet?: string;
}

export interface TrafficSamplerSummary {
  rounds: number;
  samples: number;
  /** Interface → rounds in which it was missing. */
  missing: Record<string, number>;
  startedAt: number;
  endedAt: number;
}

export function formatTrafficSample(s: TrafficSample): string {
  return JSON.stringify({
    t: Math.round(s.t * 1000) / 1000,
    iface: s.iface,
    ...(s.label ? { label: s.label } : {}),
    txPackets: s.txPackets,
    txBytes: s.txBytes,
    rxPackets: s.rxPackets,
    rxBytes: s.rxBytes,
  });
}

/** Parses a sample log (blank lines and a torn last line are skipped). */
export function parseTrafficSamples(text: string): TrafficSample[] {
  const lines = text.split('\n');
  const out: TrafficSample[] = [];
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      if (i === lines.length - 1) return;
      throw new Error(`sample log line ${i + 1}: ${(e as Error).message}`);
    }
    const o = v as Record<string, unknown>;
    const nums = ['t', 'txPackets', 'txBytes', 'rxPackets', 'rxBytes'] as const;
    if (typeof o.iface !== 'string' || nums.some((k) => typeof o[k] !== 'number')) {
      throw new Error(`sample log line ${i + 1}: expected {t, iface, txPackets, txBytes, rxPackets, rxBytes}`);
    }
    out.push({
      t: o.t as number,
      iface: o.iface,
      ...(typeof o.label === 'string' ? { label: o.label } : {}),
      txPackets: o.txPackets as number,
      txBytes: o.txBytes as number,
      rxPackets: o.rxPackets as number,
      rxBytes: o.rxBytes as number,
    });
  });
  return out;
}

export function readTrafficSamples(path: string): TrafficSample[] {
  return parseTrafficSamples(readFileSync(path, 'utf8'));
}

/** Samples the interfaces every `intervalMs` (drift-free) until duration or `signal` aborts. */
export async function runTrafficSampler(opts: TrafficSamplerOptions, signal?: AbortSignal): Promise<TrafficSamplerSummary> {
  if (opts.ifaces.length === 0) throw new RangeError('at least one interface to sample');
  if (!(opts.intervalMs >= 1)) throw new RangeError(`interval must be ≥ 1 ms (got ${opts.intervalMs})`);
  for (const i of opts.ifaces) readInterfaceCounters(i, opts.sysClassNet); // validates names early
  const fd = openSync(opts.out, 'w');
  const startedAt = nowMs();
  const endAt = opts.durationSec === undefined ? Infinity : startedAt + opts.durationSec * 1000;
  const missing: Record<string, number> = {};
  let rounds = 0;
  let samples = 0;
  let timer: NodeJS.Timeout | undefined;

  const sampleOnce = (): void => {
    const t = nowMs();
    const lines: string[] = [];
    for (const iface of opts.ifaces) {
      const c = readInterfaceCounters(iface, opts.sysClassNet);
      if (!c) {
        missing[iface] = (missing[iface] ?? 0) + 1;
        continue;
      }
      lines.push(formatTrafficSample({ t, iface, ...(opts.label ? { label: opts.label } : {}), ...c }));
    }
    rounds++;
    samples += lines.length;
    if (lines.length) writeSync(fd, `${lines.join('\n')}\n`);
  };

  try {
    await new Promise<void>((resolve, reject) => {
      const finish = (): void => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', finish);
        resolve();
      };
      if (signal?.aborted) return finish();
      signal?.addEventListener('abort', finish, { once: true });
      let round = 0;
      const tick = (): void => {
        try {
          sampleOnce();
        } catch (e) {
          if (timer) clearTimeout(timer);
          signal?.removeEventListener('abort', finish);
          reject(e);
          return;
        }
        // Next round on the start-anchored grid; skip rounds we are already late for.
        round = Math.max(round + 1, Math.ceil((nowMs() - startedAt) / opts.intervalMs));
        const due = startedAt + round * opts.intervalMs;
        if (due > endAt) return finish();
        timer = setTimeout(tick, Math.max(0, due - nowMs()));
      };
      tick();
    });
    // A last sample at the end, so the final interval is not lost.
    if (rounds > 0) sampleOnce();
  } finally {
    closeSync(fd);
  }
  return { rounds, samples, missing, startedAt, endedAt: nowMs() };
}
