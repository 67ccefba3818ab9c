/** A bad config fails with a message that names the key and the problem. */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseHaConfig } from '../../src/config/ha-config.js';
import { ConfigError } from '../../src/config/common.js';

const example = JSON.parse(readFileSync(new URL('../../deploy/examples/ha.json', import.meta.url), 'utf8')) as Record<string, unknown>;
// The example reads keys from files that exist on a real HA; inline them for the test.
const base = {
  ...example,
  api: { listen: '127.0.0.1:8446' },
  guests: [
    { id: 'g1@tenant-a.example', mnps: ['2001:db8:100:1::/64'], sas: [{ spi: 4097, key: '00'.repeat(16) }] },
    ...(example.guests as unknown[]).slice(1),
  ],
};

function problem(patch: Record<string, unknown>): string {
  try {
    parseHaConfig({ ...base, ...patch }, 'ha.json');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('config was accepted');
}

describe('HA config', () => {
  it('accepts the shipped example (keys inlined) with defaults filled in', () => {
    const c = parseHaConfig(base);
    expect(c.addresses).toHaveLength(1);
    expect(c.dataplane.backend).toBe('kernel');
    expect(c.api.listen).toEqual({ host: '127.0.0.1', port: 8446 });
    expect(c.guests[1]!.sas[1]!.algorithm).toBe('hmac-sha256-128');
  });

  it.each([
    [{ addresses: ['2001:db8::zz'] }, 'addresses[0]: "2001:db8::zz" is not an IPv6 address'],
    [{ servedPrefixes: ['2001:db8:100::1/40'] }, 'servedPrefixes[0]: "2001:db8:100::1/40" is not a prefix'],
    [{ maxLifetimeSec: 300000 }, 'maxLifetimeSec:'],
    [{ api: { listen: '8446' } }, 'api.listen: "8446" is not host:port'],
    [{ dataplane: { backend: 'ebpf' } }, 'dataplane.backend:'],
    [{ bogus: 1 }, 'bogus'],
    [{ guests: [{ id: 'x', mnps: ['2001:db8:900::/64'], sas: [{ spi: 300, key: '00'.repeat(16) }] }] }, 'guests[0].mnps[0]: 2001:db8:900::/64 is outside servedPrefixes'],
    [{ guests: [{ id: 'x', sas: [{ spi: 12, key: '00'.repeat(16) }] }] }, 'guests[0].sas[0].spi: SPIs 0–255 are reserved'],
    [{ guests: [{ id: 'x', sas: [{ spi: 300, key: '0011' }] }] }, 'guests[0].sas[0].key: key is 2 octets; use at least 16'],
    [{ guests: [{ id: 'x', sas: [{ spi: 300, keyFile: '/nonexistent/k' }] }] }, 'guests[0].sas[0].keyFile: cannot read /nonexistent/k: ENOENT'],
    [
      { guests: [{ id: 'a', mnps: ['2001:db8:100::/48'], sas: [{ spi: 300, key: '00'.repeat(16) }] }, { id: 'b', mnps: ['2001:db8:100:5::/64'], sas: [{ spi: 300, key: '00'.repeat(16) }] }] },
      'guests[1].sas[0].spi: SPI 300 is already used by a',
    ],
    [
      { guests: [{ id: 'a', mnps: ['2001:db8:100::/48'], sas: [{ spi: 300, key: '00'.repeat(16) }] }, { id: 'b', mnps: ['2001:db8:100:5::/64'], sas: [{ spi: 301, key: '00'.repeat(16) }] }] },
      'guests[1].mnps[0]: 2001:db8:100:5::/64 overlaps 2001:db8:100::/48 of a',
    ],
  ])('%j → %s', (patch, expected) => {
    const msg = problem(patch);
    expect(msg).toContain('config error in ha.json');
    expect(msg).toContain(expected);
  });

  it('never echoes key material in an error', () => {
    const msg = problem({ guests: [{ id: 'x', sas: [{ spi: 300, key: 'deadbeefdeadbeefdeadbeefdeadbeefff', extra: 1 }] }] });
    expect(msg).not.toContain('deadbeef');
  });
});
