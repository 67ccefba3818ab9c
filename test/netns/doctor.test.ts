/** `roam6 doctor` on this machine, as root: every kernel feature roam6 needs is probed and present. */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { canUseNetns } from '../helpers/netns.js';
import { probeKernel, runDoctor } from '../../src/doctor/doctor.js';

describe.skipIf(!canUseNetns)('roam6 doctor (root)', () => {
  it('probes seg6, seg6local, source-specific routes, rules, bridge, TAP, veth and nftables in a throwaway namespace, and leaves nothing behind', () => {
    const ns = `r6doc${process.pid}`;
    const probes = probeKernel(ns);
    for (const k of ['netns', 'seg6', 'seg6local', 'subtrees', 'rules', 'bridge', 'tun', 'veth', 'nft']) {
      expect(probes[k], k).toMatchObject({ ok: true });
    }
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(ns);
  });

  it('passes on this machine: nothing required is missing', () => {
    const r = runDoctor({ roles: ['lab'] });
    const missing = r.checks.filter((c) => c.status === 'missing');
    expect(missing, JSON.stringify(missing)).toEqual([]);
    expect(r.checks.find((c) => c.id === 'config_ipv6_subtrees')?.detail).toMatch(/probe: /);
  });
});
