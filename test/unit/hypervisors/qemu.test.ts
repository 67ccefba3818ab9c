/**
 * The qemu driver against a fake QEMU (QMP server + a stand-in process): the shared hypervisor
 * contract, the QMP conversation it has, QEMU 7.2's completion quirk, and the command line.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { QemuDriver, SwitchoverPlanner, switchoverLead } from '../../../src/platform/qemu/driver.js';
import { QmpClient, QmpError } from '../../../src/platform/qemu/qmp.js';
import { defaultGuestMac, migrationRelevantArgs, qemuArgs, qemuGuestPaths, DEFAULT_GUEST_DEFINITION } from '../../../src/platform/qemu/command-line.js';
import { guestPortName } from '../../../src/core/guest-link-identity.js';
import { processAlive } from '../../../src/platform/hypervisor/process.js';
import { hypervisorContract } from './contract.js';
import { FakeQemu } from './fake-qmp.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const scratch = () => {
  const d = mkdtempSync(join(tmpdir(), 'roam6-qemu-'));
  dirs.push(d);
  return d;
};
const GUEST = 'g1@tenant.example';
/** What prepareIncoming leaves for an incoming QEMU (the fakes stand in for the QEMU it starts). */
async function writeIncomingRecord(dir: string, guest: string, pid: number): Promise<void> {
  writeFileSync(qemuGuestPaths(dir, guest).incomingRecord, JSON.stringify({ guest, uri: `unix:${dir}/in.migrate`, pid, startedAt: new Date().toISOString() }));
}
async function waitUntil(ok: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
const driverFor = (stateDir: string) =>
  new QemuDriver({ stateDir, guests: { [GUEST]: { kernel: '/boot/vmlinuz' } }, migrateTimeoutMs: 1500, startTimeoutMs: 1000, linkExists: async () => true, pollMs: 20 });

hypervisorContract('qemu', async (scenario) => {
  const dir = scratch();
  const fakes = scenario === 'unavailable'
    ? [new FakeQemu(dir, GUEST, 'ok', 'running', { serve: false })] // QEMU runs, its QMP does not answer
    : [new FakeQemu(dir, GUEST, scenario === 'hang' ? 'hang' : scenario), new FakeQemu(dir, 'arriving@tenant.example', 'ok', 'inmigrate')];
  const driver = driverFor(dir);
  return {
    driver,
    guest: GUEST,
    listed: [GUEST],
    unknown: 'g9@tenant.example',
    target: 'host-b',
    migrateOptions: { incoming: `unix:${dir}/dest.migrate` },
    failureText: /Unable to write to socket: Connection reset by peer/,
    unavailableText: /does not run on this host \(QEMU state: unresponsive\)/,
    unavailableCall: (d) => d.migrate(GUEST, 'host-b', () => {}, { incoming: `unix:${dir}/dest.migrate` }),
    hangBoundMs: 3000,
    hungGone: () => fakes[0]!.commands.some((c) => c.execute === 'migrate_cancel') && fakes[0]!.status === 'running',
    cleanup: () => {
      driver.close();
      for (const f of fakes) f.stop();
    },
  };
});

describe('qemu driver: the QMP conversation', () => {
  it('negotiates, turns on migration events, sends migrate to the incoming URI and waits out the 7.2 completion quirk', async () => {
    const dir = scratch();
    const fake = new FakeQemu(dir, GUEST, 'ok');
    const d = new QemuDriver({ stateDir: dir, guests: { [GUEST]: { kernel: '/boot/vmlinuz' } }, maxBandwidthMiBs: 256, downtimeLimitMs: 100, linkExists: async () => true, pollMs: 20 });
    try {
      const r = await d.migrate(GUEST, 'host-b', () => {}, { incoming: 'unix:/var/lib/roam6/qemu/r6v.migrate' });
      expect(r).toMatchObject({ totalMs: 187, downtimeMs: 31 });
      const cmds = fake.commands.map((c) => c.execute);
      expect(cmds.slice(0, 2)).toEqual(['qmp_capabilities', 'query-status']);
      expect(fake.commands).toContainEqual({ execute: 'migrate-set-capabilities', arguments: { capabilities: [{ capability: 'events', state: true }] } });
      expect(fake.commands).toContainEqual({ execute: 'migrate-set-parameters', arguments: { 'max-bandwidth': 256 * 1024 * 1024, 'downtime-limit': 100 } });
      expect(fake.commands).toContainEqual({ execute: 'migrate', arguments: { uri: 'unix:/var/lib/roam6/qemu/r6v.migrate' } });
      expect(cmds.at(-1)).toBe('query-migrate');
      // the source stays in postmigrate until release discards it
      expect(fake.status).toBe('postmigrate');
      await d.discardGuest(GUEST);
      expect(fake.commands.at(-1)!.execute).toBe('quit');
    } finally {
      d.close();
      fake.stop();
    }
  });

  it('refuses to migrate without the destination\'s incoming URI, and never discards a running guest', async () => {
    const dir = scratch();
    const fake = new FakeQemu(dir, GUEST, 'ok');
    const d = driverFor(dir);
    try {
      await expect(d.migrate(GUEST, 'host-b', () => {})).rejects.toThrow(/prepared no incoming QEMU/);
      await d.discardGuest(GUEST);
      expect(fake.commands.some((c) => c.execute === 'quit')).toBe(false);
      expect(await d.runsHere(GUEST)).toBe(true);
      expect(await d.guestInterface(GUEST)).toBe(guestPortName(GUEST));
    } finally {
      d.close();
      fake.stop();
    }
  });

  it('with a step before the pause, the driver switches over: parked limit, the step, then stop, then the real limit', async () => {
    const dir = scratch();
    const fake = new FakeQemu(dir, GUEST, 'ok');
    const d = new QemuDriver({ stateDir: dir, guests: { [GUEST]: { kernel: '/boot/vmlinuz' } }, downtimeLimitMs: 300, linkExists: async () => true, pollMs: 20 });
    const order: string[] = [];
    try {
      const r = await d.migrate(GUEST, 'host-b', (p) => p.phase === 'paused' && order.push(`paused@${fake.commands.length}`), {
        incoming: 'unix:/x.migrate',
        beforePause: async () => {
          order.push(`hold@${fake.commands.length}`);
          await new Promise((res) => setTimeout(res, 15)); // the HA's answer takes a while
        },
      });
      const cmds = fake.commands.map((c) => c.execute === 'migrate-set-parameters' ? `limit=${String(c.arguments?.['downtime-limit'])}` : c.execute);
      const stop = cmds.indexOf('stop');
      expect(cmds.indexOf('limit=1')).toBeLessThan(cmds.indexOf('migrate'));
      expect(stop).toBeGreaterThan(cmds.indexOf('migrate'));
      expect(cmds[stop + 1]).toBe('limit=300');
      // the step ran before the guest stopped, and the pause came from our stop
      expect(order).toHaveLength(2);
      expect(Number(order[0]!.split('@')[1])).toBeLessThanOrEqual(stop);
      expect(order[1]).toMatch(/^paused@/);
      // the downtime is counted from our stop (the fake completes 30 ms after it), not QEMU's 31 ms
      expect(r.downtimeMs).toBeGreaterThanOrEqual(25);
      expect(fake.status).toBe('postmigrate');
    } finally {
      d.close();
      fake.stop();
    }
  });

  it('without a step before the pause QEMU decides; a guest paused on purpose is refused', async () => {
    const dir = scratch();
    const fake = new FakeQemu(dir, GUEST, 'ok');
    const paused = new FakeQemu(dir, 'p@tenant.example', 'ok', 'paused');
    const d = new QemuDriver({ stateDir: dir, guests: { [GUEST]: { kernel: '/boot/vmlinuz' }, 'p@tenant.example': { kernel: '/boot/vmlinuz' } }, linkExists: async () => true, pollMs: 20 });
    try {
      await d.migrate(GUEST, 'host-b', () => {}, { incoming: 'unix:/x.migrate' });
      expect(fake.commands.map((c) => c.execute)).not.toContain('stop');
      expect(fake.commands).toContainEqual({ execute: 'migrate-set-parameters', arguments: { 'downtime-limit': 300, 'max-bandwidth': 128 * 1024 * 1024 } });
      await expect(d.migrate('p@tenant.example', 'host-b', () => {}, { incoming: 'unix:/x.migrate', beforePause: async () => {} })).rejects.toThrow(/is paused on this host.*resume it first/);
      expect(paused.commands.map((c) => c.execute)).not.toContain('migrate');
    } finally {
      d.close();
      fake.stop();
      paused.stop();
    }
  });

  it('the destination resumes a guest that arrives paused, and only then reports it resumed', async () => {
    const dir = scratch();
    const arriving = new FakeQemu(dir, 'arriving@tenant.example', 'ok', 'inmigrate');
    const d = driverFor(dir);
    try {
      // prepareIncoming would start QEMU; the fake already runs: watch it as the driver does
      await writeIncomingRecord(dir, 'arriving@tenant.example', arriving.pid);
      let resumed = 0;
      await d.prepareIncoming('arriving@tenant.example', { onResumed: () => resumed++ });
      arriving.arrive(true);
      await waitUntil(() => resumed === 1);
      expect(arriving.status).toBe('running');
      expect(arriving.commands.filter((c) => c.execute === 'cont')).toHaveLength(1);
      expect(await d.runsHere('arriving@tenant.example')).toBe(true);
    } finally {
      d.close();
      arriving.stop();
    }
  });

  it('a paused arrival nobody resumed (the agent was down) is resumed when its state is next read', async () => {
    const dir = scratch();
    const arrived = new FakeQemu(dir, 'arriving@tenant.example', 'ok', 'paused');
    await writeIncomingRecord(dir, 'arriving@tenant.example', arrived.pid);
    const d = driverFor(dir);
    try {
      expect(await d.guests()).toEqual(['arriving@tenant.example']);
      expect(arrived.status).toBe('running');
      expect(arrived.commands.map((c) => c.execute)).toContain('cont');
    } finally {
      d.close();
      arrived.stop();
    }
  });

  it('QmpClient: what QEMU still owed the previous client (a return, an event) before the greeting is skipped', async () => {
    const dir = scratch();
    const path = join(dir, 'stale.qmp');
    const server = createServer((s) => {
      s.write('{"return": {}, "id": "r6-4"}\r\n{"event": "RESUME", "data": {}, "timestamp": {"seconds": 1, "microseconds": 0}}\r\n');
      s.write('{"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": ""}, "capabilities": []}}\r\n');
      s.on('data', (d) => {
        const m = JSON.parse(String(d).trim()) as { id?: unknown };
        s.write(`${JSON.stringify({ return: {}, id: m.id })}\r\n`);
      });
    });
    await new Promise<void>((r) => server.listen(path, r));
    try {
      const c = await QmpClient.connect(path, { timeoutMs: 1000 });
      expect(c.greeting.version.qemu.major).toBe(7);
      c.close();
    } finally {
      server.close();
    }
  });

  it('QmpClient: command errors carry the QMP class; events carry QEMU\'s timestamp', async () => {
    const dir = scratch();
    const fake = new FakeQemu(dir, GUEST, 'ok');
    const c = await QmpClient.connect(qemuGuestPaths(dir, GUEST).qmp);
    try {
      expect(c.greeting.version.qemu).toEqual({ major: 7, minor: 2, micro: 0 });
      const err = await c.execute('no-such-command').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(QmpError);
      expect((err as QmpError).errorClass).toBe('CommandNotFound');
      const stop = c.waitForEvent((e) => e.event === 'STOP', 2000);
      await c.execute('migrate', { uri: 'unix:/nowhere' });
      const e = await stop;
      expect(Math.abs(e.at - Date.now())).toBeLessThan(2000);
    } finally {
      c.close();
      fake.stop();
    }
    await expect(QmpClient.connect(join(dir, 'missing.qmp'), { timeoutMs: 500 })).rejects.toThrow(/ENOENT \(is QEMU running\?\)/);
  });
});

describe('qemu driver: when to switch over', () => {
  const ram = (remaining: number, sync = 1) => ({ status: 'active', ram: { total: 134_217_728, remaining, 'dirty-sync-count': sync } });

  it('stops the guest `leadMs` before the first pass is predicted to end, at the rate remaining falls', () => {
    const p = new SwitchoverPlanner(12);
    expect(p.ready(0, ram(100_000_000))).toBe(false); // one sample: no rate yet
    expect(p.ready(10, ram(90_000_000))).toBe(false); // 1 MB/ms: 90 ms left
    expect(p.ready(20, ram(80_000_000))).toBe(false); // 80 ms left
    expect(p.ready(87, ram(13_000_000))).toBe(false); // 13 ms left
    expect(p.ready(89, ram(11_000_000))).toBe(true); // 11 ms left: hold, then stop
    expect(new SwitchoverPlanner(12).ready(0, { status: 'active' })).toBe(false);
  });

  it('a speed-up (zero pages) counts at once; a slow-down only gradually', () => {
    const p = new SwitchoverPlanner(12);
    p.ready(0, ram(100_000_000));
    p.ready(10, ram(99_000_000)); // 0.1 MB/ms: 990 ms left
    // zero pages: 40 MB in 10 ms (4 MB/ms) → 59 MB left = 15 ms: not yet; 10 ms more at that pace: stop
    expect(p.ready(20, ram(59_000_000))).toBe(false);
    expect(p.ready(25, ram(40_000_000))).toBe(true);
  });

  it('the lead follows how long the last holds took: the configured one first, then 3× the slowest + a poll, within [8, configured]', () => {
    expect(switchoverLead(25, [])).toBe(25);
    expect(switchoverLead(25, [4, 5, 3])).toBe(17);
    expect(switchoverLead(25, [1, 1])).toBe(8);
    expect(switchoverLead(25, [2, 19])).toBe(25);
  });

  it('once the first pass is over (QEMU synced again) it stops at once', () => {
    expect(new SwitchoverPlanner(12).ready(0, ram(5_000_000, 2))).toBe(true);
  });
});

describe('qemu driver: a QEMU that does not answer', () => {
  it('is never discarded or replaced: it may be running the guest', async () => {
    const dir = scratch();
    const mute = new FakeQemu(dir, GUEST, 'ok', 'running', { serve: false });
    const d = driverFor(dir);
    try {
      await d.discardGuest(GUEST);
      await expect(d.prepareIncoming(GUEST)).rejects.toThrow(/does not answer on QMP; not replacing it/);
      expect(processAlive(mute.pid)).toBe(true);
    } finally {
      d.close();
      mute.stop();
    }
  });
});

describe('qemu driver: leftovers at agent start', () => {
  it('quits QEMUs left in postmigrate, leaves running and incoming ones alone', async () => {
    const dir = scratch();
    const left = new FakeQemu(dir, 'left@tenant.example', 'ok', 'postmigrate');
    const running = new FakeQemu(dir, GUEST, 'ok', 'running');
    const arriving = new FakeQemu(dir, 'arriving@tenant.example', 'ok', 'inmigrate');
    const d = driverFor(dir);
    try {
      expect(await d.removeLeftovers()).toEqual(['left@tenant.example']);
      expect(left.commands.at(-1)!.execute).toBe('quit');
      for (const f of [running, arriving]) expect(f.commands.some((c) => c.execute === 'quit')).toBe(false);
      expect(await d.guests()).toEqual([GUEST]);
    } finally {
      d.close();
      for (const f of [left, running, arriving]) f.stop();
    }
  });
});

describe('qemu driver: the command line', () => {
  const paths = (host: string) => qemuGuestPaths(`/var/lib/roam6/qemu-${host}`, GUEST);
  const def = { ...DEFAULT_GUEST_DEFINITION, kernel: '/var/tmp/img/vmlinuz', initrd: '/var/tmp/img/initramfs.gz', append: 'console=ttyS0' };

  it('source and destination differ only in their backends', () => {
    const src = qemuArgs(GUEST, def, paths('a'), { incoming: false });
    const dst = qemuArgs(GUEST, def, paths('b'), { incoming: true });
    expect(migrationRelevantArgs(dst)).toEqual(migrationRelevantArgs(src));
    expect(dst.slice(-2)).toEqual(['-incoming', 'defer']);
    expect(src).not.toContain('-incoming');
  });

  it('the TAP is the guest port name, the MAC is the same on every host, TCG unless told otherwise', () => {
    const args = qemuArgs(GUEST, def, paths('a'), { incoming: false });
    expect(args).toContain(`tap,id=n0,ifname=${guestPortName(GUEST)},script=no,downscript=no,vhost=off`);
    expect(args).toContain(`virtio-net-pci,netdev=n0,mac=${defaultGuestMac(GUEST)},id=nic0`);
    expect(defaultGuestMac(GUEST)).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    expect(args.join(' ')).toContain('-machine pc-i440fx-7.2 -accel tcg -cpu qemu64 -m 128 -smp 1');
    expect(args).toContain('-daemonize');
  });

  it('a guest without a kernel or disks has no definition', () => {
    const d = new QemuDriver({ stateDir: scratch() });
    expect(() => d.definition('nobody@x')).toThrow(/no QEMU definition for guest nobody@x/);
  });
});
