/**
 * Network-namespace lab for tests.
 *
 * Every namespace and process a test creates is tracked by name/PID and removed in
 * `destroy()`. Names carry a per-run tag (`r6t<pid>`) so parallel runs never collide and a
 * crashed run can be cleaned by prefix without touching anything else on the machine.
 * Only 2001:db8::/32 documentation addresses are used.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const canUseNetns: boolean = (() => {
  if (process.getuid?.() !== 0) return false;
  try {
    const probe = `r6probe${process.pid}`;
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'ignore' });
    execFileSync('ip', ['netns', 'del', probe], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** Why namespace tests are skipped, or null when they can run. Printed by the suites. */
export const netnsSkipReason: string | null = canUseNetns
  ? null
  : 'network namespaces unavailable (need root and CAP_NET_ADMIN); namespace tests skipped';

if (netnsSkipReason) console.warn(`[roam6 tests] ${netnsSkipReason}`);

export function sh(cmd: string, args: string[], opts: { input?: string } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input: opts.input, stdio: ['pipe', 'pipe', 'pipe'] });
}

export class NetnsLab {
  readonly tag: string;
  private readonly namespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();

  constructor(label: string) {
    this.tag = `r6${label.slice(0, 4)}${process.pid % 100000}`;
  }

  /** Full namespace name for a short role name ("ha" → "r6xxxx123-ha"). */
  ns(role: string): string {
    return `${this.tag}-${role}`;
  }

  addNs(role: string): string {
    const name = this.ns(role);
    try { sh('ip', ['netns', 'del', name]); } catch { /* not there */ }
    sh('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    this.exec(role, 'ip', ['link', 'set', 'lo', 'up']);
    this.sysctl(role, 'net.ipv6.conf.all.accept_dad', '0');
    this.sysctl(role, 'net.ipv6.conf.default.accept_dad', '0');
    return name;
  }

  /** Run a command inside a namespace and return stdout. Throws with stderr on failure. */
  exec(role: string, cmd: string, args: string[], opts: { input?: string } = {}): string {
    return sh('ip', ['netns', 'exec', this.ns(role), cmd, ...args], opts);
  }

  sysctl(role: string, key: string, value: string): void {
    this.exec(role, 'sysctl', ['-qw', `${key}=${value}`]);
  }

  /** veth pair between two namespaces, each end optionally addressed (nodad). */
  link(a: string, aIf: string, aAddr: string | null, b: string, bIf: string, bAddr: string | null): void {
    sh('ip', ['link', 'add', aIf, 'netns', this.ns(a), 'type', 'veth', 'peer', 'name', bIf, 'netns', this.ns(b)]);
    for (const [role, ifn, addr] of [[a, aIf, aAddr], [b, bIf, bAddr]] as const) {
      this.exec(role, 'ip', ['link', 'set', ifn, 'up']);
      if (addr) this.exec(role, 'ip', ['-6', 'addr', 'add', addr, 'dev', ifn, 'nodad']);
    }
  }

  /** Spawn a long-running process inside a namespace; killed (by PID) in destroy(). */
  spawn(role: string, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.ns(role), cmd, ...args], { stdio: 'pipe', ...opts });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  async destroy(): Promise<void> {
    for (const child of this.children) {
      if (child.exitCode === null && child.pid) {
        try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
    this.children.clear();
    for (const name of this.namespaces.reverse()) {
      // Kill anything still running inside the namespace we created (by PID, scoped to it).
      try {
        const pids = sh('ip', ['netns', 'pids', name]).split(/\s+/).filter(Boolean);
        for (const pid of pids) { try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ } }
      } catch { /* ns gone */ }
      try { sh('ip', ['netns', 'del', name]); } catch { /* already gone */ }
    }
    this.namespaces.length = 0;
  }
}

/** Wait until `fn` returns a truthy value or the deadline passes. */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 5000, stepMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`waitFor timed out after ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/**
 * A child process that speaks JSON lines: commands go to its stdin, events come from its
 * stdout (one JSON object per line). Events are kept in arrival order, so a test can wait
 * for one that may already have arrived. Pairs with `NetnsLab.spawn` and the fixture
 * peers in test/fixtures/.
 */
export class JsonLineChild<E> {
  readonly events: E[] = [];
  private stderr = '';
  private exited: string | null = null;

  constructor(readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8');
    let partial = '';
    child.stdout?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) this.events.push(JSON.parse(line) as E);
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => { this.stderr += chunk; });
    child.on('exit', (code, signal) => { this.exited = `exited (code ${code}, signal ${signal})`; });
  }

  send(command: object): void {
    this.child.stdin?.write(`${JSON.stringify(command)}\n`);
  }

  /** The first event (from index `from` on) that matches; rejects with the child's stderr on timeout. */
  waitForEvent<T extends E>(match: (e: E) => e is T, timeoutMs?: number, from?: number): Promise<T>;
  waitForEvent(match: (e: E) => boolean, timeoutMs?: number, from?: number): Promise<E>;
  async waitForEvent(match: (e: E) => boolean, timeoutMs = 5000, from = 0): Promise<E> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.slice(from).find(match);
      if (found !== undefined) return found;
      if (Date.now() > deadline || this.exited) {
        throw new Error(`no matching event within ${timeoutMs} ms${this.exited ? `; child ${this.exited}` : ''}; ` +
          `events: ${JSON.stringify(this.events)}; stderr: ${this.stderr || '(empty)'}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Close stdin (the fixtures exit on EOF) and wait for the process to end. */
  async end(timeoutMs = 5000): Promise<void> {
    this.child.stdin?.end();
    await waitFor(() => this.exited !== null || this.child.exitCode !== null, timeoutMs);
  }
}

/**
 * Fixture scripts import the compiled code in dist/. Rebuild it (tsc -p tsconfig.build.json)
 * when it is missing or older than any source file, so a test never runs stale JavaScript.
 * `npm test` builds in `pretest` already; this covers running vitest directly.
 */
export function ensureDistBuilt(root: string, entry: string): void {
  const newestSource = (dir: string): number => {
    let newest = 0;
    for (const ent of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, ent.name);
      newest = Math.max(newest, ent.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
    }
    return newest;
  };
  const built = join(root, entry);
  if (existsSync(built) && statSync(built).mtimeMs >= newestSource(join(root, 'src'))) return;
  try {
    execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
      { cwd: root, stdio: 'pipe', encoding: 'utf8' });
  } catch (e) {
    const out = (e as { stdout?: string }).stdout ?? '';
    throw new Error(`building dist/ for the fixtures failed:\n${out}`);
  }
}
