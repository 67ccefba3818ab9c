/**
 * Cross-check the encoder with an independent decoder: write the codec's output to a pcap and
 * read every field back with tshark's mip6 dissector (protocol-notes §3.2). Not skipped: CI
 * installs tshark, and a missing tshark is a failure here, not a skip.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseIpv6, parsePrefix } from '../../../src/wire/ipv6.js';
import {
  MhOptionType, MhType, buFlags, baFlags, encodeMobilityHeader, mhChecksum, type MobilityMessage,
} from '../../../src/wire/mh/index.js';
import { mhPacket, pcapFile } from '../../../src/wire/pcap.js';
import { authOptionFor, mnHaAuthenticator } from '../../../src/security/mn-ha-auth.js';

const dir = mkdtempSync(join(tmpdir(), 'roam6-tshark-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const COA = parseIpv6('2001:db8:a::2');
const HA = parseIpv6('2001:db8:1::2');
const sa = { spi: 256, algorithm: 'hmac-sha1-96' as const, key: Uint8Array.from({ length: 16 }, (_, i) => i) };

function tshark(msgs: { msg: MobilityMessage; auth?: boolean; src?: Uint8Array; dst?: Uint8Array }[], fields: string[]): string[][] {
  const packets = msgs.map(({ msg, auth, src = COA, dst = HA }) =>
    mhPacket(src, dst, encodeMobilityHeader(msg, {
      checksum: { src, dst },
      ...(auth ? { authenticate: (mh: Uint8Array, c: number) => mnHaAuthenticator(sa, src, src, mh, c) } : {}),
    })),
  );
  const file = join(dir, `x${Math.random().toString(36).slice(2)}.pcap`);
  writeFileSync(file, pcapFile(packets));
  const out = execFileSync('tshark', ['-n', '-r', file, '-T', 'fields', '-E', 'separator=|', ...fields.flatMap((f) => ['-e', f])], {
    encoding: 'utf8',
  });
  return out.trimEnd().split('\n').map((l) => l.split('|'));
}

describe('tshark decodes what we encode', () => {
  it('BU: type, seq, every flag, lifetime, MNPs, MN-ID, auth SPI, MESG-ID, checksum', () => {
    const flagsets = [
      buFlags({ ack: true, home: true, router: true }),
      buFlags({ linkLocal: true, key: true, map: true, proxy: true }),
      buFlags(),
    ];
    const msgs = flagsets.map((flags, i) => ({
      auth: true,
      msg: {
        type: MhType.BindingUpdate, seq: (0xfffe + i) & 0xffff, flags, lifetimeUnits: 100 * i,
        options: [
          { type: MhOptionType.MobileNodeIdentifier, subtype: 1, identifier: new TextEncoder().encode(`guest${i}@roam6`) },
          { type: MhOptionType.MobileNetworkPrefix, prefix: parsePrefix(`2001:db8:10${i}::/64`) },
          { type: MhOptionType.MobileNetworkPrefix, prefix: parsePrefix('2001:db8:200::/48') },
          { type: MhOptionType.MobilityMessageReplayProtection, timestamp: 0x0102030405060708n },
          authOptionFor(sa),
        ],
      } satisfies MobilityMessage,
    }));
    const rows = tshark(msgs, [
      'mip6.mhtype', 'mip6.bu.seqnr', 'mip6.bu.a_flag', 'mip6.bu.h_flag', 'mip6.bu.l_flag', 'mip6.bu.k_flag', 'mip6.bu.m_flag',
      'mip6.nemo.bu.r_flag', 'mip6.bu.p_flag', 'mip6.bu.lifetime', 'mip6.nemo.mnp.mnp', 'mip6.nemo.mnp.pfl', 'mip6.mnid.subtype',
      'mip6.mnid.identifier', 'mip6.auth.subtype', 'mip6.auth.mobility_spi', 'mip6.mseg_id.timestamp', 'mip6.csum', 'mip6.hlen',
    ]);
    expect(rows).toHaveLength(3);
    rows.forEach((r, i) => {
      const m = msgs[i]!.msg;
      const bytes = encodeMobilityHeader(m, { authenticate: (mh, c) => mnHaAuthenticator(sa, COA, COA, mh, c) });
      const f = m.flags;
      const flag = (x: string | undefined) => x === '1' || x === 'True';
      expect(r[0]).toBe('5');
      expect(Number(r[1])).toBe(m.seq);
      expect(r.slice(2, 9).map(flag)).toEqual([f.ack, f.home, f.linkLocal, f.key, f.map, f.router, f.proxy]);
      expect(Number(r[9])).toBe(m.lifetimeUnits);
      expect(r[10]).toBe(`2001:db8:10${i}::,2001:db8:200::`);
      expect(r[11]).toBe('64,48');
      expect(r[12]).toBe('1');
      expect(r[13]).toBe(`guest${i}@roam6`);
      expect(r[14]).toBe('1');
      expect(Number(r[15])).toBe(256);
      expect(r[16]).not.toBe('');
      expect(Number(r[17])).toBe(mhChecksum(bytes, { src: COA, dst: HA }));
      expect(Number(r[18])).toBe(bytes.length / 8 - 1);
    });
  });

  it('BA: status codes as numbers, K/R/P flags, seq, lifetime, BRA', () => {
    const statuses = [0, 135, 140, 141, 142, 143, 144, 145, 146];
    const msgs = statuses.map((status, i) => ({
      src: HA, dst: COA,
      msg: {
        type: MhType.BindingAck, status, seq: 1000 + i, lifetimeUnits: 75,
        flags: baFlags({ router: i % 2 === 0, key: i % 3 === 0, proxy: i % 4 === 0 }),
        options: [{ type: MhOptionType.BindingRefreshAdvice, intervalUnits: 60 }],
      } satisfies MobilityMessage,
    }));
    const rows = tshark(msgs, ['mip6.mhtype', 'mip6.ba.status', 'mip6.ba.k_flag', 'mip6.nemo.ba.r_flag', 'mip6.ba.p_flag', 'mip6.ba.seqnr', 'mip6.ba.lifetime', 'mip6.bra.interval']);
    rows.forEach((r, i) => {
      const m = msgs[i]!.msg;
      const flag = (s: string | undefined) => s === '1' || s === 'True';
      expect(r[0]).toBe('6');
      expect(Number(r[1])).toBe(statuses[i]);
      expect([flag(r[2]), flag(r[3]), flag(r[4])]).toEqual([m.flags.key, m.flags.router, m.flags.proxy]);
      expect(Number(r[5])).toBe(1000 + i);
      expect(Number(r[6])).toBe(75);
      expect(Number(r[7])).toBe(60);
    });
  });

  it('BE, BRR, and PMIPv6 options (HNP, HI, ATT, Timestamp)', () => {
    const rows = tshark(
      [
        { msg: { type: MhType.BindingError, status: 2, homeAddress: parseIpv6('2001:db8:1::10'), options: [] } },
        { msg: { type: MhType.BindingRefreshRequest, options: [] } },
        {
          msg: {
            type: MhType.BindingUpdate, seq: 7, flags: buFlags({ ack: true, proxy: true }), lifetimeUnits: 10,
            options: [
              { type: MhOptionType.HomeNetworkPrefix, prefix: parsePrefix('2001:db8:300::/64') },
              { type: MhOptionType.HandoffIndicator, indicator: 3 },
              { type: MhOptionType.AccessTechnologyType, technology: 1 },
              { type: MhOptionType.Timestamp, timestamp: (1_700_000_000n << 16n) | 0x8000n },
              { type: MhOptionType.AlternateCareOfAddress, address: parseIpv6('2001:db8:b::2') },
            ],
          },
        },
      ],
      ['mip6.mhtype', 'mip6.be.status', 'mip6.be.haddr', 'mip6.options.hnp', 'mip6.nemo.mnp.mnp', 'mip6.hi', 'mip6.att', 'mip6.timestamp_tmp', 'mip6.acoa.acoa'],
    );
    expect(rows[0]!.slice(0, 3)).toEqual(['7', '2', '2001:db8:1::10']);
    expect(rows[1]![0]).toBe('0');
    const pbu = rows[2]!;
    expect(pbu[0]).toBe('5');
    expect(pbu[4]).toBe('2001:db8:300::');
    expect(pbu[5]).toBe('3');
    expect(pbu[6]).toBe('1');
    expect(pbu[7]).toContain('2023');
    expect(pbu[8]).toBe('2001:db8:b::2');
  });
});
