/**
 * The guest link in namespaces: an unmodified guest (kernel defaults: accept_ra 1, forwarding 0,
 * autoconf 1, DAD on) configures itself from our Router Advertisements, then moves to another
 * host without noticing.
 *
 *   hostA: bridge r6g… (GuestLink) + RaSender ──veth a-g/eth0── guest
 *   hostB: bridge r6g… (GuestLink), same guest id        (a-g moves here: `ip link set a-g netns hostB`)
 *
 * Each host runs test/fixtures/guest-link-driver.mjs (the compiled modules from dist/) inside
 * its namespace, driven by JSON lines.
 */
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { canUseNetns, ensureDistBuilt, JsonLineChild, NetnsLab, sh, waitFor } from '../helpers/netns.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DRIVER = fileURLToPath(new URL('../fixtures/guest-link-driver.mjs', import.meta.url));

const GUEST_ID = 'g1@example.net';
const MNP = '2001:db8:100::/64';
const GW = '2001:db8:100::1';
/** Derived from GUEST_ID (pinned in test/unit/core/guest-link-identity.test.ts). */
const BRIDGE = 'r6gd731becdc4';
const GW_MAC = '02:d7:31:be:cd:c4';
const GW_LL = 'fe80::d7:31ff:febe:cdc4';
/** Any guest bridge name (the namespace names also start with r6g…, so match the whole pattern). */
const GUEST_BRIDGE = /\br6g[0-9a-f]{10}\b/;

interface Reply {
  id?: number;
  ok?: boolean;
  ready?: boolean;
  result?: unknown;
  error?: { name: string; message: string; code?: string };
}

describe.skipIf(!canUseNetns)('guest link (bridge + Router Advertisements) in namespaces', () => {
  const lab = new NetnsLab('glk');
  const drivers: JsonLineChild<Reply>[] = [];
  let nextId = 1;
  let hostA: JsonLineChild<Reply>;
  let hostB: JsonLineChild<Reply>;

  async function startDriver(role: string): Promise<JsonLineChild<Reply>> {
    const child = new JsonLineChild<Reply>(lab.spawn(role, process.execPath, [DRIVER]));
    drivers.push(child);
    await child.waitForEvent((e) => e.ready === true, 10_000);
    return child;
  }

  async function call(d: JsonLineChild<Reply>, op: string, args: Record<string, unknown> = {}): Promise<unknown> {
    const id = nextId++;
    d.send({ id, op, ...args });
    const reply = await d.waitForEvent((e) => e.id === id, 15_000);
    if (!reply.ok) throw new Error(`${op} failed: ${JSON.stringify(reply.error)}`);
    return reply.result;
  }

  const guest = (cmd: string, ...args: string[]): string => lab.exec('guest', cmd, args);
  const links = (role: string): string => lab.exec(role, 'ip', ['-o', 'link', 'show']);
  /** Addresses and default route of the guest, without the lifetimes that count down. */
  const guestConfig = (): string =>
    [guest('ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0'), guest('ip', '-6', 'route', 'show', 'default')].join('\n')
      .replace(/(valid_lft|preferred_lft|expires) \S+/g, '$1 _');

  /** Ping from the guest; returns how many replies came back. */
  function guestPing(to: string, count: number, extra: string[] = []): number {
    try {
      const out = guest('ping', '-6', '-n', '-c', String(count), '-i', '0.1', '-W', '2', ...extra, to);
      return Number(/(\d+) received/.exec(out)?.[1] ?? 0);
    } catch (e) {
      return Number(/(\d+) received/.exec(String((e as { stdout?: string }).stdout))?.[1] ?? 0);
    }
  }

  /** Ping every 20 ms for up to 3 s; ms until the first reply (by sequence number), or Infinity. */
  function firstReplyAfterMs(to: string): number {
    let out: string;
    try {
      out = guest('ping', '-6', '-n', '-i', '0.02', '-c', '1', '-w', '3', '-W', '3', to);
    } catch (e) {
      out = String((e as { stdout?: string }).stdout ?? '');
    }
    const seq = /icmp_seq=(\d+)/.exec(out)?.[1];
    return seq === undefined ? Number.POSITIVE_INFINITY : (Number(seq) - 1) * 20;
  }

  beforeAll(async () => {
    ensureDistBuilt(ROOT, 'dist/src/platform/linux/guest-link.js');
    for (const role of ['hostA', 'hostB', 'guest']) lab.addNs(role);
    // An unmodified guest: undo the lab's accept_dad=0 so it runs DAD like any OS would.
    lab.sysctl('guest', 'net.ipv6.conf.all.accept_dad', '1');
    lab.sysctl('guest', 'net.ipv6.conf.default.accept_dad', '1');
    sh('ip', ['link', 'add', 'a-g', 'netns', lab.ns('hostA'), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', lab.ns('guest')]);
    hostA = await startDriver('hostA');
    hostB = await startDriver('hostB');
  });

  afterAll(async () => {
    for (const d of drivers) d.child.kill('SIGKILL');
    await lab.destroy();
  });

  it('builds the bridge with the derived identity', async () => {
    const built = await call(hostA, 'ensure', { guest: GUEST_ID, prefixes: [MNP] }) as { ifname: string; gateways: string[] };
    expect(built).toEqual({ ifname: BRIDGE, gateways: [GW] });
    const link = lab.exec('hostA', 'ip', ['-d', 'link', 'show', BRIDGE]);
    expect(link).toContain(`link/ether ${GW_MAC}`);
    expect(link).toMatch(/mtu 1460/);
    expect(link).toContain('mcast_snooping 0');
    expect(link).toContain('addrgenmode none');
    expect(link).toContain(`alias roam6 guest ${GUEST_ID}`);
    const addrs = lab.exec('hostA', 'ip', ['-6', 'addr', 'show', 'dev', BRIDGE]);
    expect(addrs).toMatch(new RegExp(`inet6 ${GW}/64 scope global nodad`));
    expect(addrs).toMatch(new RegExp(`inet6 ${GW_LL}/64 scope link nodad`));
    expect(addrs.match(/inet6 /g)).toHaveLength(2); // no kernel-made EUI-64 address
    expect(lab.exec('hostA', 'sysctl', ['-n', 'net.ipv6.conf.all.forwarding']).trim()).toBe('1');
    expect(lab.exec('hostA', 'sysctl', ['-n', `net.ipv6.conf.${BRIDGE}.accept_ra`]).trim()).toBe('0');
  });

  it('an unmodified guest configures itself by SLAAC: address in the MNP, default route via the derived fe80::, MTU 1460', async () => {
    // The guest's eth0 is still down, so the bridge usually gets no carrier and attach() waits as
    // long as it is told to, then says so (the agent registers anyway). Whether a veth whose peer
    // is down has carrier varies (after other namespace tests on this kernel it sometimes does):
    // either way attach() must tell the truth, and wait only when the bridge is not up.
    const ta = Date.now();
    const r = (await call(hostA, 'attach', { guest: GUEST_ID, ifname: 'a-g', waitUpMs: 300 })) as { up: boolean; operstate: string };
    expect(r.up).toBe(r.operstate === 'up');
    if (!r.up) expect(Date.now() - ta).toBeGreaterThanOrEqual(300);
    expect(await call(hostA, 'ports', { guest: GUEST_ID })).toEqual(['a-g']);
    expect(lab.exec('hostA', 'sysctl', ['-n', 'net.ipv6.conf.a-g.disable_ipv6']).trim()).toBe('1');
    expect(lab.exec('hostA', 'ip', ['link', 'show', 'a-g'])).toMatch(/mtu 1460/);
    await call(hostA, 'raStart', { guest: GUEST_ID, prefixes: [MNP], opts: { dns: { servers: ['2001:db8::53'], lifetimeSec: 600 } } });
    const t0 = Date.now();
    guest('ip', 'link', 'set', 'eth0', 'up'); // the guest's kernel sends a Router Solicitation
    await waitFor(() => /inet6 2001:db8:100:\S+\/64 scope global dynamic mngtmpaddr\s/.test(guest('ip', '-6', 'addr', 'show', 'dev', 'eth0'))
      && !/tentative/.test(guest('ip', '-6', 'addr', 'show', 'dev', 'eth0', 'scope', 'global')), 15_000, 50);
    console.log(`[guest-link] SLAAC address usable ${Date.now() - t0} ms after the guest's link came up (DAD included)`);
    expect(guest('ip', '-6', 'route', 'show', 'default')).toMatch(new RegExp(`default via ${GW_LL} dev eth0 proto ra .*mtu 1460`));
    expect(guest('sysctl', '-n', 'net.ipv6.conf.eth0.mtu').trim()).toBe('1460');
    const stats = await call(hostA, 'raStats', { guest: GUEST_ID }) as { solicitations: number; rasSent: number; dropped: number };
    expect(stats.rasSent).toBeGreaterThan(0);
    expect(stats.solicitations).toBeGreaterThan(0); // the guest's RS reached us, with hop limit 255
    expect(stats.dropped).toBe(0);
    expect(guestPing(GW, 2)).toBe(2);
    expect(guestPing(`${GW_LL}%eth0`, 2)).toBe(2);
    expect(guest('ip', '-6', 'neigh', 'show', 'dev', 'eth0')).toMatch(new RegExp(`${GW_LL} lladdr ${GW_MAC} router`));
  });

  it('the kernel answers Neighbor Solicitations for both gateway addresses with R=1 and the derived MAC', async () => {
    const tcpdump = lab.spawn('guest', 'tcpdump', ['-l', '-v', '-nni', 'eth0', 'icmp6']);
    let out = '';
    let err = '';
    tcpdump.stdout?.setEncoding('utf8').on('data', (c: string) => { out += c; });
    tcpdump.stderr?.setEncoding('utf8').on('data', (c: string) => { err += c; });
    await waitFor(() => err.includes('listening on'), 5000);
    for (const target of [GW, GW_LL]) {
      expect(guest('ndisc6', '-1', '-r', '2', target, 'eth0')).toContain(`Target link-layer address: ${GW_MAC.toUpperCase()}`);
    }
    // tcpdump -v: "... neighbor advertisement, length 32, tgt is <target>, Flags [router, solicited, override]
    //   destination link-address option (2), length 8 (1): <mac>"
    for (const target of [GW, GW_LL]) {
      const na = new RegExp(`neighbor advertisement, length 32, tgt is ${target}, Flags \\[router, solicited[^\\]]*\\]\\s+destination link-address option \\(2\\), length 8 \\(1\\): ${GW_MAC}`);
      await waitFor(() => na.test(out), 3000);
    }
    tcpdump.kill('SIGKILL');
  });

  it('a bridge MTU set by us stays 1460 whatever the ports say', () => {
    lab.exec('hostA', 'ip', ['link', 'set', 'a-g', 'mtu', '1500']);
    expect(lab.exec('hostA', 'ip', ['link', 'show', BRIDGE])).toMatch(/mtu 1460/);
    lab.exec('hostA', 'ip', ['link', 'set', 'a-g', 'mtu', '1460']);
  });

  it('the guest moves to hostB: same neighbor entry, address and route; pings work with no new RA', async () => {
    // Make before break: hostB prepares the same link first. No RaSender on hostB yet.
    await call(hostB, 'ensure', { guest: GUEST_ID, prefixes: [MNP] });
    expect(guestPing(GW, 1)).toBe(1);
    const before = guestConfig();
    const neighBefore = guest('ip', '-6', 'neigh', 'show', GW_LL, 'dev', 'eth0');
    expect(neighBefore).toContain(`lladdr ${GW_MAC}`);

    lab.exec('hostA', 'ip', ['link', 'set', 'a-g', 'netns', lab.ns('hostB')]);
    // attach() returns once the bridge can transmit (the kernel's linkwatch has run for the
    // moved port and the bridge): the host agent registers right after it.
    expect(await call(hostB, 'attach', { guest: GUEST_ID, ifname: 'a-g', waitUpMs: 1000 })).toEqual({ up: true, operstate: 'up' });
    // Both gateway addresses answer at once (after the kernel's carrier delay on the moved port, if any).
    const firstReplyMs = firstReplyAfterMs(`${GW_LL}%eth0`);
    console.log(`[guest-link] first reply from the gateway on hostB ${firstReplyMs} ms after attach (pinging every 20 ms)`);
    expect(firstReplyMs).toBeLessThan(2000);
    expect(guestPing(GW, 3)).toBe(3);

    expect(guestConfig()).toBe(before);
    expect(guest('ip', '-6', 'neigh', 'show', GW_LL, 'dev', 'eth0')).toContain(`lladdr ${GW_MAC}`);
    expect(guest('ip', '-6', 'neigh', 'show', GW, 'dev', 'eth0')).not.toMatch(/lladdr (?!02:d7:31:be:cd:c4)/);
    expect(await call(hostB, 'ports', { guest: GUEST_ID })).toEqual(['a-g']);
  });

  it('hostB announces: RA and unsolicited NAs reach the guest', async () => {
    await call(hostB, 'raStart', { guest: GUEST_ID, prefixes: [MNP] });
    const stats = await call(hostB, 'announce', { guest: GUEST_ID }) as { rasSent: number; nasSent: number };
    expect(stats.rasSent).toBeGreaterThan(0);
    await waitFor(async () => ((await call(hostB, 'raStats', { guest: GUEST_ID })) as { nasSent: number }).nasSent >= 4, 3000);
    expect(guestPing(GW, 2)).toBe(2);
  });

  it('a restarted agent adopts the bridge without disturbing the guest', async () => {
    const fresh = await startDriver('hostB');
    await call(fresh, 'ensure', { guest: GUEST_ID, prefixes: [MNP] });
    expect(await call(fresh, 'ports', { guest: GUEST_ID })).toEqual(['a-g']);
    expect(guestPing(GW, 3)).toBe(3);
    await call(fresh, 'exit');
  });

  it('hostA: destroy() removes the bridge, is idempotent and leaves nothing behind', async () => {
    expect(await call(hostA, 'ports', { guest: GUEST_ID })).toEqual([]);
    expect(await call(hostA, 'destroy', { guest: GUEST_ID })).toBe(true);
    expect(await call(hostA, 'destroy', { guest: GUEST_ID })).toBe(false);
    expect(links('hostA')).not.toMatch(GUEST_BRIDGE);
    expect(lab.exec('hostA', 'ip', ['-6', 'route', 'show', 'table', 'all'])).not.toMatch(/2001:db8:100::/);
  });

  it("a crashed agent's bridges are found and removed; others are left alone", async () => {
    const crashed = await startDriver('hostA');
    await call(crashed, 'ensure', { guest: 'g-crashed', prefixes: ['2001:db8:200::/64'] });
    await call(crashed, 'ensure', { guest: 'g-keep', prefixes: ['2001:db8:300::/64'] });
    crashed.child.kill('SIGKILL');
    // A crash between creating a bridge and writing its alias, and two interfaces that are not ours.
    lab.exec('hostA', 'ip', ['link', 'add', 'r6g0123456789', 'type', 'bridge']);
    lab.exec('hostA', 'ip', ['link', 'add', 'r6gabcdefabcd', 'type', 'bridge']);
    lab.exec('hostA', 'ip', ['link', 'set', 'r6gabcdefabcd', 'alias', 'the admin’s bridge']);
    lab.exec('hostA', 'ip', ['link', 'add', 'br-admin', 'type', 'bridge']);

    const agent = await startDriver('hostA');
    const found = (await call(agent, 'list')) as { ifname: string; guest: string | null }[];
    expect(new Set(found.map((r) => r.guest))).toEqual(new Set(['g-crashed', 'g-keep', null]));
    const removed = (await call(agent, 'removeLeftovers', { keep: ['g-keep'] })) as string[];
    expect(removed).toHaveLength(2);
    expect(removed).toContain('r6g0123456789');
    const left = links('hostA');
    expect(left).toContain('r6gabcdefabcd');
    expect(left).toContain('br-admin');
    expect((await call(agent, 'list') as { guest: string }[]).map((r) => r.guest)).toEqual(['g-keep']);
    await call(agent, 'removeLeftovers', { keep: [] });
    lab.exec('hostA', 'ip', ['link', 'del', 'r6gabcdefabcd']);
    lab.exec('hostA', 'ip', ['link', 'del', 'br-admin']);
    expect(links('hostA')).not.toMatch(/r6g[0-9a-f]{10}|br-admin/);
  });

  it('refuses to adopt or delete an interface with a guest bridge name that is not ours', async () => {
    lab.exec('hostA', 'ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
    lab.exec('hostA', 'ip', ['link', 'set', BRIDGE, 'alias', 'someone else']);
    await expect(call(hostA, 'ensure', { guest: GUEST_ID, prefixes: [MNP] })).rejects.toThrow(/not roam6's bridge/);
    await expect(call(hostA, 'destroy', { guest: GUEST_ID })).rejects.toThrow(/refusing to delete/);
    lab.exec('hostA', 'ip', ['link', 'del', BRIDGE]);
  });

  it("LinuxGuestLinks (the host agent's port): ensure, attach, SLAAC, announce, remove", async () => {
    lab.addNs('guest2');
    sh('ip', ['link', 'add', 'p-g', 'netns', lab.ns('hostA'), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', lab.ns('guest2')]);
    const ifname = await call(hostA, 'portEnsure', { guest: 'g2@example.net', prefixes: ['2001:db8:200::/64'], iface: 'p-g' }) as string;
    expect(ifname).toMatch(GUEST_BRIDGE);
    expect(await call(hostA, 'portAttach', { guest: 'g2@example.net' })).toBe(true);
    expect(await call(hostA, 'portAttach', { guest: 'nobody' })).toBe(false);
    // The guest runs here now (activate): attach waits until the bridge carries packets. The
    // guest's side comes up 300 ms later; until then the bridge has no carrier and would drop
    // the host's Neighbor Solicitations (retried only after 1 s).
    let resolvedAt = 0;
    const attached = call(hostA, 'portAttach', { guest: 'g2@example.net', waitUpMs: 3000 }).then((v) => ((resolvedAt = Date.now()), v));
    await new Promise((r) => setTimeout(r, 300));
    expect(resolvedAt).toBe(0); // still waiting
    expect(lab.exec('hostA', 'cat', [`/sys/class/net/${ifname}/operstate`]).trim()).toBe('down');
    const upAt = Date.now();
    lab.exec('guest2', 'ip', ['link', 'set', 'eth0', 'up']);
    expect(await attached).toBe(true);
    expect(resolvedAt).toBeGreaterThanOrEqual(upAt);
    expect(lab.exec('hostA', 'cat', [`/sys/class/net/${ifname}/operstate`]).trim()).toBe('up');
    await waitFor(() => /inet6 2001:db8:200:\S+\/64 scope global dynamic/.test(lab.exec('guest2', 'ip', ['-6', 'addr', 'show', 'dev', 'eth0'])), 15_000, 50);
    await call(hostA, 'portAnnounce', { guest: 'g2@example.net' });
    expect(lab.exec('guest2', 'ping', ['-6', '-n', '-c', '1', '-W', '2', '2001:db8:200::1'])).toMatch(/1 received/);
    await call(hostA, 'portRemove', { guest: 'g2@example.net' });
    await call(hostA, 'portRemove', { guest: 'g2@example.net' });
    expect(links('hostA')).not.toContain(ifname);
  });

  const groupOf = (role: string, ifname: string): string => /\bgroup (\S+)/.exec(lab.exec(role, 'ip', ['-o', 'link', 'show', ifname]))?.[1] ?? '?';
  const bridgeOf = async (d: JsonLineChild<Reply>, guest: string): Promise<string> => ((await call(d, 'identity', { guest })) as { ifname: string }).ifname;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('deferred removal: remove() only marks the bridge; ensure() takes a marked bridge back; the reaper deletes it once idle', async () => {
    const d = await startDriver('hostA');
    await call(d, 'deferInit', { idleMs: 300 });
    const G = 'g-defer@example.net';
    const br = await bridgeOf(d, G);
    await call(d, 'deferEnsure', { guest: G, prefixes: ['2001:db8:400::/64'] });
    expect(groupOf('hostA', br)).toBe('default');
    await call(d, 'deferRemove', { guest: G });
    expect(groupOf('hostA', br)).toBe('21046'); // marked (GUEST_LINK_REMOVAL_GROUP), still there
    expect(await call(d, 'deferRemovals')).toEqual({ pending: 1, deleted: 0 });

    // The guest comes back before the reaper ran: its bridge is taken back, whole.
    await call(d, 'deferEnsure', { guest: G, prefixes: ['2001:db8:400::/64'] });
    expect(groupOf('hostA', br)).toBe('default');
    expect(lab.exec('hostA', 'ip', ['-6', 'addr', 'show', 'dev', br])).toMatch(/inet6 2001:db8:400::1\/64 scope global/);
    await sleep(700);
    expect(links('hostA')).toContain(br);
    expect(await call(d, 'deferRemovals')).toEqual({ pending: 0, deleted: 0 });

    // Released again: deleted once nothing happened for idleMs.
    const t0 = Date.now();
    await call(d, 'deferRemove', { guest: G });
    await waitFor(() => !links('hostA').includes(br), 5000, 20);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(await call(d, 'deferRemovals')).toEqual({ pending: 0, deleted: 1 });
    await call(d, 'exit');
  });

  it('deferred removal waits while guest links keep changing, but not past maxPending', async () => {
    const d = await startDriver('hostA');
    await call(d, 'deferInit', { idleMs: 300, maxPending: 1 });
    const gs = ['g-busy1@example.net', 'g-busy2@example.net', 'g-busy3@example.net'];
    const names = await Promise.all(gs.map((g) => bridgeOf(d, g)));
    for (const [i, g] of gs.entries()) await call(d, 'deferEnsure', { guest: g, prefixes: [`2001:db8:5${i}0::/64`] });
    await call(d, 'deferRemove', { guest: gs[0] });
    // Busy: another guest's link changes every 100 ms for 1.2 s; one marked bridge (≤ maxPending) waits.
    for (let k = 0; k < 12; k++) {
      await call(d, 'deferEnsure', { guest: gs[2], prefixes: ['2001:db8:520::/64'] });
      await sleep(100);
    }
    expect(links('hostA')).toContain(names[0]);
    // A second one goes past maxPending: the oldest is deleted while still busy.
    await call(d, 'deferRemove', { guest: gs[1] });
    for (let k = 0; k < 5 && links('hostA').includes(names[0]!); k++) {
      await call(d, 'deferEnsure', { guest: gs[2], prefixes: ['2001:db8:520::/64'] });
      await sleep(100);
    }
    expect(links('hostA')).not.toContain(names[0]);
    expect(links('hostA')).toContain(names[1]);
    // Quiet: the rest goes too.
    await call(d, 'deferRemove', { guest: gs[2] });
    await waitFor(() => !links('hostA').includes(names[1]!) && !links('hostA').includes(names[2]!), 5000, 20);
    expect(await call(d, 'deferRemovals')).toEqual({ pending: 0, deleted: 3 });
    await call(d, 'exit');
  });

  it('an agent killed with bridges marked for removal: the next start() deletes them, except one taken back; foreign interfaces in the group stay', async () => {
    const crashed = await startDriver('hostA');
    await call(crashed, 'deferInit', { idleMs: 60_000 });
    const [g1, g2] = ['g-mark1@example.net', 'g-mark2@example.net'];
    const [b1, b2] = [await bridgeOf(crashed, g1), await bridgeOf(crashed, g2)];
    await call(crashed, 'deferEnsure', { guest: g1, prefixes: ['2001:db8:600::/64'] });
    await call(crashed, 'deferEnsure', { guest: g2, prefixes: ['2001:db8:610::/64'] });
    await call(crashed, 'deferRemove', { guest: g1 });
    await call(crashed, 'deferRemove', { guest: g2 });
    crashed.child.kill('SIGKILL');
    lab.exec('hostA', 'ip', ['link', 'add', 'br-admin2', 'group', '21046', 'type', 'bridge']);

    const agent = await startDriver('hostA');
    await call(agent, 'deferInit', { idleMs: 200 });
    // The restarted agent adopts the guests it holds first (g2 came back here), then start().
    await call(agent, 'deferEnsure', { guest: g2, prefixes: ['2001:db8:610::/64'] });
    expect(await call(agent, 'deferStart')).toBe(1);
    await waitFor(() => !links('hostA').includes(b1), 5000, 20);
    expect(links('hostA')).toContain(b2);
    expect(groupOf('hostA', b2)).toBe('default');
    expect(links('hostA')).toContain('br-admin2');
    expect(await call(agent, 'deferRemovals')).toEqual({ pending: 0, deleted: 1 });
    await call(agent, 'deferRemove', { guest: g2 });
    expect(await call(agent, 'deferFlush')).toBe(1);
    expect(links('hostA')).not.toContain(b2);
    lab.exec('hostA', 'ip', ['link', 'del', 'br-admin2']);
    await call(agent, 'exit');
  });

  it('hostB: destroy() releases the guest port (the veth stays) and leaves no bridge', async () => {
    await call(hostB, 'raStop', { guest: GUEST_ID });
    expect(await call(hostB, 'destroy', { guest: GUEST_ID })).toBe(true);
    expect(links('hostB')).not.toMatch(GUEST_BRIDGE);
    expect(links('hostB')).toMatch(/a-g@/);
  });
});
