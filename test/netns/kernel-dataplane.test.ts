/**
 * The kernel (seg6) data plane end to end, in the machine-notes §1 topology:
 *
 *        cn (2001:db8:c::2)
 *         |
 *   ha --core-- hostA (2001:db8:a::2) --a-g/g-a-- guest (MNP 2001:db8:100::/64, ::2)
 *   (2001:db8:1::2) \-- hostB (2001:db8:b::2)      (the guest link later moves to hostB)
 *
 * core routes 2001:db8:100::/40 to the HA. The HA and each host run
 * test/fixtures/kernel-dataplane-driver.mjs (the compiled module from dist/) inside their
 * namespace, driven by JSON lines. Guest links have MTU 1460 (the tunnel MTU).
 */
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { canUseNetns, ensureDistBuilt, JsonLineChild, NetnsLab, waitFor } from '../helpers/netns.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DRIVER = fileURLToPath(new URL('../fixtures/kernel-dataplane-driver.mjs', import.meta.url));

const HA = '2001:db8:1::2';
const COA_A = '2001:db8:a::2';
const COA_B = '2001:db8:b::2';
const CN = '2001:db8:c::2';
const GUEST = '2001:db8:100::2';
const MNP = '2001:db8:100::/64';
const AGGREGATE = '2001:db8:100::/40';
const UDP_PORT = 5353;

interface Reply {
  id?: number;
  ok?: boolean;
  ready?: boolean;
  result?: unknown;
  error?: { name: string; message: string; code?: string; cause?: { code?: string; errno?: number; op?: string } };
}

/** JSON-lines UDP receiver: prints {ready} once bound, then {from,text} per datagram. */
const UDP_RECV = `const d=require('dgram').createSocket('udp6');
d.on('message',(m,r)=>console.log(JSON.stringify({from:r.address,text:m.toString()})));
d.bind(Number(process.argv[1]),'::',()=>console.log(JSON.stringify({ready:true})));`;
/** Sends argv[3] datagrams "<tag>-<n>" to [argv[1]]:argv[2], then exits. */
const UDP_SEND = `const d=require('dgram').createSocket('udp6');const [a,p,n,t]=process.argv.slice(1);let i=0;
const go=()=>d.send(Buffer.from(t+'-'+i),Number(p),a,(e)=>{if(e)throw e;if(++i<Number(n))setTimeout(go,5);else d.close();});go();`;

describe.skipIf(!canUseNetns)('kernel data plane (seg6) in namespaces', () => {
  const lab = new NetnsLab('kdp');
  const drivers: JsonLineChild<Reply>[] = [];
  let nextId = 1;
  let haSnapshot: Snapshot;
  let hostBSnapshot: Snapshot;
  let ha: JsonLineChild<Reply>;
  let hostA: JsonLineChild<Reply>;
  let hostB: JsonLineChild<Reply>;

  interface Snapshot { routes: string; rules: string; nft: string; tunsrc: string }
  const snapshot = (role: string): Snapshot => ({
    routes: lab.exec(role, 'ip', ['-6', 'route', 'show', 'table', 'all']),
    rules: lab.exec(role, 'ip', ['-6', 'rule', 'show']),
    nft: lab.exec(role, 'nft', ['list', 'ruleset']),
    tunsrc: lab.exec(role, 'ip', ['sr', 'tunsrc', 'show']),
  });

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

  function ping(from: string, to: string, extra: string[] = []): { ok: boolean; out: string } {
    try {
      return { ok: true, out: lab.exec(from, 'ping', ['-6', '-n', '-c', '2', '-i', '0.2', '-W', '1', ...extra, to]) };
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string };
      return { ok: false, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
    }
  }

  async function udp(fromRole: string, toRole: string, toAddr: string, tag: string): Promise<string[]> {
    const rx = new JsonLineChild<{ ready?: boolean; from?: string; text?: string }>(
      lab.spawn(toRole, process.execPath, ['-e', UDP_RECV, String(UDP_PORT)]));
    try {
      await rx.waitForEvent((e) => e.ready === true, 10_000);
      lab.exec(fromRole, process.execPath, ['-e', UDP_SEND, toAddr, String(UDP_PORT), '5', tag]);
      await waitFor(() => rx.events.filter((e) => e.text?.startsWith(tag)).length === 5, 3000).catch(() => false);
      return rx.events.flatMap((e) => (e.text?.startsWith(tag) ? [`${e.from} ${e.text}`] : []));
    } finally {
      rx.child.kill('SIGKILL');
    }
  }

  /** tcpdump `count` packets; `armed` resolves once it listens, `done` with its output. */
  function capture(role: string, ifname: string, filter: string, count: number): { armed: Promise<void>; done: Promise<string> } {
    const child = lab.spawn(role, 'tcpdump', ['-nni', ifname, '-l', '-c', String(count), filter]);
    let out = '';
    let err = '';
    child.stdout?.setEncoding('utf8').on('data', (c: string) => { out += c; });
    child.stderr?.setEncoding('utf8').on('data', (c: string) => { err += c; });
    const armed = waitFor(() => err.includes('listening on'), 5000).then(() => undefined);
    const done = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`capture timed out: ${out} ${err}`)); }, 5000);
      child.on('exit', () => { clearTimeout(timer); resolve(out); });
    });
    return { armed, done };
  }

  function guestLink(host: 'hostA' | 'hostB', hostIf: string, guestIf: string): void {
    lab.link(host, hostIf, '2001:db8:100::1/64', 'guest', guestIf, `${GUEST}/64`);
    lab.exec(host, 'ip', ['link', 'set', hostIf, 'mtu', '1460']);
    lab.exec('guest', 'ip', ['link', 'set', guestIf, 'mtu', '1460']);
    lab.exec('guest', 'ip', ['-6', 'route', 'replace', 'default', 'via', '2001:db8:100::1', 'dev', guestIf]);
  }

  beforeAll(async () => {
    ensureDistBuilt(ROOT, 'dist/src/platform/linux/kernel-dataplane.js');
    for (const role of ['core', 'ha', 'hostA', 'hostB', 'cn', 'guest']) lab.addNs(role);
    lab.link('core', 'c-ha', '2001:db8:1::1/64', 'ha', 'ha-c', `${HA}/64`);
    lab.link('core', 'c-a', '2001:db8:a::1/64', 'hostA', 'a-c', `${COA_A}/64`);
    lab.link('core', 'c-b', '2001:db8:b::1/64', 'hostB', 'b-c', `${COA_B}/64`);
    lab.link('core', 'c-cn', '2001:db8:c::1/64', 'cn', 'cn-c', `${CN}/64`);
    lab.sysctl('core', 'net.ipv6.conf.all.forwarding', '1');
    for (const [role, gw] of [['ha', '2001:db8:1::1'], ['hostA', '2001:db8:a::1'], ['hostB', '2001:db8:b::1'], ['cn', '2001:db8:c::1']]) {
      lab.exec(role!, 'ip', ['-6', 'route', 'add', 'default', 'via', gw!]);
    }
    lab.exec('core', 'ip', ['-6', 'route', 'add', AGGREGATE, 'via', HA]);
    guestLink('hostA', 'a-g', 'g-a');
    // The data plane sets forwarding itself; take the snapshots after that one sysctl.
    for (const role of ['ha', 'hostA', 'hostB']) lab.sysctl(role, 'net.ipv6.conf.all.forwarding', '1');
    haSnapshot = snapshot('ha');
    hostBSnapshot = snapshot('hostB');

    [ha, hostA, hostB] = await Promise.all([startDriver('ha'), startDriver('hostA'), startDriver('hostB')]);
    await call(ha, 'haStart', { haAddress: HA, opts: { homeAggregates: [AGGREGATE] } });
    await call(hostA, 'hostStart', { coa: COA_A, ha: HA });
    await call(hostB, 'hostStart', { coa: COA_B, ha: HA });
  }, 60_000);

  afterAll(async () => {
    for (const d of drivers) d.child.kill('SIGKILL');
    await lab.destroy();
  });

  it('installs the documented kernel objects', async () => {
    await call(hostA, 'hostAdd', { guest: 'g1', prefixes: [MNP], ifname: 'a-g' });
    await call(ha, 'haUpsert', { guest: 'g1', prefixes: [MNP], coa: COA_A });

    const haRoutes = lab.exec('ha', 'ip', ['-6', 'route', 'show', 'table', 'all']);
    expect(haRoutes).toMatch(/2001:db8:100::\/64 +encap seg6 mode encap\.red segs 1 \[ 2001:db8:a::2 \] dev ha-c table 6101 proto 82 .*mtu 1460/);
    expect(haRoutes).toMatch(/2001:db8:100::\/64 via fe80::2 dev roam6-fi table 6102 proto 82 .*mtu lock 1460/);
    expect(haRoutes).toMatch(/2001:db8:1::2 +encap seg6local action End\.DX6 nh6 :: dev ha-c table 6100 proto 82/);
    expect(haRoutes).toMatch(/unreachable 2001:db8:100::\/40 dev lo table 6102 proto 82/);
    const haRules = lab.exec('ha', 'ip', ['-6', 'rule', 'show']);
    expect(haRules).toContain('1:\tfrom all to 2001:db8:1::2 ipproto ipv6 lookup 6100');
    expect(haRules).toContain('2:\tfrom all lookup local');
    expect(haRules).not.toMatch(/^0:/m);
    expect(lab.exec('ha', 'ip', ['sr', 'tunsrc', 'show'])).toContain(HA);
    expect(lab.exec('ha', 'nft', ['list', 'table', 'ip6', 'roam6'])).toContain('tcp option maxseg size set 1400');

    const aRoutes = lab.exec('hostA', 'ip', ['-6', 'route', 'show', 'table', '6101']);
    expect(aRoutes).toMatch(/default from 2001:db8:100::\/64 +encap seg6 mode encap\.red segs 1 \[ 2001:db8:1::2 \] dev a-c proto 82/);
    expect(lab.exec('hostA', 'ip', ['-6', 'rule', 'show'])).toContain('from 2001:db8:1::2 to 2001:db8:a::2 ipproto ipv6 lookup 6100');

    // A prefix that covers a tunnel endpoint would loop inside the kernel: refused, nothing installed.
    await expect(call(ha, 'haUpsert', { guest: 'bad', prefixes: ['2001:db8:a::/48'], coa: COA_A }))
      .rejects.toThrow(/KernelDataplaneError.*contains tunnel endpoint 2001:db8:a::2/);
    expect(lab.exec('ha', 'ip', ['-6', 'route', 'show', 'table', '6101'])).not.toContain('2001:db8:a::/48');
  });

  it('carries ping and UDP both ways, as plain IPv6-in-IPv6 on the wire', async () => {
    expect(ping('cn', GUEST).ok).toBe(true);
    expect(ping('guest', CN).ok).toBe(true);

    const cap = capture('core', 'c-a', 'ip6 proto 41', 2);
    await cap.armed;
    expect(ping('cn', GUEST).ok).toBe(true);
    const captured = await cap.done;
    expect(captured).toContain(`${HA} > ${COA_A}: IP6 ${CN} > ${GUEST}: ICMP6, echo request`);
    expect(captured).toContain(`${COA_A} > ${HA}: IP6 ${GUEST} > ${CN}: ICMP6, echo reply`);

    expect(await udp('cn', 'guest', GUEST, 'down')).toHaveLength(5);
    const up = await udp('guest', 'cn', CN, 'up');
    expect(up).toHaveLength(5);
    expect(up[0]).toMatch(/^2001:db8:100::2 up-/);
  });

  it('answers a 1500-byte inner packet with Packet Too Big to the real sender, then delivers it fragmented', () => {
    const big = ping('cn', '2001:db8:100::7', ['-M', 'do', '-s', '1452', '-c', '1']);
    expect(big.out).toMatch(/From 2001:db8:1::2 icmp_seq=1 Packet too big: mtu=1460/);
    // The CN learnt the PMTU; an unfragmentable-by-us 1500-byte packet now arrives as fragments.
    expect(ping('cn', GUEST, ['-s', '1452']).ok).toBe(true);
    expect(ping('guest', CN, ['-s', '1452']).ok).toBe(true);
  });

  it('follows the binding to hostB (make before break) and stops when it is removed', async () => {
    // New host first, then the HA, then release the old host.
    lab.exec('hostA', 'ip', ['link', 'del', 'a-g']);
    guestLink('hostB', 'b-g', 'g-b');
    await call(hostB, 'hostAdd', { guest: 'g1', prefixes: [MNP], ifname: 'b-g' });
    await call(ha, 'haUpsert', { guest: 'g1', prefixes: [MNP], coa: COA_B });
    await call(hostA, 'hostRemove', { guest: 'g1' });
    expect(lab.exec('ha', 'ip', ['-6', 'route', 'show', 'table', '6101'])).toContain('segs 1 [ 2001:db8:b::2 ]');
    expect(lab.exec('hostA', 'ip', ['-6', 'route', 'show', 'table', '6101'])).toBe('');

    expect(ping('cn', GUEST).ok).toBe(true);
    expect(ping('guest', CN).ok).toBe(true);
    expect(await udp('cn', 'guest', GUEST, 'moved')).toHaveLength(5);

    await call(ha, 'haRemove', { guest: 'g1' });
    const gone = ping('cn', GUEST, ['-c', '1']);
    expect(gone.ok).toBe(false);
    expect(gone.out).toMatch(/Destination unreachable|100% packet loss/);
    expect(await call(ha, 'counters', { guest: 'g1' })).toBeNull();
  });

  it('stop() leaves routes, rules, nft and the tunnel source exactly as before start()', async () => {
    await call(ha, 'haStop', { haAddress: HA });
    await call(hostB, 'hostStop');
    expect(snapshot('ha')).toEqual(haSnapshot);
    // hostB still holds the guest link (b-g); its full snapshot is compared in the next test.
    const b = snapshot('hostB');
    expect([b.rules, b.nft, b.tunsrc]).toEqual([hostBSnapshot.rules, hostBSnapshot.nft, hostBSnapshot.tunsrc]);
    expect(lab.exec('hostB', 'ip', ['-6', 'route', 'show', 'table', 'all'])).not.toMatch(/table 610\d/);
    expect(lab.exec('ha', 'ip', ['link', 'show'])).not.toContain('roam6-');
  });

  it('a fresh process adopts, prunes and cleans up after a SIGKILLed one', async () => {
    const crashing = await startDriver('ha');
    await call(crashing, 'haStart', { haAddress: HA });
    await call(crashing, 'haUpsert', { guest: 'g1', prefixes: [MNP, '2001:db8:101::/64'], coa: COA_B });
    const crashingHost = await startDriver('hostB');
    await call(crashingHost, 'hostStart', { coa: COA_B, ha: HA });
    await call(crashingHost, 'hostAdd', { guest: 'g1', prefixes: [MNP], ifname: 'b-g' });
    crashing.child.kill('SIGKILL');
    crashingHost.child.kill('SIGKILL');
    await waitFor(() => crashing.child.exitCode !== null || crashing.child.signalCode !== null, 5000);
    await waitFor(() => crashingHost.child.exitCode !== null || crashingHost.child.signalCode !== null, 5000);
    // Traffic survives the crash: the kernel state is still there.
    expect(ping('cn', GUEST).ok).toBe(true);

    const fresh = await startDriver('ha');
    await call(fresh, 'haStart', { haAddress: HA });
    await call(fresh, 'haUpsert', { guest: 'g1', prefixes: [MNP], coa: COA_B });
    expect(await call(fresh, 'prune')).toBe(1); // 2001:db8:101::/64 had no owner any more
    expect(lab.exec('ha', 'ip', ['-6', 'route', 'show', 'table', '6101'])).not.toContain('2001:db8:101::');
    await call(fresh, 'haStop', { haAddress: HA });
    expect(snapshot('ha')).toEqual(haSnapshot);

    const freshHost = await startDriver('hostB');
    await call(freshHost, 'hostStop');
    lab.exec('hostB', 'ip', ['link', 'del', 'b-g']);
    expect(snapshot('hostB')).toEqual(hostBSnapshot);
  });
});

