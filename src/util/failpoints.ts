/**
 * Failpoints: named places where a test can make a real process die with SIGKILL, at exactly
 * that point (the idea of FreeBSD's fail(9) and etcd's gofail, reduced to one action).
 *
 * Off unless ROAM6_FAILPOINTS names a file. Each line of the file arms one point:
 *
 *   host.migrate.after kill
 *
 * When the process reaches an armed point it removes that line (so the restarted process
 * does not die again), writes one log line, and sends itself SIGKILL: no cleanup, no
 * unwinding, just as a crash or the OOM killer would. The file is read at each point, so a
 * test arms points while the process runs. Points are listed in docs/operations.md.
 */
import { readFileSync, writeFileSync } from 'node:fs';

export type FailpointHit = (name: string) => void;

/** A function to call at each named point; a no-op when `file` is undefined. */
export function failpoints(file: string | undefined, onHit: FailpointHit = () => {}): (name: string) => void {
  if (!file) return () => {};
  return (name) => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return; // no file: nothing armed
    }
    const lines = text.split('\n');
    const i = lines.findIndex((l) => {
      const [point, action] = l.trim().split(/\s+/);
      return point === name && action === 'kill';
    });
    if (i < 0) return;
    lines.splice(i, 1);
    writeFileSync(file, lines.join('\n'));
    onHit(name);
    process.kill(process.pid, 'SIGKILL');
  };
}
