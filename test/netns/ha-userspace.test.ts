/** `roam6 ha` with `dataplane.backend: "userspace"`: the TUN + C forwarder behind the real daemon. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { NetnsLab, canUseNetns, waitFor } from '../helpers/netns.js';
import { JsonLinePeer } from '../helpers/peer.js';
import { parseIpv6, parsePrefix } from '../../src/wire/ipv6.js';
import { buildBindingUpdate, checkBindingAck } from '../../src/core/binding-update-builder.js';
import { apiRequest } from '../../src/cli/api-client.js';

const BIN = new URL('../../bin/roam6.js', import.meta.url).pathname;
const sa = { spi: 5000, algorithm: 'hmac-sha1-96' as const, key: new Uint8Array(16).fill(5) };

describe.skipIf(!canUseNetns)('roam6 ha with the userspace data plane', () => {
  const lab = new NetnsLab('hau');
  const dir = mkdtempSync(join(tmpdir(), 'roam6-hau-'));
  const api = `unix:${join(dir, 'ha.sock')}`;
  let ha: ChildProcess;
  let log = '';

  beforeAll(async () => {
    lab.addNs('ha');
    lab.addNs('a');
    lab.link('ha', 'ha-a', '2001:db8:1::2/64', 'a', 'a-ha', '2001:db8:1::10/64');
    writeFileSync(
      join(dir, 'ha.json'),
      JSON.stringify({
        addresses: ['2001:db8:1::2'],
        servedPrefixes: ['2001:db8:100::/40'],
        dataplane: { backend: 'userspace' },
        api: { listen: api },
        redis: { enabled: false },
        guests: [{ id: 'g1@x', mnps: ['2001:db8:100:1::/64'], sas: [{ spi: sa.spi, key: Buffer.from(sa.key).toString('hex') }] }],
      }),
    );
    ha = lab.spawn('ha', process.execPath, [BIN, 'ha', '--config', join(dir, 'ha.json')]);
    ha.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    await waitFor(async () => (await apiRequest(api, 'GET', '/api/v1/health').catch(() => null))?.status === 200, 15_000, 100).catch((e) => {
      throw new Error(`${String(e)}\n${log}`);
    });
  }, 30_000);

  afterAll(async () => {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('registers a guest, routes the served pool into the TUN, and counts per binding', async () => {
    const peer = JsonLinePeer.spawn(lab, 'a', 'raw-socket-peer.mjs', [JSON.stringify({ protocol: 135, bindAddress: '2001:db8:1::10' })]);
    expect(await peer.next((e) => e.ev === 'ready', 5000)).not.toBeNull();
    const coa = parseIpv6('2001:db8:1::10');
    const { bytes } = buildBindingUpdate({ guest: 'g1@x', sa, seq: 1, lifetimeSec: 400, coa, mnps: [parsePrefix('2001:db8:100:1::/64')] });
    peer.send({ cmd: 'send', hex: Buffer.from(bytes).toString('hex'), dst: '2001:db8:1::2' });
    const msg = await peer.next((e) => e.ev === 'message', 3000);
    const check = checkBindingAck(Buffer.from(String(msg!.hex), 'hex'), sa, coa);
    expect(check.ok && check.ack.status).toBe(0);
    expect(lab.exec('ha', 'ip', ['-6', 'route', 'show', '2001:db8:100::/40'])).toContain('dev roam6-u0');
    const health = (await apiRequest(api, 'GET', '/api/v1/health')).body as { dataplane: { backend: string; bindings: number } };
    expect(health.dataplane).toMatchObject({ backend: 'userspace', bindings: 1 });
    const b = (await apiRequest(api, 'GET', '/api/v1/bindings/g1@x')).body as { dataplane: { txPackets: number } | null };
    expect(b.dataplane).toMatchObject({ txPackets: 0 });
  });
});
