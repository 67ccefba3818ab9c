/**
 * The JSON shape of a binding for the API and `roam6 bindings --json`. One function, used by
 * the HTTP server; the CLI renders the same objects.
 */
import type { Binding } from '../core/binding-cache.js';
import type { BindingCounters as DataplaneCounters } from '../ports/dataplane.js';

export interface BindingView {
  guest: string;
  mnps: string[];
  coa: string;
  haAddress: string;
  seq: number;
  flags: string[];
  state: 'registered' | 'expiring';
  lifetimeSec: number;
  lifetimeLeftSec: number;
  expiresAt: string;
  registeredAt: string;
  updatedAt: string;
  lastHandover: { from: string; to: string; at: string } | null;
  history?: { from: string; to: string; at: string }[];
  bus?: { accepted: number; rejected: number; dropped: number };
  dataplane?: DataplaneCounters | null;
}

/** Bindings with less than this share of their lifetime left are "expiring". */
const EXPIRING_SHARE = 0.1;

export function bindingView(b: Binding, now: number, detail = false): BindingView {
  const left = Math.max(0, Math.round((b.expiresAt - now) / 1000));
  const last = b.history?.at(-1);
  const iso = (ms: number) => new Date(ms).toISOString();
  const view: BindingView = {
    guest: b.guest,
    mnps: b.mnps,
    coa: b.coa,
    haAddress: b.haAddress,
    seq: b.seq,
    flags: b.flags,
    state: left < b.lifetimeSec * EXPIRING_SHARE ? 'expiring' : 'registered',
    lifetimeSec: b.lifetimeSec,
    lifetimeLeftSec: left,
    expiresAt: iso(b.expiresAt),
    registeredAt: iso(b.registeredAt),
    updatedAt: iso(b.updatedAt),
    lastHandover: last ? { from: last.from, to: last.to, at: iso(last.at) } : null,
  };
  if (detail) {
    view.history = (b.history ?? []).map((h) => ({ from: h.from, to: h.to, at: iso(h.at) }));
    view.bus = { accepted: b.counters?.accepted ?? 0, rejected: b.counters?.rejected ?? 0, dropped: b.counters?.dropped ?? 0 };
  }
  return view;
}
