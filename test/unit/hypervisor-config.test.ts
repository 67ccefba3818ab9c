/** `hypervisor` in agent.json: defaults, the drivers' sections, errors that name the key. */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseAgentConfig } from '../../src/config/agent-config.js';
import { parseQemuGuestFile } from '../../src/config/hypervisor-config.js';

const base = { hostId: 'host-a', coa: '2001:db8:a::2', haAddress: '2001:db8:1::2' };

describe('agent config: hypervisor', () => {
  it('defaults to the netns driver', () => {
    expect(parseAgentConfig(base).hypervisor).toEqual({ driver: 'netns', namespaces: {} });
  });

  it('deploy/examples/agent.json is valid: qemu over TCP', () => {
    const c = parseAgentConfig(JSON.parse(readFileSync(new URL('../../deploy/examples/agent.json', import.meta.url), 'utf8')));
    expect(c.hypervisor.driver).toBe('qemu');
    expect(c.hypervisor.qemu).toMatchObject({ stateDir: '/var/lib/roam6/qemu', incoming: { transport: 'tcp', address: '2001:db8:a::2', ports: [49152, 49215] }, migrateTimeoutMs: 120_000 });
  });

  it('libvirt and xen sections take their defaults', () => {
    expect(parseAgentConfig({ ...base, hypervisor: { driver: 'libvirt', libvirt: {} } }).hypervisor.libvirt).toMatchObject({ binary: 'virsh', uri: 'qemu:///system', peerTemplate: 'qemu+ssh://{host}/system' });
    expect(parseAgentConfig({ ...base, hypervisor: { driver: 'xen', xen: { peers: { 'host-b': 'b.example' } } } }).hypervisor.xen).toMatchObject({ binary: 'xl', peers: { 'host-b': 'b.example' } });
  });

  it('errors name the key', () => {
    expect(() => parseAgentConfig({ ...base, hypervisor: { driver: 'vmware' } })).toThrow(/hypervisor\.driver/);
    expect(() => parseAgentConfig({ ...base, hypervisor: { driver: 'qemu', qemu: { guests: { g1: { mac: '01:00:00:00:00:01' } } } } })).toThrow(/hypervisor\.qemu\.guests\.g1\.mac: a unicast MAC/);
    expect(() => parseAgentConfig({ ...base, hypervisor: { driver: 'qemu', qemu: { stateDir: 'relative' } } })).toThrow(/stateDir/);
  });

  it('a per-guest QEMU file carries its id', () => {
    expect(parseQemuGuestFile({ id: 'g1@x', kernel: '/boot/vmlinuz', memoryMiB: 256 }, 'g1.json')).toEqual({ id: 'g1@x', kernel: '/boot/vmlinuz', memoryMiB: 256 });
    expect(() => parseQemuGuestFile({ kernel: '/boot/vmlinuz' }, 'g1.json')).toThrow(/g1\.json/);
  });
});
