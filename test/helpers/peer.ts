/**
 * Drive a JSON-lines fixture process (e.g. test/fixtures/raw-socket-peer.mjs) running inside
 * a test namespace: write commands, await events.
 */
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import type { NetnsLab } from './netns.js';

export type PeerEvent = Record<string, unknown> & { ev: string };

export class JsonLinePeer {
  private readonly events: PeerEvent[] = [];
  private waiters: { pred: (e: PeerEvent) => boolean; resolve: (e: PeerEvent) => void }[] = [];
  readonly stderr: string[] = [];

  constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let e: PeerEvent;
      try {
        e = JSON.parse(line) as PeerEvent;
      } catch {
        return;
      }
      const w = this.waiters.find((x) => x.pred(e));
      if (w) {
        this.waiters = this.waiters.filter((x) => x !== w);
        w.resolve(e);
      } else this.events.push(e);
    });
    child.stderr?.on('data', (d: Buffer) => this.stderr.push(d.toString()));
  }

  static spawn(lab: NetnsLab, role: string, fixture: string, args: string[]): JsonLinePeer {
    const path = new URL(`../fixtures/${fixture}`, import.meta.url).pathname;
    return new JsonLinePeer(lab.spawn(role, process.execPath, [path, ...args]));
  }

  send(cmd: Record<string, unknown>): void {
    this.child.stdin!.write(`${JSON.stringify(cmd)}\n`);
  }

  /** The next event matching `pred` (already received or future), or null after `timeoutMs`. */
  next(pred: (e: PeerEvent) => boolean, timeoutMs = 2000): Promise<PeerEvent | null> {
    const i = this.events.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.events.splice(i, 1)[0]!);
    return new Promise((resolve) => {
      const w = { pred, resolve: (e: PeerEvent | null) => resolve(e) };
      this.waiters.push(w as never);
      setTimeout(() => {
        if (this.waiters.includes(w as never)) {
          this.waiters = this.waiters.filter((x) => x !== (w as never));
          resolve(null);
        }
      }, timeoutMs);
    });
  }

  /** Drop every event received so far. */
  clear(): void {
    this.events.length = 0;
  }
}
