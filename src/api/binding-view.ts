/**
 * The JSON shape of a binding for the API, the web page and `roam6 bindings --json`, and the
 * operator table that renders it (STYLE.md §3e item 11: one table, next to the data, shown
 * the same way by the CLI and described by the API's schemas).
 */
import { BaStatus } from '../wire/mh/constants.js';
import type { Binding, HandoverRecord } from '../core/binding-cache.js';
import type { BindingCounters as DataplaneCounters } from '../ports/dataplane.js';

export type BindingStateName = 'registered' | 'expiring';

export interface HandoverView {
  from: string;
  to: string;
  /** Host ids of the two CoAs (from the hosts' heartbeats), when known. */
  fromHost: string | null;
  toHost: string | null;
  at: string;
  /** HA side: first BU from the new CoA received → BA accepting the move, ms (null: not measured). */
  haMs: number | null;
}

/** One handover in a guest's story, with the orchestrator's numbers when Redis has them. */
export interface HandoverDetailView extends HandoverView {
  /**
   * The handover duration, ms: the orchestrator's "resume → BA" (the guest runs on the new host
   * until the HA tunnels to it) when the migration's outcome is known, else the HA-side time.
   */
  durationMs: number | null;
  durationSource: 'orchestrator' | 'ha' | null;
  migration: MigrationNumbers | null;
}

export interface MigrationNumbers {
  fromHost: string;
  toHost: string;
  /** Whole migration, request to release. */
  totalMs: number;
  /** The hypervisor's pause. */
  pauseMs: number;
  /** Guest resumed on the destination → BA at the destination's agent. */
  resumeToBaMs: number;
  /** BU → BA at the destination's agent. */
  registrationMs: number;
  finishedAt: string;
}

export interface RejectionView {
  status: number;
  statusText: string;
  detail: string | null;
  at: string;
}

export interface BindingView {
  guest: string;
  mnps: string[];
  coa: string;
  /** Host id holding the CoA, from the hosts' heartbeats in Redis; null when unknown. */
  host: string | null;
  haAddress: string;
  seq: number;
  flags: string[];
  state: BindingStateName;
  lifetimeSec: number;
  lifetimeLeftSec: number;
  expiresAt: string;
  registeredAt: string;
  updatedAt: string;
  lastHandover: HandoverView | null;
  history?: HandoverDetailView[];
  bus?: { accepted: number; rejected: number; dropped: number };
  lastRejection?: RejectionView | null;
  dataplane?: DataplaneCounters | null;
}

/** Bindings with less than this share of their lifetime left are "expiring": refreshes are failing. */
export const EXPIRING_SHARE = 0.1;

export function isExpiring(b: Pick<Binding, 'expiresAt' | 'lifetimeSec'>, now: number): boolean {
  return b.expiresAt - now < b.lifetimeSec * 1000 * EXPIRING_SHARE;
}

export function stateOf(b: Pick<Binding, 'expiresAt' | 'lifetimeSec'>, now: number): BindingStateName {
  return isExpiring(b, now) ? 'expiring' : 'registered';
}

export type HostOf = (coa: string) => string | null;

const iso = (ms: number) => new Date(ms).toISOString();

export function handoverView(h: HandoverRecord, hostOf: HostOf): HandoverView {
  return { from: h.from, to: h.to, fromHost: hostOf(h.from), toHost: hostOf(h.to), at: iso(h.at), haMs: h.haMs ?? null };
}

export function bindingView(b: Binding, now: number, hostOf: HostOf = () => null): BindingView {
  const last = b.history?.at(-1);
  return {
    guest: b.guest,
    mnps: b.mnps,
    coa: b.coa,
    host: hostOf(b.coa),
    haAddress: b.haAddress,
    seq: b.seq,
    flags: b.flags,
    state: stateOf(b, now),
    lifetimeSec: b.lifetimeSec,
    lifetimeLeftSec: Math.max(0, Math.round((b.expiresAt - now) / 1000)),
    expiresAt: iso(b.expiresAt),
    registeredAt: iso(b.registeredAt),
    updatedAt: iso(b.updatedAt),
    lastHandover: last ? handoverView(last, hostOf) : null,
  };
}

/** "sequence number out of window" for 135; "status N" for codes without a name. */
export function baStatusText(status: number): string {
  const name = (BaStatus as unknown as Record<number, string | undefined>)[status];
  if (!name) return `status ${status}`;
  return name.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
}

// ---------------------------------------------------------------------------------------------
// The operator table: one declaration, rendered by `roam6 bindings` (and `watch`).

export interface BindingColumn {
  readonly header: string;
  /** The list endpoint's sort key for this column, if it has one. */
  readonly sort?: string;
  readonly align?: 'left' | 'right';
  /** May be cut (…) to fit the terminal. */
  readonly flexible?: boolean;
  /** Dropped first (highest number first) when the terminal is too narrow even after cutting. */
  readonly dropOrder?: number;
  readonly value: (v: BindingView, now: number) => string;
}

/** Compact age: 3725 s → "1h02m". */
export function shortDuration(sec: number): string {
  if (sec < 60) return `${Math.max(0, Math.round(sec))}s`;
  if (sec < 3600) return `${Math.floor(sec / 60)}m${String(Math.floor(sec % 60)).padStart(2, '0')}s`;
  if (sec < 86400) return `${Math.floor(sec / 3600)}h${String(Math.floor((sec % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(sec / 86400)}d${String(Math.floor((sec % 86400) / 3600)).padStart(2, '0')}h`;
}

/** 0.4 → "0.4 ms", 12.3 → "12 ms", 2300 → "2.3 s". */
export function shortMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  if (ms === 0) return '<1 ms'; // the clock has millisecond resolution
  if (ms < 10) return `${Math.round(ms * 10) / 10} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

export const BINDING_COLUMNS: readonly BindingColumn[] = [
  { header: 'GUEST', sort: 'guest', flexible: true, value: (v) => v.guest },
  { header: 'HOST', sort: 'host', flexible: true, dropOrder: 2, value: (v) => v.host ?? '-' },
  { header: 'COA', sort: 'coa', value: (v) => v.coa },
  { header: 'MNPS', flexible: true, dropOrder: 3, value: (v) => v.mnps.join(',') },
  { header: 'SEQ', align: 'right', dropOrder: 5, value: (v) => String(v.seq) },
  { header: 'AGE', align: 'right', dropOrder: 6, value: (v, now) => shortDuration((now - Date.parse(v.registeredAt)) / 1000) },
  { header: 'LEFT', sort: 'expiresAt', align: 'right', value: (v) => shortDuration(v.lifetimeLeftSec) },
  { header: 'STATE', dropOrder: 1, value: (v) => v.state },
  {
    header: 'LAST MOVE',
    sort: 'lastMove',
    align: 'right',
    value: (v, now) => (v.lastHandover ? `${shortDuration((now - Date.parse(v.lastHandover.at)) / 1000)} ago` : '-'),
  },
  { header: 'HANDOVER', align: 'right', dropOrder: 4, value: (v) => (v.lastHandover ? shortMs(v.lastHandover.haMs) : '-') },
];
