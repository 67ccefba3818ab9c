/**
 * `roam6 ha --config FILE`: the Home Agent's configuration (JSON). Documented in
 * docs/configuration.md; a working example is deploy/examples/ha.json.
 */
import { z } from 'zod';
import { formatIpv6, formatPrefix, prefixCovers, tryParsePrefix, type Ipv6Prefix } from '../wire/ipv6.js';
import { MAX_LIFETIME_SEC } from '../wire/mh/constants.js';
import type { GuestPolicy } from '../ports/guest-directory.js';
import { ConfigError, formatIssues, ipv6Address, ipv6Prefix, listenAddress, logLevel, readJsonConfig, securityAssociation } from './common.js';

/** "2001:db8::/32" or "192.0.2.0/24": a network for `api.readNetworks` (host bits must be zero). */
export interface NetworkPrefix {
  readonly family: 'ipv6' | 'ipv4';
  readonly address: string;
  readonly length: number;
}

const networkPrefix = z.string().transform((s, ctx): NetworkPrefix => {
  const p6 = tryParsePrefix(s);
  if (p6) return { family: 'ipv6', address: formatIpv6(p6.addr), length: p6.len };
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(s);
  const octets = m ? m.slice(1, 5).map(Number) : [];
  const len = m ? Number(m[5]) : NaN;
  if (m && octets.every((o) => o <= 255) && len <= 32) {
    const v = octets.reduce((a, o) => a * 256 + o, 0);
    const host = len === 32 ? 0 : v % 2 ** (32 - len);
    if (host === 0) return { family: 'ipv4', address: octets.join('.'), length: len };
  }
  ctx.addIssue({ code: 'custom', message: `${JSON.stringify(s)} is not a network (IPv6 addr/len or IPv4 a.b.c.d/len, host bits zero)` });
  return z.NEVER;
});

const guest = z
  .object({
    id: z.string().min(1).max(253).describe('Mobile Node Identifier (NAI), e.g. g1@example.net'),
    mnps: z.array(ipv6Prefix).default([]),
    mobileRouter: z.boolean().default(true),
    sas: z.array(securityAssociation).min(1, 'at least one security association').max(2, 'at most two SAs (one rollover)'),
  })
  .strict();

export const haConfigSchema = z
  .object({
    addresses: z.array(ipv6Address).min(1, 'at least one HA address'),
    servedPrefixes: z.array(ipv6Prefix).min(1, 'at least one served prefix (the MNP pool)'),
    maxLifetimeSec: z.number().int().min(4).max(MAX_LIFETIME_SEC).default(3600),
    replayProtection: z
      .object({ requireTimestamp: z.boolean().default(false), windowMs: z.number().int().min(100).max(600_000).default(7000) })
      .strict()
      .default({ requireTimestamp: false, windowMs: 7000 }),
    rateLimit: z
      .object({ perSec: z.number().positive().default(20), burst: z.number().int().min(1).default(40) })
      .strict()
      .default({ perSec: 20, burst: 40 }),
    dataplane: z
      .object({
        backend: z.enum(['kernel', 'userspace', 'none']).default('kernel'),
        /** Interface the tunnels leave by (kernel backend); optional. */
        device: z.string().optional(),
      })
      .strict()
      .default({ backend: 'kernel' }),
    api: z
      .object({
        listen: listenAddress.default({ host: '127.0.0.1', port: 8446 }),
        /** Bearer token for write operations; or tokenFile. */
        token: z.string().min(16, 'token must be at least 16 characters').optional(),
        tokenFile: z.string().optional(),
        /**
         * Networks whose hosts may use the read endpoints (and the web page) without the token,
         * besides loopback and the unix socket, e.g. ["2001:db8::/32"]. Writes always need the token.
         */
        readNetworks: z.array(networkPrefix).default([]),
      })
      .strict()
      .default({ listen: { host: '127.0.0.1', port: 8446 }, readNetworks: [] }),
    redis: z
      .object({
        /** redis://, rediss://, unix://, redis+cluster://; default REDIS_URL, else an embedded server. */
        url: z.string().optional(),
        /** Persist bindings and read enrolled guests from Redis. */
        enabled: z.boolean().default(true),
      })
      .strict()
      .default({ enabled: true }),
    guests: z.array(guest).default([]),
    log: z.object({ level: logLevel }).strict().default({ level: 'info' }),
  })
  .strict()
  .superRefine((c, ctx) => {
    const ids = new Set<string>();
    const spis = new Map<number, string>();
    const owned: { p: Ipv6Prefix; id: string; i: number; j: number }[] = [];
    c.guests.forEach((g, i) => {
      if (ids.has(g.id)) ctx.addIssue({ code: 'custom', path: ['guests', i, 'id'], message: `duplicate guest id ${g.id}` });
      ids.add(g.id);
      g.sas.forEach((sa, j) => {
        const other = spis.get(sa.spi);
        if (other !== undefined) ctx.addIssue({ code: 'custom', path: ['guests', i, 'sas', j, 'spi'], message: `SPI ${sa.spi} is already used by ${other}` });
        spis.set(sa.spi, g.id);
      });
      g.mnps.forEach((p, j) => {
        if (!c.servedPrefixes.some((s) => prefixCovers(s, p))) {
          ctx.addIssue({ code: 'custom', path: ['guests', i, 'mnps', j], message: `${formatPrefix(p)} is outside servedPrefixes` });
        }
        owned.push({ p, id: g.id, i, j });
      });
    });
    for (const [a, b] of overlaps(owned)) {
      const [first, second] = a.i < b.i || (a.i === b.i && a.j < b.j) ? [a, b] : [b, a];
      ctx.addIssue({ code: 'custom', path: ['guests', second.i, 'mnps', second.j], message: `${formatPrefix(second.p)} overlaps ${formatPrefix(first.p)} of ${first.id}` });
    }
  });

/**
 * Pairs of overlapping prefixes, in O(n log n): sorted by address then length, a prefix can
 * only lie inside the prefixes still "open" on a stack (those that cover it).
 */
function overlaps<T extends { p: Ipv6Prefix }>(items: readonly T[]): [T, T][] {
  const cmp = (x: T, y: T) => {
    for (let k = 0; k < 16; k++) if (x.p.addr[k] !== y.p.addr[k]) return x.p.addr[k]! - y.p.addr[k]!;
    return x.p.len - y.p.len;
  };
  const sorted = [...items].sort(cmp);
  const stack: T[] = [];
  const out: [T, T][] = [];
  for (const item of sorted) {
    while (stack.length && !prefixCovers(stack[stack.length - 1]!.p, item.p)) stack.pop();
    const top = stack[stack.length - 1];
    if (top) out.push([top, item]);
    stack.push(item);
  }
  return out;
}

export type HaConfig = z.output<typeof haConfigSchema>;

export function parseHaConfig(raw: unknown, file = '(inline)'): HaConfig {
  const r = haConfigSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(formatIssues(file, r.error.issues));
  return r.data;
}

export function loadHaConfig(file: string): HaConfig {
  return parseHaConfig(readJsonConfig(file), file);
}

export function guestsFromConfig(c: HaConfig): GuestPolicy[] {
  return c.guests.map((g) => ({ id: g.id, mnps: g.mnps, sas: g.sas, mobileRouter: g.mobileRouter }));
}
