/**
 * A tiny "hypervisor hand" for the migration benchmarks, run inside one host namespace
 * (`ip netns exec NS node dist/bench/netns-helper.js`). It does, over rtnetlink and with the
 * same calls as roam6, the two halves of the netns driver's live migration:
 *
 *   {"id":1,"op":"move","ifname":"r6v…","toNs":"r6lab-x-host-b"}
 *        — src/platform/linux/netns-driver.ts migrate(): RTM_SETLINK IFLA_NET_NS_FD
 *   {"id":2,"op":"attach","ifname":"blg0","bridge":"br0","mtu":1500}
 *        — src/platform/linux/guest-link.ts attach(): disable_ipv6 on the port, master + MTU, up
 *
 * One JSON line in, one line out: {"id":…,"ok":true,"startedAt":…,"doneAt":…} (epoch ms) or
 * {"id":…,"ok":false,"error":"…"}. A long-lived process, so that a move costs what the driver's
 * netlink request costs and not a fork of `ip`.
 */
import { closeSync, openSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { Rtnl, writeIpv6ConfSysctl } from '../src/platform/linux/rtnl.js';

interface Request {
  id: number;
  op: 'move' | 'attach' | 'ping';
  ifname?: string;
  toNs?: string;
  bridge?: string;
  mtu?: number;
}

const now = () => performance.timeOrigin + performance.now();
const nl = Rtnl.open();

async function handle(r: Request): Promise<object> {
  const startedAt = now();
  if (r.op === 'ping') return { startedAt, doneAt: now() };
  if (!r.ifname) throw new Error('ifname missing');
  const link = await nl.linkByName(r.ifname);
  if (!link) throw new Error(`no interface ${r.ifname} here`);
  if (r.op === 'move') {
    if (!r.toNs) throw new Error('toNs missing');
    const fd = openSync(`/run/netns/${r.toNs}`, 'r');
    try {
      await nl.moveLinkToNetns(link.index, fd, r.ifname);
    } finally {
      closeSync(fd);
    }
    return { startedAt, doneAt: now() };
  }
  if (r.op === 'attach') {
    if (!r.bridge) throw new Error('bridge missing');
    const bridge = await nl.linkByName(r.bridge);
    if (!bridge) throw new Error(`no bridge ${r.bridge} here`);
    await writeIpv6ConfSysctl(r.ifname, 'disable_ipv6', '1');
    await nl.updateLink(link.index, { ...(r.mtu ? { mtu: r.mtu } : {}), master: bridge.index }, r.ifname);
    if (!link.up) await nl.setLinkUp(link.index);
    return { startedAt, doneAt: now() };
  }
  throw new Error(`unknown op ${String(r.op)}`);
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let r: Request;
  try {
    r = JSON.parse(line) as Request;
  } catch {
    return;
  }
  handle(r).then(
    (res) => process.stdout.write(`${JSON.stringify({ id: r.id, ok: true, ...res })}\n`),
    (e: unknown) => process.stdout.write(`${JSON.stringify({ id: r.id, ok: false, error: e instanceof Error ? e.message : String(e) })}\n`),
  );
});
rl.on('close', () => {
  nl.close();
  process.exit(0);
});
process.stdout.write(`${JSON.stringify({ event: 'ready', pid: process.pid })}\n`);
