/**
 * The baseline for DESIGN §4's "mobility-added gap": the same netns "hypervisor" move, inside
 * one L2 segment, with no roam6 at all.
 *
 *                        cn 2001:db8:5f::2
 *                          |
 *   sw: bridge br0 = the router (2001:db8:5e::1/64, forwarding; one MAC seen from both hosts)
 *          |                     |
 *   host-a: bridge br0      host-b: bridge br0
 *          |
 *        guest eth0 2001:db8:5e::10/64 (static), default via 2001:db8:5e::1
 *
 * The guest's port (host end of its veth, `blg0`) moves from host-a's namespace into host-b's
 * and is attached to host-b's bridge — the netns driver's move plus the guest link's attach,
 * the same rtnetlink calls (bench/netns-helper.ts). The bridges never learn (ageing time 0,
 * i.e. they flood like hubs): the switch needs no self-announcement after the move, so this is
 * the best an in-segment move can do, and the baseline gap is the hypervisor pause alone.
 * Multicast snooping is off on every bridge, as on roam6's guest bridges.
 */
import { ipq, inNs } from './lab-bench.js';

export const ONE_SEGMENT = {
  router: '2001:db8:5e::1',
  guest: '2001:db8:5e::10',
  cn: '2001:db8:5f::2',
  cnGateway: '2001:db8:5f::1',
  guestPort: 'blg0',
  bridge: 'br0',
} as const;

export type SegHost = 'host-a' | 'host-b';

export interface OneSegment {
  readonly prefix: string;
  readonly ns: { sw: string; 'host-a': string; 'host-b': string; cn: string; guest: string };
}

export function oneSegmentDown(tag: string): number {
  const prefix = `r6bl-${tag}-`;
  let n = 0;
  for (const line of ipq('netns', 'list').split('\n')) {
    const name = line.split(' ')[0];
    if (!name?.startsWith(prefix)) continue;
    try {
      for (const pid of ipq('netns', 'pids', name).split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    } catch {
      /* gone */
    }
    try {
      ipq('netns', 'del', name);
      n++;
    } catch {
      /* gone */
    }
  }
  return n;
}

export function oneSegmentUp(tag: string): OneSegment {
  oneSegmentDown(tag);
  const prefix = `r6bl-${tag}-`;
  const ns = { sw: `${prefix}sw`, 'host-a': `${prefix}host-a`, 'host-b': `${prefix}host-b`, cn: `${prefix}cn`, guest: `${prefix}g1` };
  try {
    for (const n of Object.values(ns)) {
      ipq('netns', 'add', n);
      inNs(n, 'ip', 'link', 'set', 'lo', 'up');
      inNs(n, 'sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0');
    }
    const bridge = (n: string) => {
      inNs(n, 'ip', 'link', 'add', 'br0', 'type', 'bridge', 'ageing_time', '0', 'mcast_snooping', '0', 'stp_state', '0');
      inNs(n, 'ip', 'link', 'set', 'br0', 'up');
    };
    bridge(ns.sw);
    inNs(ns.sw, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1');
    inNs(ns.sw, 'ip', '-6', 'addr', 'add', `${ONE_SEGMENT.router}/64`, 'dev', 'br0', 'nodad');
    for (const h of ['host-a', 'host-b'] as const) {
      bridge(ns[h]);
      // A pure L2 host: no addresses of its own on the bridge.
      inNs(ns[h], 'sysctl', '-qw', 'net.ipv6.conf.br0.disable_ipv6=1');
      const sw = `sw-${h.slice(-1)}`;
      ipq('link', 'add', sw, 'netns', ns.sw, 'type', 'veth', 'peer', 'name', 'uplink', 'netns', ns[h]);
      for (const [n, i] of [[ns.sw, sw], [ns[h], 'uplink']] as const) {
        inNs(n, 'sysctl', '-qw', `net.ipv6.conf.${i}.disable_ipv6=1`);
        inNs(n, 'ip', 'link', 'set', i, 'master', 'br0');
        inNs(n, 'ip', 'link', 'set', i, 'up');
      }
    }
    ipq('link', 'add', 'sw-cn', 'netns', ns.sw, 'type', 'veth', 'peer', 'name', 'cn-sw', 'netns', ns.cn);
    inNs(ns.sw, 'ip', 'link', 'set', 'sw-cn', 'up');
    inNs(ns.sw, 'ip', '-6', 'addr', 'add', `${ONE_SEGMENT.cnGateway}/64`, 'dev', 'sw-cn', 'nodad');
    inNs(ns.cn, 'ip', 'link', 'set', 'cn-sw', 'up');
    inNs(ns.cn, 'ip', '-6', 'addr', 'add', `${ONE_SEGMENT.cn}/64`, 'dev', 'cn-sw', 'nodad');
    inNs(ns.cn, 'ip', '-6', 'route', 'add', 'default', 'via', ONE_SEGMENT.cnGateway);

    // The guest: static address in the segment's prefix, as unmodified as the lab's guests.
    ipq('link', 'add', 'eth0', 'netns', ns.guest, 'type', 'veth', 'peer', 'name', ONE_SEGMENT.guestPort, 'netns', ns['host-a']);
    inNs(ns.guest, 'sysctl', '-qw', 'net.ipv6.conf.eth0.accept_dad=0');
    inNs(ns.guest, 'ip', 'link', 'set', 'eth0', 'up');
    inNs(ns.guest, 'ip', '-6', 'addr', 'add', `${ONE_SEGMENT.guest}/64`, 'dev', 'eth0', 'nodad');
    inNs(ns.guest, 'ip', '-6', 'route', 'add', 'default', 'via', ONE_SEGMENT.router);
    inNs(ns['host-a'], 'sysctl', '-qw', `net.ipv6.conf.${ONE_SEGMENT.guestPort}.disable_ipv6=1`);
    inNs(ns['host-a'], 'ip', 'link', 'set', ONE_SEGMENT.guestPort, 'master', 'br0');
    inNs(ns['host-a'], 'ip', 'link', 'set', ONE_SEGMENT.guestPort, 'up');
    // The router's neighbour entry survives the move, as in a real live migration (the VM's NIC
    // never loses carrier). Moving a veth end takes the guest's carrier down, and Linux then
    // flushes its neighbour cache; the entry for the router would go INCOMPLETE during the pause
    // and wait for the 1 s NS retransmission after it (roam6's guest is spared that by the
    // destination router's unsolicited NA + RA). A permanent entry removes this artefact of the
    // emulation from the baseline, so the baseline is the pause alone.
    const routerMac = /link\/ether ([0-9a-f:]{17})/.exec(inNs(ns.sw, 'ip', 'link', 'show', 'br0'))?.[1];
    if (!routerMac) throw new Error('no MAC on the router bridge');
    inNs(ns.guest, 'ip', '-6', 'neigh', 'replace', ONE_SEGMENT.router, 'lladdr', routerMac, 'dev', 'eth0', 'nud', 'permanent');
    // Wait until the segment forwards (the first packets after building it can be lost), which
    // also resolves the other neighbour entries before the streams start.
    let reached = false;
    for (let i = 0; i < 20 && !reached; i++) {
      try {
        inNs(ns.guest, 'ping', '-6', '-c', '1', '-W', '1', ONE_SEGMENT.cn);
        reached = true;
      } catch {
        /* not yet */
      }
    }
    if (!reached) throw new Error('the one-segment baseline does not forward: the guest cannot reach its CN');
  } catch (e) {
    oneSegmentDown(tag);
    throw e;
  }
  return { prefix, ns };
}
