/**
 * Building blocks shared by the HA and agent config schemas: addresses, prefixes, keys,
 * listen addresses, and turning zod issues into one message that names the key.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { tryParseIpv6, tryParsePrefix, type Ipv6Address, type Ipv6Prefix } from '../wire/ipv6.js';
import { AUTH_ALGORITHMS, type AuthAlgorithm, type SecurityAssociation } from '../security/mn-ha-auth.js';

export class ConfigError extends Error {
  static override readonly name = 'ConfigError';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export const ipv6Address = z.string().transform((s, ctx): Ipv6Address => {
  const a = tryParseIpv6(s);
  if (!a) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(s)} is not an IPv6 address` });
    return z.NEVER;
  }
  return a;
});

export const ipv6Prefix = z.string().transform((s, ctx): Ipv6Prefix => {
  const p = tryParsePrefix(s);
  if (!p) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(s)} is not a prefix (addr/len with the host bits zero)` });
    return z.NEVER;
  }
  return p;
});

export type ListenAddress = { readonly host: string; readonly port: number } | { readonly path: string };

/** "127.0.0.1:8446", "[::1]:8446", "localhost:8446", or "unix:/run/roam6/ha.sock". */
export const listenAddress = z.string().transform((s, ctx): ListenAddress => {
  if (s.startsWith('unix:')) {
    const path = s.slice(5);
    if (!path.startsWith('/')) {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(s)}: a unix socket needs an absolute path (unix:/run/roam6/ha.sock)` });
      return z.NEVER;
    }
    return { path };
  }
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(s)} is not host:port (use [addr]:port for IPv6) or unix:/path` });
    return z.NEVER;
  }
  return { host: (m[1] ?? m[2]) as string, port };
});

export function describeListen(l: ListenAddress): string {
  return 'path' in l ? `unix:${l.path}` : `http://${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`;
}

const algorithm = z.enum(Object.keys(AUTH_ALGORITHMS) as [AuthAlgorithm, ...AuthAlgorithm[]]);

/** A security association: key given inline as hex or read from a file (hex or raw). */
export const securityAssociation = z
  .object({
    spi: z.number().int().min(256, 'SPIs 0–255 are reserved (RFC 4285 §5)').max(0xffffffff),
    algorithm: algorithm.default('hmac-sha1-96'),
    key: z.string().regex(/^([0-9a-fA-F]{2})+$/, 'key must be hex octets').optional(),
    keyFile: z.string().optional(),
  })
  .strict()
  .transform((v, ctx): SecurityAssociation => {
    let key: Uint8Array | undefined;
    if (v.key !== undefined && v.keyFile !== undefined) ctx.addIssue({ code: 'custom', message: 'give key or keyFile, not both' });
    if (v.key !== undefined) key = Uint8Array.from(Buffer.from(v.key, 'hex'));
    if (v.keyFile !== undefined) {
      try {
        const raw = readFileSync(v.keyFile);
        const text = raw.toString('utf8').trim();
        key = /^([0-9a-fA-F]{2})+$/.test(text) ? Uint8Array.from(Buffer.from(text, 'hex')) : Uint8Array.from(raw);
      } catch (e) {
        ctx.addIssue({ code: 'custom', path: ['keyFile'], message: `cannot read ${v.keyFile}: ${(e as NodeJS.ErrnoException).code ?? String(e)}` });
        return z.NEVER;
      }
    }
    if (!key) {
      ctx.addIssue({ code: 'custom', message: 'a key (hex) or keyFile is required' });
      return z.NEVER;
    }
    if (key.length < 16) ctx.addIssue({ code: 'custom', path: ['key'], message: `key is ${key.length} octets; use at least 16` });
    return { spi: v.spi, algorithm: v.algorithm, key };
  });

export const logLevel = z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info');

/** One line naming the key and the problem, e.g. "guests[1].sas[0].spi: SPIs 0–255 are reserved". */
export function formatIssues(file: string, issues: readonly z.core.$ZodIssue[]): string {
  const lines = issues.map((i) => {
    const path = i.path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), '');
    return `${path || '(top level)'}: ${i.message}`;
  });
  return `config error in ${file}:\n  ${lines.join('\n  ')}`;
}

export function readJsonConfig(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config ${file} is not valid JSON: ${(e as Error).message}`);
  }
}
