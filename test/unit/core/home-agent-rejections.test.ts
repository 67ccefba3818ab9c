/**
 * What the HA tells about a refused BU: every BU of an enrolled guest answered with a BA status
 * of 128 or more gives exactly one `rejected` event (status, detail, CoA) and exactly one
 * `binding update rejected` log line (with src and seq) — the bad authenticator (146) included,
 * which is decided before the policy runs. BUs that name no enrolled guest are counted and
 * logged (rate-limited), never an event. Neither carries key material.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { parseIpv6, parsePrefix, type Ipv6Address } from '../../../src/wire/ipv6.js';
import { BaStatus, MhType, encodeMobilityHeader } from '../../../src/wire/mh/index.js';
import { HomeAgent, DEFAULT_HA_RUNTIME, type HaEvent } from '../../../src/core/home-agent.js';
import { DEFAULT_HA_POLICY } from '../../../src/core/home-agent-policy.js';
import { buildBindingUpdate, checkBindingAck } from '../../../src/core/binding-update-builder.js';
import type { Logger } from '../../../src/ports/log.js';
import type { SecurityAssociation } from '../../../src/security/mn-ha-auth.js';
import { FakeClock } from '../../../src/platform/fake/clock.js';
import { FakeHaDataplane } from '../../../src/platform/fake/dataplane.js';
import { TestGuestDirectory, testGuest } from '../../helpers/guests.js';

const HA = parseIpv6('2001:db8:1::2');
const COA_A = parseIpv6('2001:db8:a::2');
const COA_B = parseIpv6('2001:db8:b::2');
const g1 = testGuest(1);
const g2 = testGuest(2);
const implicitNone = testGuest(4, { mnps: [] });
const forgedKey = new Uint8Array(16).fill(0xee);
const forgedSa: SecurityAssociation = { ...g1.sas[0]!, key: forgedKey };

interface Line {
  level: keyof Logger;
  fields: Record<string, unknown>;
  msg: string;
}

/** A Logger that keeps every line, as the pino logger of the daemon would get it. */
function captureLogger(lines: Line[]): Logger {
  const at = (level: keyof Logger) => (fields: Record<string, unknown>, msg: string) => void lines.push({ level, fields, msg });
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

let clock: FakeClock;
let dp: FakeHaDataplane;
let ha: HomeAgent;
let events: HaEvent[];
let lines: Line[];

beforeEach(async () => {
  clock = new FakeClock();
  dp = new FakeHaDataplane();
  lines = [];
  events = [];
  ha = new HomeAgent(
    { policy: { ...DEFAULT_HA_POLICY, servedPrefixes: [parsePrefix('2001:db8:100::/40')] }, ...DEFAULT_HA_RUNTIME },
    { guests: new TestGuestDirectory([g1, g2, implicitNone]), dataplane: dp, clock, log: captureLogger(lines) },
  );
  ha.subscribe((e) => events.push(e));
  await ha.start();
});

type Spec = Parameters<typeof buildBindingUpdate>[0];
const bu = (over: Partial<Spec> = {}, guest = g1) =>
  buildBindingUpdate({ guest: guest.id, sa: guest.sas[0]!, seq: 1, lifetimeSec: 400, coa: COA_A, mnps: guest.mnps, ...over }).bytes;

/** Send a BU and return the status of the BA, verified under `sa` (null: no answer). */
async function status(bytes: Uint8Array, from: Ipv6Address = COA_A, sa: SecurityAssociation = g1.sas[0]!): Promise<number | null> {
  const reply = await ha.handle(bytes, from, HA);
  if (!reply) return null;
  const check = checkBindingAck(reply.mh, sa, from);
  if (!check.ok) throw new Error(check.reason);
  return check.ack.status;
}

const rejectedLines = () => lines.filter((l) => l.msg === 'binding update rejected');

describe('rejected BUs of an enrolled guest', () => {
  it('146 for a bad authenticator: one rejected event with status and detail, one log line, counted on the guest', async () => {
    expect(await status(bu({ seq: 10 }))).toBe(0);
    events.length = 0;
    expect(await status(bu({ seq: 11, sa: forgedSa, coa: COA_B }), COA_B)).toBe(BaStatus.AuthenticationFailed);
    expect(events).toEqual([
      { type: 'rejected', guest: g1.id, at: clock.now(), status: 146, detail: 'authenticator does not verify', coa: '2001:db8:b::2' },
    ]);
    expect(rejectedLines()).toEqual([
      {
        level: 'warn',
        msg: 'binding update rejected',
        fields: { guest: g1.id, status: 146, detail: 'authenticator does not verify', src: '2001:db8:b::2', seq: 11, spi: g1.sas[0]!.spi },
      },
    ]);
    expect(ha.cache.get(g1.id)!.counters).toEqual({ accepted: 1, rejected: 1, dropped: 0 });
    // A guest with no binding yet is told about too.
    expect(await status(bu({ seq: 1, sa: { ...g2.sas[0]!, key: forgedKey } }, g2), COA_A, g2.sas[0]!)).toBe(146);
    expect(events.at(-1)).toMatchObject({ type: 'rejected', guest: g2.id, status: 146 });
  });

  it('every rejecting path, policy and data plane alike: exactly one event and one log line with src and seq, per BU', async () => {
    expect(await status(bu({ seq: 10 }))).toBe(0);
    const cases: [string, () => Promise<number | null>, number][] = [
      ['stale sequence number', () => status(bu({ seq: 9, coa: COA_B }), COA_B), BaStatus.SequenceNumberOutOfWindow],
      ['bad authenticator', () => status(bu({ seq: 12, sa: forgedSa })), BaStatus.AuthenticationFailed],
      ["another guest's key claims this identity", () => status(bu({ seq: 13, sa: g2.sas[0]! }), COA_A, g2.sas[0]!), BaStatus.AuthenticationFailed],
      ['prefix outside the served pool', () => status(bu({ seq: 14, mnps: [parsePrefix('2001:db8:900::/64')] })), BaStatus.InvalidPrefix],
      ['R without H', () => status(bu({ seq: 15, flags: { home: false } })), BaStatus.MobileRouterOperationNotPermitted],
      ['implicit mode, no prefix', () => status(bu({ mnps: [] }, implicitNone), COA_A, implicitNone.sas[0]!), BaStatus.ForwardingSetupFailed],
      ['de-registration without a binding', () => status(bu({ seq: 1, lifetimeSec: 0 }, g2), COA_A, g2.sas[0]!), BaStatus.NotHomeAgentForThisMobileNode],
      [
        'data plane fails on a move (rolled back)',
        () => {
          dp.failNext = new Error('netlink: ENOBUFS');
          return status(bu({ seq: 16, coa: COA_B }), COA_B);
        },
        BaStatus.ForwardingSetupFailed,
      ],
      [
        'data plane fails on a de-registration',
        () => {
          dp.failNext = new Error('netlink: EBUSY');
          return status(bu({ seq: 17, lifetimeSec: 0 }));
        },
        BaStatus.InsufficientResources,
      ],
    ];
    for (const [what, send, expected] of cases) {
      const e0 = events.length;
      const l0 = rejectedLines().length;
      expect(await send(), what).toBe(expected);
      const evs = events.slice(e0);
      expect(evs, what).toHaveLength(1);
      expect(evs[0], what).toMatchObject({ type: 'rejected', status: expected, detail: expect.any(String), coa: expect.any(String) });
      const logged = rejectedLines().slice(l0);
      expect(logged, what).toHaveLength(1);
      expect(logged[0]!.fields, what).toMatchObject({ guest: evs[0]!.guest, status: expected, detail: evs[0]!.detail, src: evs[0]!.coa, seq: expect.any(Number) });
    }
    expect(events.filter((e) => e.type === 'rejected')).toHaveLength(cases.length);
    // The data-plane failures name the error, and are logged as errors.
    expect(events.at(-2)!.detail).toContain('ENOBUFS');
    expect(events.at(-1)!.detail).toContain('EBUSY');
    expect(rejectedLines().slice(-2).map((l) => l.level)).toEqual(['error', 'error']);
    // g1's binding saw each of its own rejections (g2 and the implicit guest have none).
    expect(ha.cache.get(g1.id)!.counters).toEqual({ accepted: 1, rejected: 6, dropped: 0 });
  });

  it('a forged flood: as many events and log lines as 146 answers, the rest dropped quietly', async () => {
    let answered = 0;
    for (let seq = 1; seq <= 50; seq++) if ((await status(bu({ seq, sa: forgedSa })))) answered++;
    expect(answered).toBe(DEFAULT_HA_RUNTIME.authFailLimit.burst);
    expect(events.filter((e) => e.type === 'rejected' && e.status === 146)).toHaveLength(answered);
    expect(rejectedLines()).toHaveLength(answered);
    expect(ha.counters.dropped['auth-fail-limited']).toBe(50 - answered);
  });
});

describe('BUs that name no enrolled guest', () => {
  const unknownSa: SecurityAssociation = { spi: 999_999, algorithm: 'hmac-sha1-96', key: new Uint8Array(16).fill(0x5a) };
  const noAuth = encodeMobilityHeader({
    type: MhType.BindingUpdate,
    seq: 7,
    lifetimeUnits: 1,
    flags: { ack: true, home: true, linkLocal: false, key: false, map: false, router: true, proxy: false },
    options: [],
  });

  it('are counted and logged (at most 1/s after a burst of 5, the rest summed), never an event', async () => {
    for (let seq = 1; seq <= 20; seq++) expect(await status(bu({ seq, sa: unknownSa }))).toBeNull();
    expect(await status(noAuth)).toBeNull();
    expect(events).toEqual([]);
    expect(rejectedLines()).toEqual([]);
    expect(ha.counters.dropped).toMatchObject({ 'unknown-spi': 20, 'no-auth-option': 1 });
    const dropped = () => lines.filter((l) => l.msg === 'binding update for no enrolled guest dropped');
    expect(dropped()).toHaveLength(5);
    expect(dropped()[0]).toEqual({ level: 'warn', msg: 'binding update for no enrolled guest dropped', fields: { reason: 'unknown-spi', src: '2001:db8:a::2', seq: 1, spi: 999_999 } });
    clock.advance(1000);
    expect(await status(noAuth, COA_B)).toBeNull();
    expect(dropped().at(-1)!.fields).toEqual({ reason: 'no-auth-option', src: '2001:db8:b::2', seq: 7, suppressed: 16 });
  });
});

describe('no key material in what a rejection tells', () => {
  it('neither the log lines nor the events carry a key, in any form', async () => {
    expect(await status(bu({ seq: 10 }))).toBe(0);
    await status(bu({ seq: 11, sa: forgedSa }));
    await status(bu({ seq: 12, sa: g2.sas[0]! }), COA_A, g2.sas[0]!);
    await status(bu({ seq: 9 }));
    await status(bu({ seq: 1, sa: { spi: 424_242, algorithm: 'hmac-sha1-96', key: new Uint8Array(16).fill(0x77) } }));
    expect(events.filter((e) => e.type === 'rejected')).toHaveLength(3);
    expect(rejectedLines()).toHaveLength(3);

    const keys = [g1.sas[0]!.key, g2.sas[0]!.key, forgedKey, new Uint8Array(16).fill(0x77)].map((k) => Buffer.from(k));
    const told: unknown[] = [...events, ...lines];
    // No bytes at all (a key object would serialise as bytes), and no field named like a secret.
    const walk = (v: unknown, path: string): void => {
      expect(v instanceof Uint8Array, path).toBe(false);
      if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) {
        expect(k, path).not.toMatch(/^(key|sa|sas|secret|authenticator)$/i);
        walk(x, `${path}.${k}`);
      }
    };
    told.forEach((t, i) => walk(t, `#${i}`));
    const text = JSON.stringify(told);
    for (const k of keys) {
      for (const form of [k.toString('hex'), k.toString('hex').toUpperCase(), k.toString('base64'), k.toString('base64').replace(/=+$/, '')]) {
        expect(text).not.toContain(form);
      }
    }
  });
});
