/**
 * A fake QEMU for the qemu driver's contract: a process standing in for QEMU (its pidfile, and
 * an argv naming the guest and the QMP socket, as the driver checks) and a QMP server on the
 * guest's socket that plays a migration: `ok` (STOP, MIGRATION completed, and QEMU 7.2's
 * quirk of reporting total-time 0 right at completion), `fail`, `hang`. With a parked
 * `downtime-limit` (1 ms) it does not stop the guest itself but waits for QMP `stop`, as QEMU
 * does when what is left never fits the limit. `arrive()` plays the incoming side's end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { rmSync, writeFileSync } from 'node:fs';
import { qemuGuestPaths } from '../../../src/platform/qemu/command-line.js';

export type FakeQemuScenario = 'ok' | 'fail' | 'hang';

export class FakeQemu {
  readonly commands: { execute: string; arguments?: Record<string, unknown> }[] = [];
  status: string;
  migration: Record<string, unknown> = { status: 'none' };
  private completedQueries = 0;
  private downtimeLimit = 300;
  private readonly server: Server;
  private readonly proc: ChildProcess;
  private readonly sockets = new Set<Socket>();
  readonly paths;

  constructor(stateDir: string, readonly guest: string, private readonly scenario: FakeQemuScenario, status = 'running', opts: { serve?: boolean } = {}) {
    this.status = status;
    this.paths = qemuGuestPaths(stateDir, guest);
    this.proc = spawn('sh', ['-c', 'while :; do sleep 1; done', 'fake-qemu', '-name', `guest=${guest}`, '-qmp', `unix:${this.paths.qmp},server=on,wait=off`], { stdio: 'ignore' });
    writeFileSync(this.paths.pidfile, `${this.proc.pid}\n`);
    this.server = createServer((s) => this.serve(s));
    if (opts.serve !== false) this.server.listen(this.paths.qmp);
  }

  private serve(s: Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    const send = (m: object) => s.write(`${JSON.stringify(m)}\r\n`);
    send({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: 'Debian 1:7.2+dfsg-7+deb12u18' }, capabilities: ['oob'] } });
    const event = (name: string, data?: object) => {
      const now = Date.now();
      send({ event: name, ...(data ? { data } : {}), timestamp: { seconds: Math.floor(now / 1000), microseconds: (now % 1000) * 1000 } });
    };
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        const m = JSON.parse(line) as { execute: string; arguments?: Record<string, unknown>; id?: unknown };
        this.commands.push({ execute: m.execute, ...(m.arguments ? { arguments: m.arguments } : {}) });
        const ok = (ret: unknown = {}) => send({ return: ret, id: m.id });
        switch (m.execute) {
          case 'qmp_capabilities':
          case 'migrate-set-capabilities':
            ok();
            break;
          case 'migrate-set-parameters': {
            const limit = m.arguments?.['downtime-limit'];
            if (typeof limit === 'number') this.downtimeLimit = limit;
            ok();
            break;
          }
          case 'stop':
            if (this.status === 'running') {
              this.status = 'paused';
              event('STOP');
              if (this.migration.status === 'active') this.complete(event);
            }
            ok();
            break;
          case 'query-status':
            ok({ status: this.status, singlestep: false, running: this.status === 'running' });
            break;
          case 'migrate':
            if (this.status !== 'running') {
              send({ error: { class: 'GenericError', desc: 'There is a migration process in progress' }, id: m.id });
              break;
            }
            ok();
            this.migration = { status: 'setup' };
            event('MIGRATION', { status: 'setup' });
            setTimeout(() => {
              this.migration = { status: 'active', 'total-time': 40, ram: { transferred: 40_000_000, total: 134_807_552, remaining: 94_807_552, mbps: 1000, 'dirty-sync-count': 1 } };
              event('MIGRATION', { status: 'active' });
              if (this.scenario === 'fail') {
                setTimeout(() => {
                  this.migration = { status: 'failed', 'error-desc': `Unable to write to socket: Connection reset by peer` };
                  event('MIGRATION', { status: 'failed' });
                }, 40);
              }
              if (this.scenario === 'ok') {
                setTimeout(() => {
                  // what is left now fits 300 ms at 1000 Mbit/s (37.5 MB)
                  this.migration = { ...this.migration, ram: { transferred: 120_000_000, total: 134_807_552, remaining: 14_807_552, mbps: 1000, 'dirty-sync-count': 2 } };
                  if (this.downtimeLimit <= 1) return; // parked: the driver stops the guest
                  this.status = 'finish-migrate';
                  event('STOP');
                  this.complete(event);
                }, 80);
              }
            }, 20);
            break;
          case 'query-migrate':
            if (this.migration.status === 'completed' && this.completedQueries++ >= 1) {
              this.migration = { ...this.migration, 'total-time': 187, downtime: 31, 'setup-time': 4 };
            }
            ok(this.migration);
            break;
          case 'migrate_cancel':
            this.migration = { status: 'cancelled' };
            this.status = 'running';
            ok();
            break;
          case 'cont':
            this.status = 'running';
            event('RESUME'); // as QEMU does: the event before the command's return
            ok();
            break;
          case 'quit':
            ok();
            this.stop();
            break;
          default:
            send({ error: { class: 'CommandNotFound', desc: `The command ${m.execute} has not been found` }, id: m.id });
        }
      }
    });
  }

  private complete(event: (name: string, data?: object) => void): void {
    setTimeout(() => {
      this.status = 'postmigrate';
      // QEMU 7.2: `completed` before the times are filled in
      this.migration = { status: 'completed', ram: { transferred: 61_000_000, total: 134_807_552, remaining: 0 } };
      event('MIGRATION', { status: 'completed' });
    }, 30);
  }

  /** Incoming side: the migration stream ended; the guest runs, or waits paused as its source was. */
  arrive(paused: boolean): void {
    this.status = paused ? 'paused' : 'running';
    this.migration = { status: 'completed' };
    if (!paused) this.broadcast('RESUME');
    this.broadcast('MIGRATION', { status: 'completed' });
  }

  private broadcast(name: string, data?: object): void {
    const now = Date.now();
    const line = `${JSON.stringify({ event: name, ...(data ? { data } : {}), timestamp: { seconds: Math.floor(now / 1000), microseconds: (now % 1000) * 1000 } })}\r\n`;
    for (const s of this.sockets) s.write(line);
  }

  get pid(): number {
    return this.proc.pid!;
  }

  stop(): void {
    for (const s of this.sockets) s.destroy();
    this.server.close();
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
    rmSync(this.paths.qmp, { force: true });
  }
}
