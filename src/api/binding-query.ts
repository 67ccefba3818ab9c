/**
 * Filtering, sorting and paging the binding cache for `GET /bindings` and `GET /moves`.
 *
 * Built for 100,000+ bindings: predicates run on the cache's own entries (no view objects are
 * made for bindings that are filtered out or fall outside the page), a prefix question is one
 * longest-prefix lookup, and a page near the front (offset + limit small against the match
 * count) is picked with a bounded heap, O(n log k), instead of sorting every match.
 */
import type { Binding, BindingCache } from '../core/binding-cache.js';
import { tryParseIpv6 } from '../wire/ipv6.js';
import { isExpiring, type BindingStateName, type HostOf } from './binding-view.js';

export const SORT_KEYS = ['guest', 'coa', 'host', 'updatedAt', 'expiresAt', 'lastMove', 'registeredAt'] as const;
export type SortKey = (typeof SORT_KEYS)[number];

export interface BindingQuery {
  /** Host id: only bindings whose CoA belongs to this host. */
  readonly host?: string;
  /** Canonical CoA text. */
  readonly coa?: string;
  /** Longest match: the binding whose MNP covers this address (or prefix). */
  readonly prefix?: Uint8Array;
  /** Free text: guest id, CoA, host or MNP contains it (case-insensitive). */
  readonly q?: string;
  readonly state?: BindingStateName;
  /** Lifetime ends within this many seconds. */
  readonly expiringWithinSec?: number;
  /** The last CoA change was within this many seconds. */
  readonly movedWithinSec?: number;
  readonly sort: SortKey;
  readonly order: 'asc' | 'desc';
  readonly limit: number;
  readonly offset: number;
}

export interface HostIndex {
  readonly hostOf: HostOf;
  /** Every CoA known to belong to the host. */
  coasOf(host: string): ReadonlySet<string>;
}

export interface QueryResult {
  readonly total: number;
  readonly page: Binding[];
}

type Cmp = (a: Binding, b: Binding) => number;

const lastMoveAt = (b: Binding): number | undefined => b.history?.at(-1)?.at;

function comparator(key: SortKey, order: 'asc' | 'desc', hostOf: HostOf): Cmp {
  const dir = order === 'asc' ? 1 : -1;
  const byGuest: Cmp = (a, b) => (a.guest < b.guest ? -1 : a.guest > b.guest ? 1 : 0);
  // Missing values (no host known, never moved) sort last in both directions; ties go by guest.
  const text = (get: (b: Binding) => string | null | undefined): Cmp => (a, b) => {
    const x = get(a);
    const y = get(b);
    if (x == null || y == null) return x == null && y == null ? byGuest(a, b) : x == null ? 1 : -1;
    return x < y ? -dir : x > y ? dir : byGuest(a, b);
  };
  const num = (get: (b: Binding) => number | undefined): Cmp => (a, b) => {
    const x = get(a);
    const y = get(b);
    if (x === undefined || y === undefined) return x === undefined && y === undefined ? byGuest(a, b) : x === undefined ? 1 : -1;
    return x !== y ? (x - y) * dir : byGuest(a, b);
  };
  switch (key) {
    case 'guest':
      return (a, b) => byGuest(a, b) * dir;
    case 'coa':
      return text((b) => b.coa);
    case 'host':
      return text((b) => hostOf(b.coa));
    case 'updatedAt':
      return num((b) => b.updatedAt);
    case 'expiresAt':
      return num((b) => b.expiresAt);
    case 'registeredAt':
      return num((b) => b.registeredAt);
    case 'lastMove':
      return num(lastMoveAt);
  }
}

function predicate(q: BindingQuery, now: number, hosts: HostIndex, cache: BindingCache): (b: Binding) => boolean {
  const tests: ((b: Binding) => boolean)[] = [];
  if (q.coa !== undefined) {
    const coa = q.coa;
    tests.push((b) => b.coa === coa);
  }
  if (q.host !== undefined) {
    const coas = hosts.coasOf(q.host);
    tests.push((b) => coas.has(b.coa));
  }
  if (q.state !== undefined) {
    const want = q.state === 'expiring';
    tests.push((b) => isExpiring(b, now) === want);
  }
  if (q.expiringWithinSec !== undefined) {
    const until = now + q.expiringWithinSec * 1000;
    tests.push((b) => b.expiresAt <= until);
  }
  if (q.movedWithinSec !== undefined) {
    const since = now - q.movedWithinSec * 1000;
    tests.push((b) => (lastMoveAt(b) ?? -Infinity) >= since);
  }
  if (q.q !== undefined && q.q !== '') {
    const needle = q.q.toLowerCase();
    const re = new RegExp(q.q.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i');
    // An address also finds the guest whose MNP covers it (longest match).
    const addr = needle.includes(':') ? tryParseIpv6(needle) : null;
    const owner = addr ? cache.lookup(addr) : undefined;
    tests.push((b) => b === owner || re.test(b.guest) || b.coa.includes(needle) || b.mnps.some((m) => m.includes(needle)) || re.test(hosts.hostOf(b.coa) ?? ''));
  }
  if (tests.length === 0) return () => true;
  if (tests.length === 1) return tests[0]!;
  return (b) => tests.every((t) => t(b));
}

/**
 * The guests in id order, rebuilt only when the set of guests changes (a refresh or a move
 * replaces a binding object but not its guest id). Makes the default view — everyone, by
 * guest — cost a page, not a scan.
 */
export class GuestOrder {
  private ids: string[] | null = null;

  constructor(private readonly cache: BindingCache) {}

  /** Call when a binding is created or removed. */
  invalidate(): void {
    this.ids = null;
  }

  get(): readonly string[] {
    if (this.ids === null || this.ids.length !== this.cache.size) {
      const ids: string[] = [];
      for (const b of this.cache.values()) ids.push(b.guest);
      ids.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      this.ids = ids;
    }
    return this.ids;
  }
}

const unfiltered = (q: BindingQuery) =>
  q.host === undefined && q.coa === undefined && q.prefix === undefined && (q.q === undefined || q.q === '') && q.state === undefined &&
  q.expiringWithinSec === undefined && q.movedWithinSec === undefined;

export function queryBindings(cache: BindingCache, q: BindingQuery, now: number, hosts: HostIndex, order?: GuestOrder): QueryResult {
  const k = q.offset + q.limit;

  if (order && q.sort === 'guest' && unfiltered(q)) {
    const ids = order.get();
    const page: Binding[] = [];
    for (let r = q.offset; r < Math.min(k, ids.length); r++) {
      const b = cache.get(ids[q.order === 'asc' ? r : ids.length - 1 - r]!);
      if (b) page.push(b);
    }
    return { total: cache.size, page };
  }

  const keep = predicate(q, now, hosts, cache);
  const cmp = comparator(q.sort, q.order, hosts.hostOf);

  if (q.prefix !== undefined) {
    const b = cache.lookup(q.prefix);
    const rows = b && keep(b) ? [b] : [];
    return { total: rows.length, page: rows.slice(q.offset, k) };
  }

  // Near the front: one pass that keeps the k best in a max-heap (worst of the k on top).
  // Deep pages: collect the matches and order only the page's ranks (quickselect).
  if (k > 2000) {
    const all: Binding[] = [];
    for (const b of cache.values()) if (keep(b)) all.push(b);
    partialSort(all, 0, all.length - 1, q.offset, k, cmp);
    return { total: all.length, page: all.slice(q.offset, k) };
  }
  const heap: Binding[] = [];
  let total = 0;
  for (const b of cache.values()) {
    if (!keep(b)) continue;
    total++;
    if (heap.length < k) {
      heap.push(b);
      siftUp(heap, heap.length - 1, cmp);
    } else if (cmp(b, heap[0]!) < 0) {
      heap[0] = b;
      siftDown(heap, 0, cmp);
    }
  }
  heap.sort(cmp);
  return { total, page: heap.slice(q.offset, k) };
}

/** Order a[lo..hi] just enough that ranks [from, to) hold the right elements, sorted. */
function partialSort(a: Binding[], lo: number, hi: number, from: number, to: number, cmp: Cmp): void {
  while (lo < hi && hi >= from && lo < to) {
    if (hi - lo < 16) {
      for (let i = lo + 1; i <= hi; i++) {
        const x = a[i]!;
        let j = i - 1;
        while (j >= lo && cmp(a[j]!, x) > 0) {
          a[j + 1] = a[j]!;
          j--;
        }
        a[j + 1] = x;
      }
      return;
    }
    // Median of three as the pivot, Lomuto partition.
    const mid = (lo + hi) >> 1;
    if (cmp(a[mid]!, a[lo]!) < 0) swap(a, mid, lo);
    if (cmp(a[hi]!, a[lo]!) < 0) swap(a, hi, lo);
    if (cmp(a[mid]!, a[hi]!) < 0) swap(a, mid, hi);
    const pivot = a[hi]!;
    let p = lo;
    for (let i = lo; i < hi; i++) if (cmp(a[i]!, pivot) < 0) swap(a, i, p++);
    swap(a, p, hi);
    // Recurse into the smaller side, loop on the larger.
    if (p - lo < hi - p) {
      partialSort(a, lo, p - 1, from, to, cmp);
      lo = p + 1;
    } else {
      partialSort(a, p + 1, hi, from, to, cmp);
      hi = p - 1;
    }
  }
}

function swap(a: Binding[], i: number, j: number): void {
  const t = a[i]!;
  a[i] = a[j]!;
  a[j] = t;
}

// Max-heap by `cmp` (the element that sorts last is at index 0).
function siftUp(h: Binding[], i: number, cmp: Cmp): void {
  const x = h[i]!;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (cmp(h[p]!, x) >= 0) break;
    h[i] = h[p]!;
    i = p;
  }
  h[i] = x;
}

function siftDown(h: Binding[], i: number, cmp: Cmp): void {
  const n = h.length;
  const x = h[i]!;
  for (;;) {
    let c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && cmp(h[c + 1]!, h[c]!) > 0) c++;
    if (cmp(h[c]!, x) <= 0) break;
    h[i] = h[c]!;
    i = c;
  }
  h[i] = x;
}

export interface MoveRecord {
  readonly guest: string;
  readonly from: string;
  readonly to: string;
  readonly at: number;
  readonly haMs?: number;
}

/** CoA changes across all bindings since `since`, newest first (from the bindings' histories). */
export function recentMoves(cache: BindingCache, since: number, limit: number, filter: { guest?: string; coas?: ReadonlySet<string> } = {}): { total: number; moves: MoveRecord[] } {
  const out: MoveRecord[] = [];
  const visit = (b: Binding) => {
    const h = b.history;
    if (!h) return;
    for (let i = h.length - 1; i >= 0; i--) {
      const r = h[i]!;
      if (r.at < since) break;
      if (filter.coas && !filter.coas.has(r.from) && !filter.coas.has(r.to)) continue;
      out.push({ guest: b.guest, from: r.from, to: r.to, at: r.at, ...(r.haMs !== undefined ? { haMs: r.haMs } : {}) });
    }
  };
  if (filter.guest !== undefined) {
    const b = cache.get(filter.guest);
    if (b) visit(b);
  } else {
    for (const b of cache.values()) visit(b);
  }
  out.sort((a, b) => b.at - a.at || (a.guest < b.guest ? -1 : 1));
  return { total: out.length, moves: out.slice(0, limit) };
}
