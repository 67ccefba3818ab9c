/** The xen driver against a fake `xl` answering with real xl output and errors. */
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { XenDriver, parseXlList } from '../../../src/platform/xen/driver.js';
import { hypervisorContract } from './contract.js';
import { FakeCli, FIXTURES } from './fake-cli.js';

const fake = new FakeCli('fake-xl');
afterAll(() => fake.cleanup());

const driver = (extra: Partial<ConstructorParameters<typeof XenDriver>[0]> = {}) =>
  new XenDriver({ binary: fake.binary, peers: { 'host-b': 'host-b.example.net' }, commandTimeoutMs: 2000, migrateTimeoutMs: 800, ...extra });

hypervisorContract('xen', async (scenario) => {
  fake.scenario(scenario);
  return {
    driver: driver(),
    guest: 'g1@tenant.example',
    listed: ['g1@tenant.example', 'web-02'],
    unknown: 'g9@tenant.example',
    target: 'host-b',
    failureText: /libxl_domain_suspend failed \(rc=-3\).*Migration failed, resuming at sender/,
    unavailableText: /cannot init xl context/,
    hangBoundMs: 4000,
    hungGone: () => !fake.running(),
    cleanup: () => {},
  };
});

describe('xen driver: the exact xl calls', () => {
  it('xl migrate [-s SSH] DOMAIN HOST, the downtime from the handshake lines', async () => {
    fake.scenario('ok');
    const phases: string[] = [];
    const r = await driver({ sshCommand: 'ssh -i /etc/roam6/migrate_key', domains: { 'g1@tenant.example': 'tenant-g1' } }).migrate('g1@tenant.example', 'host-b', (p) => phases.push(p.phase));
    expect(fake.calls().at(-1)).toEqual(['migrate', '-s', 'ssh -i /etc/roam6/migrate_key', 'tenant-g1', 'host-b.example.net']);
    expect(phases).toEqual(['setup', 'copying', 'paused', 'resumed', 'completed']);
    // "Target has acknowledged transfer" → "Target reports successful startup": ~50 ms in the fake
    expect(r.downtimeMs).toBeGreaterThanOrEqual(30);
    expect(r.downtimeMs).toBeLessThan(r.totalMs);
  });

  it('the host id is the host name when no peer is configured', async () => {
    fake.scenario('ok');
    await driver({ peers: {} }).migrate('g1@tenant.example', 'host-c', () => {});
    expect(fake.calls().at(-1)).toEqual(['migrate', 'g1@tenant.example', 'host-c']);
  });

  it("ssh to the target refused: xl's words", async () => {
    fake.scenario('ssh-refused');
    await expect(driver().migrate('g1@tenant.example', 'host-b', () => {})).rejects.toThrow(/Connection refused.*truncated reading banner/);
  });

  it('runsHere asks xl domid', async () => {
    fake.scenario('ok');
    expect(await driver().runsHere('g1@tenant.example')).toBe(true);
    expect(fake.calls().at(-1)).toEqual(['domid', 'g1@tenant.example']);
  });
});

describe('xen driver: parsing real xl output', () => {
  it('xl list', () => {
    const rows = parseXlList(readFileSync(join(FIXTURES, 'xl/list.txt'), 'utf8'));
    expect(rows).toEqual([
      { name: 'Domain-0', id: 0, memMiB: 4096, vcpus: 4, state: 'r-----' },
      { name: 'g1@tenant.example', id: 12, memMiB: 512, vcpus: 1, state: '-b----' },
      { name: 'web-02', id: 13, memMiB: 1024, vcpus: 2, state: 'r-----' },
    ]);
  });
});
