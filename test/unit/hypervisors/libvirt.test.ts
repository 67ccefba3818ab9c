/** The libvirt driver against a fake `virsh` answering with real virsh output and errors. */
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LibvirtDriver, msField, parseDomjobinfo, parseLifecycleEvent } from '../../../src/platform/libvirt/driver.js';
import { hypervisorContract } from './contract.js';
import { FakeCli, FIXTURES } from './fake-cli.js';

const fake = new FakeCli('fake-virsh');
afterAll(() => fake.cleanup());

const driver = (extra: Partial<ConstructorParameters<typeof LibvirtDriver>[0]> = {}) =>
  new LibvirtDriver({ binary: fake.binary, uri: 'qemu:///system', peers: { 'host-b': 'qemu+ssh://host-b.example.net/system' }, commandTimeoutMs: 2000, migrateTimeoutMs: 800, ...extra });

hypervisorContract('libvirt', async (scenario) => {
  fake.scenario(scenario);
  return {
    driver: driver(),
    guest: 'g1@tenant.example',
    listed: ['g1@tenant.example', 'web-02'],
    unknown: 'g9@tenant.example',
    target: 'host-b',
    failureText: /operation failed: migration out job: unexpectedly failed/,
    unavailableText: /Failed to connect socket to '\/var\/run\/libvirt\/libvirt-sock': No such file or directory/,
    hangBoundMs: 4000,
    hungGone: () => !fake.running(),
    cleanup: () => {},
  };
});

describe('libvirt driver: the exact virsh calls', () => {
  it('migrates live, peer to peer, with the destination URI from the config, and reads the stats from the destination', async () => {
    fake.scenario('ok');
    const progress: string[] = [];
    const r = await driver({ migrateUris: { 'host-b': 'tcp://[2001:db8:b::2]' } }).migrate('g1@tenant.example', 'host-b', (p) => progress.push(p.phase));
    const calls = fake.calls();
    expect(calls).toContainEqual(['--connect', 'qemu:///system', 'event', '--domain', 'g1@tenant.example', '--event', 'lifecycle', '--loop', '--timestamp']);
    expect(calls).toContainEqual([
      '--connect', 'qemu:///system', 'migrate', '--live', '--p2p', '--persistent', '--undefinesource', '--verbose',
      '--domain', 'g1@tenant.example', '--desturi', 'qemu+ssh://host-b.example.net/system', '--migrateuri', 'tcp://[2001:db8:b::2]',
    ]);
    expect(calls.at(-1)).toEqual(['--connect', 'qemu+ssh://host-b.example.net/system', 'domjobinfo', '--completed', 'g1@tenant.example']);
    // libvirt's own numbers (domjobinfo --completed), not wall time
    expect(r).toMatchObject({ totalMs: 1375, downtimeMs: 35 });
    expect(progress).toContain('copying');
  });

  it('uses the peer template and the domain name map', async () => {
    fake.scenario('ok');
    const d = driver({ peers: {}, peerTemplate: 'qemu+tls://{host}.dc1.example/system', domains: { 'g1@tenant.example': 'tenant-g1' } });
    expect(d.destinationUri('host-c')).toBe('qemu+tls://host-c.dc1.example/system');
    await d.runsHere('g1@tenant.example');
    expect(fake.calls().at(-1)).toEqual(['--connect', 'qemu:///system', 'domstate', 'tenant-g1']);
  });

  it('a shut-off domain does not run here', async () => {
    fake.scenario('ok');
    expect(await driver().runsHere('stopped@tenant.example')).toBe(false);
  });

  it('on a timeout it kills virsh and aborts the migration job in libvirtd', async () => {
    fake.scenario('hang');
    await expect(driver().migrate('g1@tenant.example', 'host-b', () => {})).rejects.toThrow(/virsh was killed and the migration job aborted/);
    expect(fake.calls().at(-1)).toEqual(['--connect', 'qemu:///system', 'domjobabort', 'g1@tenant.example']);
  });
});

describe('libvirt driver: parsing real virsh output', () => {
  it('domjobinfo --completed', () => {
    const f = parseDomjobinfo(readFileSync(join(FIXTURES, 'virsh/domjobinfo-completed.txt'), 'utf8'));
    expect(f['Operation']).toBe('Outgoing migration');
    expect(msField(f['Time elapsed'])).toBe(1375);
    expect(msField(f['Total downtime'])).toBe(35);
    expect(msField(f['Setup time'])).toBe(11);
    expect(msField(f['Data total'])).toBeNull();
  });

  it('lifecycle events, with and without --timestamp', () => {
    const [a, b] = readFileSync(join(FIXTURES, 'virsh/events-migration.txt'), 'utf8').split('\n');
    expect(parseLifecycleEvent(a!)).toEqual({ domain: 'g1@tenant.example', event: 'Suspended', detail: 'Migrated' });
    expect(parseLifecycleEvent(b!)).toEqual({ domain: 'g1@tenant.example', event: 'Stopped', detail: 'Migrated' });
    expect(parseLifecycleEvent("event 'lifecycle' for domain 'web-02': Resumed Unpaused")).toEqual({ domain: 'web-02', event: 'Resumed', detail: 'Unpaused' });
    expect(parseLifecycleEvent("event 'reboot' for domain 'web-02'")).toBeNull();
  });
});
