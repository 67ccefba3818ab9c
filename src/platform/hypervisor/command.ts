/**
 * Running hypervisor command-line tools (virsh, xl) with a deadline. The tool's stdout and
 * stderr are collected; `onLine` sees every stdout/stderr line as it arrives (progress, events).
 * On timeout the process gets SIGTERM, then SIGKILL after `killGraceMs`, and the promise
 * rejects with HypervisorTimeoutError naming the command.
 */
import { spawn } from 'node:child_process';
import { HypervisorError, HypervisorTimeoutError } from './errors.js';

export interface CommandResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly timeoutMs: number;
  readonly killGraceMs?: number;
  readonly env?: NodeJS.ProcessEnv;
  /** Each line of output as it arrives (`\r` also ends a line: virsh's progress). */
  readonly onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  readonly signal?: AbortSignal;
}

export function describeCommand(binary: string, args: readonly string[]): string {
  return [binary, ...args].map((a) => (/^[\w@%+=:,./[\]-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export function runCommand(binary: string, args: readonly string[], opts: RunOptions): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const what = describeCommand(binary, args);
    const child = spawn(binary, [...args], { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    const partial = { stdout: '', stderr: '' };
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const feed = (stream: 'stdout' | 'stderr', chunk: string) => {
      if (stream === 'stdout') stdout += chunk;
      else stderr += chunk;
      if (!opts.onLine) return;
      const lines = (partial[stream] + chunk).split(/\r\n|\r|\n/);
      partial[stream] = lines.pop() ?? '';
      for (const l of lines) if (l.trim()) opts.onLine(l, stream);
    };
    child.stdout.setEncoding('utf8').on('data', (c: string) => feed('stdout', c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => feed('stderr', c));
    const kill = () => {
      try {
        child.kill('SIGTERM');
      } catch {
        /* gone */
      }
      killTimer = setTimeout(() => {
        try {
          child.kill('SIGKILL');
        } catch {
          /* gone */
        }
      }, opts.killGraceMs ?? 2000);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, opts.timeoutMs);
    const onAbort = () => kill();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      reject(new HypervisorError(`${what}: cannot run ${binary}: ${e.code ?? e.message}${e.code === 'ENOENT' ? ' (not installed, or not on PATH?)' : ''}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      for (const s of ['stdout', 'stderr'] as const) if (partial[s].trim() && opts.onLine) opts.onLine(partial[s], s);
      if (timedOut) {
        reject(new HypervisorTimeoutError(`${what} did not finish within ${opts.timeoutMs} ms; it was killed`));
        return;
      }
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The error lines of virsh/xl output (`error: …`, `libxl: error: …`, ssh's, xl's `… failed`), else its last lines. */
export function errorLines(stderr: string, max = 4): string {
  const lines = stderr.split(/\r\n|\r|\n/).map((l) => l.trim()).filter(Boolean);
  const errors = lines.filter((l) => /error|failed|refused|denied|timed out|cannot|^ssh: |^xl: /i.test(l));
  return (errors.length ? errors : lines).slice(-max).join('; ') || '(no error output)';
}
