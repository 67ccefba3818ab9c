/** `roam6 mh decode|encode` as an operator runs it: the real binary, stdout, stderr and exit codes. */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const BIN = new URL('../../bin/roam6.js', import.meta.url).pathname;
function roam6(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], { input, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const VECTORS = [
  '3b03050057a01234c40001000612003020010db8010000000000000000000000',
  '3b06050033980001c40001000612004020010db8010000010000000000000000010200000612004020010db8010000020000000000000000',
  '3b0106004e6c00401234010001020000',
  '3b06050043da1234c40001000612003020010db8010000000000000000000000010300000009110100000100ca9ddfa4d07cb6cb982f36e3',
];

describe('roam6 mh', () => {
  it('decodes to JSON with flags by name, prefixes as addr/len, lifetimes in units and seconds', () => {
    const r = roam6(['mh', 'decode', VECTORS[0]!]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({
      type: 'binding-update', seq: 0x1234, flags: ['ack', 'home', 'router'], lifetime: { units: 256, seconds: 1024 },
      checksum: '0x57a0', options: [{ type: 'mobileNetworkPrefix', prefix: '2001:db8:100::/48' }],
    });
  });

  it.each(VECTORS)('encode(decode(x)) = x for %s', (hex) => {
    const d = roam6(['mh', 'decode', '-'], hex);
    expect(d.code).toBe(0);
    // The checksum depends on the pseudo-header; compare with it zeroed.
    const e = roam6(['mh', 'encode', '-'], d.out);
    expect(e.code).toBe(0);
    expect(e.out.trim()).toBe(hex.slice(0, 8) + '0000' + hex.slice(12));
  });

  it('fills the checksum from --src and --dst', () => {
    const d = roam6(['mh', 'decode', VECTORS[2]!]);
    // BA vector's checksum uses dst = HoA (RH2); pass the HoA as the destination.
    const e = roam6(['mh', 'encode', d.out, '--src', '2001:db8:1::1', '--dst', '2001:db8:1::10']);
    expect(e.out.trim()).toBe(VECTORS[2]);
  });

  it('malformed input: non-zero exit, the WireError reason on one line, no stack trace', () => {
    const r = roam6(['mh', 'decode', '3b0305000000000000']);
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/^roam6: not-multiple-of-8/);
    expect(r.err).not.toMatch(/at .*\.js/);
    const bad = roam6(['mh', 'decode', 'zz']);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/bad-input/);
    const badJson = roam6(['mh', 'encode', '{"type":"binding-update","seq":70000}']);
    expect(badJson.code).toBe(2);
    expect(badJson.err.trim()).toBe('roam6: bad-input: $.seq: expected an integer 0..65535');
  });
});
