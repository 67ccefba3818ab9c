/**
 * GuestLink.attach waits until the bridge can transmit before the host agent registers
 * (waitForOperUp): a bridge whose new port the kernel has not processed yet drops every packet
 * sent on it, the host's Neighbor Solicitation for the guest included (bench:handover).
 */
import { describe, expect, it } from 'vitest';

import { waitForOperUp } from '../../../src/platform/linux/guest-link.js';
import { IF_OPER_UP, linkOperUp, type LinkInfo } from '../../../src/platform/linux/rtnl.js';

const IF_OPER_DOWN = 2;

function link(operstate: number | null, up = true): LinkInfo {
  return { index: 7, name: 'r6gd731becdc4', mtu: 1460, master: null, alias: null, address: null, kind: 'bridge', up, operstate, group: 0 };
}

/** A fake netlink whose bridge reports `states` in turn (the last one from then on), on a fake clock. */
function fake(states: (number | null | 'gone')[]) {
  let calls = 0;
  let t = 0;
  return {
    nl: {
      linkByName: async (name: string) => {
        expect(name).toBe('r6gd731becdc4');
        const s = states[Math.min(calls++, states.length - 1)];
        return s === 'gone' ? null : link(s ?? null);
      },
    },
    opts: { pollMs: 2, now: () => t, sleep: async (ms: number) => void (t += ms) },
    calls: () => calls,
    elapsed: () => t,
  };
}

describe('linkOperUp', () => {
  it('is the kernel\'s netif_oper_up() for an administratively up link: UP or UNKNOWN', () => {
    expect(linkOperUp(link(IF_OPER_UP))).toBe(true);
    expect(linkOperUp(link(0))).toBe(true);
    expect(linkOperUp(link(IF_OPER_DOWN))).toBe(false);
    expect(linkOperUp(link(5))).toBe(false); // dormant
    expect(linkOperUp(link(null))).toBe(false);
    expect(linkOperUp(link(IF_OPER_UP, false))).toBe(false);
  });
});

describe('waitForOperUp', () => {
  it('polls until the bridge is up, then resolves true', async () => {
    const f = fake([IF_OPER_DOWN, IF_OPER_DOWN, IF_OPER_DOWN, IF_OPER_UP]);
    expect(await waitForOperUp(f.nl, 'r6gd731becdc4', 1000, f.opts)).toBe(true);
    expect(f.calls()).toBe(4);
    expect(f.elapsed()).toBe(6);
  });

  it('returns at once when the bridge is already up', async () => {
    const f = fake([IF_OPER_UP]);
    expect(await waitForOperUp(f.nl, 'r6gd731becdc4', 1000, f.opts)).toBe(true);
    expect(f.calls()).toBe(1);
  });

  it('gives up after the timeout (the guest side may be down) and says so', async () => {
    const f = fake([IF_OPER_DOWN]);
    expect(await waitForOperUp(f.nl, 'r6gd731becdc4', 50, f.opts)).toBe(false);
    expect(f.elapsed()).toBeGreaterThanOrEqual(50);
    expect(f.elapsed()).toBeLessThan(60);
  });

  it('resolves false when the bridge is gone', async () => {
    const f = fake([IF_OPER_DOWN, 'gone']);
    expect(await waitForOperUp(f.nl, 'r6gd731becdc4', 1000, f.opts)).toBe(false);
    expect(f.calls()).toBe(2);
  });
});
