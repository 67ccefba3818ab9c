/**
 * The HA's binding cache: one entry per guest, keyed by guest id (the Mobile Node
 * Identifier), with a longest-prefix-match index over the registered MNPs and an expiry
 * wheel. State only: no kernel, no sockets, no clock reads (times are passed in).
 *
 * Sized for 1,000,000 bindings: addresses are kept in text form (a V8 string is far smaller
 * than a Uint8Array), counters and history are allocated on first use, and expiry uses
 * one-second buckets instead of a timer per entry. That last point departs from UMIP's
 * "timer embedded in the entry" on purpose: a million live timers cost more than the bindings.
 */
import { formatPrefix, tryParsePrefix, type Ipv6Prefix } from '../wire/ipv6.js';

export type BindingState = 'registered' | 'expired';

export interface HandoverRecord {
  /** Previous CoA. */
  readonly from: string;
  /** New CoA. */
  readonly to: string;
  /** Epoch ms when the HA accepted the move. */
  readonly at: number;
  /**
   * HA-side handover time, ms: from the first authenticated BU the HA received from the new CoA
   * to the BA accepting the move. One clean exchange makes this the HA's processing time;
   * retransmissions or rejected attempts from the new host make it longer.
   */
  readonly haMs?: number;
}

export interface BindingCounters {
  /** BUs accepted for this binding. */
  accepted: number;
  /** BUs rejected with a status ≥ 128. */
  rejected: number;
  /** BUs dropped (bad authenticator handled as rejection; rate-limited or replayed drops here). */
  dropped: number;
}

export interface Binding {
  readonly guest: string;
  /** Registered MNPs, canonical "addr/len". */
  mnps: string[];
  /** Current care-of address (text). */
  coa: string;
  /** HA address the guest registered with (text). */
  haAddress: string;
  /** Last accepted sequence number. */
  seq: number;
  /** BU flag names as accepted (e.g. ["ack", "home", "router"]). */
  flags: string[];
  /** Granted lifetime, seconds. */
  lifetimeSec: number;
  expiresAt: number;
  registeredAt: number;
  updatedAt: number;
  /** Last accepted RFC 4285 replay-protection timestamp (NTP 64-bit). */
  lastTimestamp?: bigint;
  /** Last N CoA changes, oldest first. */
  history?: HandoverRecord[];
  counters?: BindingCounters;
}

export const DEFAULT_HISTORY_LENGTH = 16;

function prefixKey(p: Ipv6Prefix): string {
  // Masked address bytes as a latin1 string: compact, exact, and cheap to compare.
  const n = Math.ceil(p.len / 8);
  const rem = p.len & 7;
  let key = '';
  for (let i = 0; i < n; i++) {
    const mask = i === n - 1 && rem ? (0xff << (8 - rem)) & 0xff : 0xff;
    key += String.fromCharCode(p.addr[i]! & mask);
  }
  return key;
}

export class BindingCache {
  private readonly byGuest = new Map<string, Binding>();
  /** prefix length → (masked prefix bytes → guest). */
  private readonly byPrefix = new Map<number, Map<string, string>>();
  /** Prefix lengths present, longest first (for LPM). */
  private lengths: number[] = [];
  /** Expiry wheel: whole second → guests whose binding expires in that second. */
  private readonly wheel = new Map<number, Set<string>>();

  constructor(readonly historyLength = DEFAULT_HISTORY_LENGTH) {}

  get size(): number {
    return this.byGuest.size;
  }

  get(guest: string): Binding | undefined {
    return this.byGuest.get(guest);
  }

  values(): IterableIterator<Binding> {
    return this.byGuest.values();
  }

  /** The guest whose registered MNP is the longest match for this address (or prefix). */
  lookup(addr: Uint8Array): Binding | undefined {
    for (const len of this.lengths) {
      const guest = this.byPrefix.get(len)?.get(prefixKey({ addr: addr as Ipv6Prefix['addr'], len }));
      if (guest !== undefined) return this.byGuest.get(guest);
    }
    return undefined;
  }

  /** The guest holding exactly this prefix, if any. */
  ownerOf(prefix: Ipv6Prefix): string | undefined {
    return this.byPrefix.get(prefix.len)?.get(prefixKey(prefix));
  }

  /**
   * Insert or replace a binding. `prefixes` are the parsed forms of `binding.mnps`.
   * Records a handover when the CoA changes (with `haMs`, the HA-side handover time, if known).
   */
  put(binding: Binding, prefixes: readonly Ipv6Prefix[], haMs?: number): void {
    const old = this.byGuest.get(binding.guest);
    const mnps = prefixes.map(formatPrefix);
    // A refresh or a move keeps the prefixes: leave the index alone (the common case).
    const samePrefixes = !!old && old.mnps.length === mnps.length && old.mnps.every((m, i) => m === mnps[i]);
    if (old) {
      if (!samePrefixes) this.unindexPrefixes(old);
      this.unschedule(old);
      if (old.coa !== binding.coa) this.recordMove(binding, old.coa, binding.updatedAt, haMs);
    }
    binding.mnps = mnps;
    this.byGuest.set(binding.guest, binding);
    if (!samePrefixes) for (const p of prefixes) this.index(p, binding.guest);
    this.schedule(binding);
  }

  delete(guest: string): Binding | undefined {
    const b = this.byGuest.get(guest);
    if (!b) return undefined;
    this.unindexPrefixes(b);
    this.unschedule(b);
    this.byGuest.delete(guest);
    return b;
  }

  /** Remove and return every binding whose expiry is at or before `now`. */
  expire(now: number): Binding[] {
    const out: Binding[] = [];
    const nowSec = Math.floor(now / 1000);
    for (const [sec, guests] of this.wheel) {
      if (sec > nowSec) continue;
      for (const g of guests) {
        const b = this.byGuest.get(g);
        if (b && b.expiresAt <= now) out.push(b);
      }
    }
    for (const b of out) this.delete(b.guest);
    return out;
  }

  private recordMove(binding: Binding, from: string, at: number, haMs: number | undefined): void {
    const history = binding.history ?? [];
    history.push(haMs === undefined ? { from, to: binding.coa, at } : { from, to: binding.coa, at, haMs });
    if (history.length > this.historyLength) history.splice(0, history.length - this.historyLength);
    binding.history = history;
  }

  private index(p: Ipv6Prefix, guest: string): void {
    let m = this.byPrefix.get(p.len);
    if (!m) {
      m = new Map();
      this.byPrefix.set(p.len, m);
      this.lengths = [...this.byPrefix.keys()].sort((a, b) => b - a);
    }
    m.set(prefixKey(p), guest);
  }

  private unindexPrefixes(b: Binding): void {
    for (const text of b.mnps) {
      const p = tryParsePrefix(text);
      if (!p) continue;
      const m = this.byPrefix.get(p.len);
      if (!m) continue;
      const k = prefixKey(p);
      if (m.get(k) === b.guest) m.delete(k);
      if (m.size === 0) {
        this.byPrefix.delete(p.len);
        this.lengths = [...this.byPrefix.keys()].sort((x, y) => y - x);
      }
    }
  }

  private schedule(b: Binding): void {
    const sec = Math.floor(b.expiresAt / 1000);
    let s = this.wheel.get(sec);
    if (!s) {
      s = new Set();
      this.wheel.set(sec, s);
    }
    s.add(b.guest);
  }

  private unschedule(b: Binding): void {
    const sec = Math.floor(b.expiresAt / 1000);
    const s = this.wheel.get(sec);
    if (!s) return;
    s.delete(b.guest);
    if (s.size === 0) this.wheel.delete(sec);
  }
}
