/**
 * The operator API's pieces without a network: the binding query engine (against a plain
 * sort as the reference), the access policy, the event hub's replay and slow-client rule, and
 * the 400 messages.
 */
import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BindingCache, type Binding } from '../../../src/core/binding-cache.js';
import { GuestOrder, SORT_KEYS, queryBindings, recentMoves, type BindingQuery, type HostIndex } from '../../../src/api/binding-query.js';
import { AccessPolicy } from '../../../src/api/access.js';
import { EventHub } from '../../../src/api/event-stream.js';
import { schemaErrorMessage } from '../../../src/api/server.js';
import { NO_CONTROL_CHARS } from '../../../src/api/schemas.js';
import { baStatusText, bindingView, isExpiring } from '../../../src/api/binding-view.js';
import { parsePrefix, parseIpv6 } from '../../../src/wire/ipv6.js';
import { mulberry32, randInt } from '../../helpers/prng.js';

const NOW = 1_700_000_000_000;
const COAS = ['2001:db8:a::2', '2001:db8:b::2', '2001:db8:c::2', '2001:db8:d::2'];
const hosts: HostIndex = {
  hostOf: (coa) => ({ '2001:db8:a::2': 'host-a', '2001:db8:b::2': 'host-b', '2001:db8:c::2': 'host-c' })[coa] ?? null,
  coasOf: (h) => new Set(COAS.filter((c) => hosts.hostOf(c) === h)),
};

function fill(n: number, seed = 7): BindingCache {
  const rand = mulberry32(seed);
  const cache = new BindingCache();
  for (let i = 0; i < n; i++) {
    const mnp = `2001:db8:100:${i.toString(16)}::/64`;
    const lifetimeSec = randInt(rand, 1, 10) * 40;
    const b: Binding = {
      guest: `g${randInt(rand, 0, 1_000_000)}-${i}@t`,
      mnps: [mnp],
      coa: COAS[randInt(rand, 0, 3)]!,
      haAddress: '2001:db8:1::2',
      seq: 1,
      flags: [],
      lifetimeSec,
      expiresAt: NOW + randInt(rand, 1, lifetimeSec) * 1000,
      registeredAt: NOW - 100_000,
      updatedAt: NOW - randInt(rand, 0, 100_000),
    };
    if (rand() < 0.3) b.history = [{ from: COAS[0]!, to: b.coa, at: NOW - randInt(rand, 0, 7_200_000), haMs: randInt(rand, 0, 5) }];
    cache.put(b, [parsePrefix(mnp)]);
  }
  return cache;
}

/** The reference: filter, then a full sort with the same rules (missing values last, ties by guest). */
function reference(cache: BindingCache, q: BindingQuery): string[] {
  const key = (b: Binding): string | number | undefined =>
    q.sort === 'guest' ? b.guest : q.sort === 'coa' ? b.coa : q.sort === 'host' ? (hosts.hostOf(b.coa) ?? undefined)
      : q.sort === 'lastMove' ? b.history?.at(-1)?.at : b[q.sort];
  const rows = [...cache.values()].filter((b) =>
    (q.coa === undefined || b.coa === q.coa) &&
    (q.host === undefined || hosts.hostOf(b.coa) === q.host) &&
    (q.state === undefined || isExpiring(b, NOW) === (q.state === 'expiring')) &&
    (q.movedWithinSec === undefined || (b.history?.at(-1)?.at ?? -Infinity) >= NOW - q.movedWithinSec * 1000) &&
    (q.expiringWithinSec === undefined || b.expiresAt <= NOW + q.expiringWithinSec * 1000));
  const dir = q.order === 'asc' ? 1 : -1;
  rows.sort((a, b) => {
    const x = key(a);
    const y = key(b);
    if (x === undefined || y === undefined) {
      if (x !== y) return x === undefined ? 1 : -1;
    } else if (x !== y) return (x < y ? -1 : 1) * dir;
    return q.sort === 'guest' ? 0 : a.guest < b.guest ? -1 : 1;
  });
  return rows.map((b) => b.guest);
}

describe('queryBindings', () => {
  const cache = fill(3000);
  const order = new GuestOrder(cache);

  it('pages every sort key, both ways, near the front and deep, exactly like a full sort', () => {
    for (const sort of SORT_KEYS) {
      for (const dir of ['asc', 'desc'] as const) {
        const want = reference(cache, { sort, order: dir, limit: 0, offset: 0 });
        for (const [offset, limit] of [[0, 100], [50, 25], [2900, 100], [2990, 50], [1500, 1000]] as const) {
          const q: BindingQuery = { sort, order: dir, limit, offset };
          const got = queryBindings(cache, q, NOW, hosts, order);
          expect(got.total).toBe(3000);
          expect(got.page.map((b) => b.guest), `${sort} ${dir} ${offset}+${limit}`).toEqual(want.slice(offset, offset + limit));
        }
      }
    }
  });

  it('combines filters and counts every match', () => {
    const cases: BindingQuery[] = [
      { coa: COAS[1]!, sort: 'expiresAt', order: 'asc', limit: 20, offset: 5 },
      { host: 'host-c', sort: 'lastMove', order: 'desc', limit: 50, offset: 0 },
      { state: 'expiring', sort: 'guest', order: 'asc', limit: 1000, offset: 0 },
      { movedWithinSec: 3600, host: 'host-a', sort: 'updatedAt', order: 'desc', limit: 10, offset: 3 },
      { expiringWithinSec: 60, sort: 'coa', order: 'asc', limit: 3000, offset: 0 },
    ];
    for (const q of cases) {
      const want = reference(cache, q);
      const got = queryBindings(cache, q, NOW, hosts, order);
      expect(got.total, JSON.stringify(q)).toBe(want.length);
      expect(got.page.map((b) => b.guest)).toEqual(want.slice(q.offset, q.offset + q.limit));
    }
    // A host nobody heartbeats for has no bindings.
    expect(queryBindings(cache, { host: 'host-z', sort: 'guest', order: 'asc', limit: 10, offset: 0 }, NOW, hosts).total).toBe(0);
  });

  it('answers "who owns this address?" by longest match, and finds it from the text search too', () => {
    const inner = new BindingCache();
    const mk = (guest: string, mnp: string): Binding => ({ guest, mnps: [mnp], coa: COAS[0]!, haAddress: '::', seq: 1, flags: [], lifetimeSec: 400, expiresAt: NOW + 1e6, registeredAt: NOW, updatedAt: NOW });
    inner.put(mk('wide', '2001:db8:100::/48'), [parsePrefix('2001:db8:100::/48')]);
    inner.put(mk('narrow', '2001:db8:100:5::/64'), [parsePrefix('2001:db8:100:5::/64')]);
    const q = (extra: Partial<BindingQuery>) => queryBindings(inner, { sort: 'guest', order: 'asc', limit: 10, offset: 0, ...extra }, NOW, hosts).page.map((b) => b.guest);
    expect(q({ prefix: parseIpv6('2001:db8:100:5::1') })).toEqual(['narrow']);
    expect(q({ prefix: parseIpv6('2001:db8:100:6::1') })).toEqual(['wide']);
    expect(q({ q: '2001:db8:100:5::1' })).toEqual(['narrow']);
    expect(q({ q: 'NARR' })).toEqual(['narrow']);
  });

  it('keeps the guest order across refreshes and notices new guests', () => {
    const c = fill(50, 3);
    const o = new GuestOrder(c);
    const first = queryBindings(c, { sort: 'guest', order: 'asc', limit: 5, offset: 0 }, NOW, hosts, o).page.map((b) => b.guest);
    const b: Binding = { guest: '!first@t', mnps: ['2001:db8:200::/64'], coa: COAS[0]!, haAddress: '::', seq: 1, flags: [], lifetimeSec: 400, expiresAt: NOW + 1e6, registeredAt: NOW, updatedAt: NOW };
    c.put(b, [parsePrefix('2001:db8:200::/64')]);
    const after = queryBindings(c, { sort: 'guest', order: 'asc', limit: 5, offset: 0 }, NOW, hosts, o).page.map((x) => x.guest);
    expect(after).toEqual(['!first@t', ...first.slice(0, 4)]);
  });

  it('lists recent moves newest first, by guest or host', () => {
    const all = recentMoves(cache, NOW - 3_600_000, 10_000);
    expect(all.moves.map((m) => m.at)).toEqual([...all.moves.map((m) => m.at)].sort((a, b) => b - a));
    expect(all.total).toBe([...cache.values()].filter((b) => (b.history?.at(-1)?.at ?? 0) >= NOW - 3_600_000).length);
    const one = [...cache.values()].find((b) => b.history)!;
    expect(recentMoves(cache, 0, 10, { guest: one.guest }).moves).toEqual([expect.objectContaining({ guest: one.guest, to: one.coa })]);
  });

  it('views a binding with its host, state and last handover', () => {
    const b = [...cache.values()].find((x) => x.history && x.coa === COAS[1])!;
    const v = bindingView(b, NOW, hosts.hostOf);
    expect(v).toMatchObject({ guest: b.guest, host: 'host-b', lastHandover: { from: COAS[0], fromHost: 'host-a', to: COAS[1], toHost: 'host-b' } });
    expect(baStatusText(135)).toBe('sequence number out of window');
    expect(baStatusText(0)).toBe('accepted');
    expect(baStatusText(250)).toBe('status 250');
  });
});

describe('AccessPolicy', () => {
  const p = new AccessPolicy(
    [
      { family: 'ipv6', address: '2001:db8::', length: 32 },
      { family: 'ipv4', address: '192.0.2.0', length: 24 },
    ],
    'a-token-of-sixteen-chars',
  );
  it('lets loopback, the unix socket and readNetworks read; others need the token', () => {
    for (const ok of [undefined, '::1', '127.0.0.1', '::ffff:127.0.0.1', '2001:db8:a::2', '192.0.2.9', '::ffff:192.0.2.9']) expect(p.sourceMayRead(ok), String(ok)).toBe(true);
    for (const no of ['2001:db9::1', 'fe80::1', '198.51.100.1', '::ffff:198.51.100.1']) expect(p.sourceMayRead(no), no).toBe(false);
    expect(new AccessPolicy([], undefined).sourceMayRead('2001:db8::1')).toBe(false);
    expect(p.tokenValid('Bearer a-token-of-sixteen-chars')).toBe(true);
    expect(p.tokenValid('Bearer a-token-of-sixteen-charX')).toBe(false);
    expect(p.tokenValid('a-token-of-sixteen-chars')).toBe(false);
    expect(new AccessPolicy([], undefined).tokenValid('Bearer ')).toBe(false);
  });

  it('says why a write is refused without echoing the header', () => {
    expect(p.writeDenial('Bearer a-token-of-sixteen-chars')).toBeNull();
    expect(p.writeDenial(undefined)).toEqual({ status: 403, message: expect.stringMatching(/bearer token is required/) });
    expect(p.writeDenial('Basic YTpi')).toEqual({ status: 403, message: expect.stringMatching(/must be "Bearer <api.token>"/) });
    const wrong = p.writeDenial('Bearer a-token-of-sixteen-charX');
    expect(wrong).toEqual({ status: 403, message: 'the bearer token is not valid' });
    expect(new AccessPolicy([], undefined).writeDenial('Bearer anything')).toEqual({ status: 401, message: expect.stringMatching(/no api.token configured/) });
  });
});

describe('EventHub', () => {
  const fakeReq = (lastEventId?: string) => ({ headers: lastEventId ? { 'last-event-id': lastEventId } : {} }) as unknown as IncomingMessage;
  function fakeRes(highWater = 16 * 1024) {
    const s = new PassThrough({ highWaterMark: highWater });
    let text = '';
    const res = Object.assign(s, {
      writeHead: () => res,
      socket: null,
      text: () => text,
      drain: () => {
        let c: Buffer | null;
        while ((c = s.read() as Buffer | null) !== null) text += c.toString();
        return text;
      },
    });
    return res;
  }
  const ev = (n: number) => ({ type: 'moved' as const, guest: `g${n}`, at: new Date(NOW).toISOString() });

  it('replays what a reconnecting client missed, and says "reset" when it cannot', () => {
    const hub = new EventHub({ ringSize: 4, heartbeatMs: 60_000 });
    for (let i = 1; i <= 3; i++) hub.publish(ev(i));
    const a = fakeRes();
    hub.attach(fakeReq(`${hub.boot}.1`), a as unknown as ServerResponse, {}, {});
    const text = a.drain();
    expect(text).toMatch(/^retry: 2000\nevent: hello\n/);
    expect([...text.matchAll(/^id: (\S+)$/gm)].map((m) => m[1])).toEqual([`${hub.boot}.2`, `${hub.boot}.3`]);
    for (let i = 4; i <= 9; i++) hub.publish(ev(i));
    const b = fakeRes();
    hub.attach(fakeReq(`${hub.boot}.2`), b as unknown as ServerResponse, {}, {});
    expect(b.drain()).toContain('event: reset\ndata: {"reason":"events were lost"');
    const c = fakeRes();
    hub.attach(fakeReq('other.2'), c as unknown as ServerResponse, { types: new Set(['rejected']) }, {});
    expect(c.drain()).toContain('"reason":"the HA restarted"');
    hub.close();
  });

  it('drops a client that does not read instead of buffering without bound', () => {
    const hub = new EventHub({ maxClientBytes: 64 * 1024, heartbeatMs: 60_000 });
    const slow = fakeRes(1024);
    const fast = fakeRes();
    hub.attach(fakeReq(), slow as unknown as ServerResponse, {}, {});
    hub.attach(fakeReq(), fast as unknown as ServerResponse, {}, {});
    for (let i = 0; i < 2000; i++) {
      hub.publish({ ...ev(i), detail: 'x'.repeat(100) });
      fast.drain();
    }
    expect(hub.droppedClients).toBe(1);
    expect(hub.clientCount).toBe(1);
    expect(slow.destroyed).toBe(true);
    expect((fast.text().match(/^event: moved$/gm) ?? []).length).toBe(2000);
    hub.close();
  });
});

describe('400 messages', () => {
  it('name the parameter and what is wrong with it', () => {
    expect(schemaErrorMessage([{ instancePath: '/limit', keyword: 'minimum', message: 'must be >= 1', params: {} }], 'querystring')).toBe('query parameter limit: must be >= 1');
    expect(schemaErrorMessage([{ instancePath: '', keyword: 'additionalProperties', message: 'x', params: { additionalProperty: 'lmit' } }], 'querystring')).toBe('unknown query parameter "lmit"');
    expect(schemaErrorMessage([{ instancePath: '/sort', keyword: 'enum', params: { allowedValues: ['guest', 'coa'] } }], 'querystring')).toBe('query parameter sort: must be one of guest, coa');
    expect(schemaErrorMessage([{ instancePath: '', keyword: 'required', params: { missingProperty: 'guest' } }], 'params')).toBe('path parameter guest: is required');
    expect(schemaErrorMessage([{ instancePath: '/plan/0', keyword: 'required', params: { missingProperty: 'to' } }], 'body')).toBe('body field plan.0.to: is required');
    expect(schemaErrorMessage([{ instancePath: '/plan/2', keyword: 'additionalProperties', params: { additionalProperty: 'force' } }], 'body')).toBe('unknown body field "plan.2.force"');
    expect(schemaErrorMessage([{ instancePath: '/guest', keyword: 'pattern', params: { pattern: NO_CONTROL_CHARS } }], 'params')).toBe('path parameter guest: must not contain control characters (NUL, newline, …)');
    expect(schemaErrorMessage([{ instancePath: '/guest', keyword: 'false schema', params: {} }], 'body')).toBe('body field guest: is not allowed here');
    expect(schemaErrorMessage([{ instancePath: '', keyword: 'type', params: { type: 'object' } }], 'body')).toBe('the body must be a JSON object');
  });
});
