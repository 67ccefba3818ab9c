/** What the lab tests share: the CLI as a child process, waiting for a process to end, unfinished jobs. */
import { spawn } from 'node:child_process';
import { processAlive } from '../../src/platform/hypervisor/process.js';
import { ORCHESTRATOR_QUEUE, hostQueue } from '../../src/orchestrator/jobs.js';
import type { Orchestration } from '../../src/orchestrator/runtime.js';
import { waitFor } from './netns.js';

export const BIN = new URL('../../bin/roam6.js', import.meta.url).pathname;

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run `roam6 ...args` without blocking the test's event loop (it may run a migration meanwhile). */
export function roam6(args: readonly string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Resolves once `pid` is gone (or a zombie); throws after `timeoutMs`. */
export async function waitForExit(pid: number, timeoutMs = 10_000): Promise<void> {
  await waitFor(() => !processAlive(pid), timeoutMs, 20);
}

/** Jobs neither finished nor failed, per queue, on the orchestrator's and both lab hosts' queues. */
export async function unfinishedJobs(orch: Orchestration): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const name of [ORCHESTRATOR_QUEUE, hostQueue('host-a'), hostQueue('host-b')]) {
    const c = await orch.queue(name).getJobCounts('active', 'waiting', 'delayed', 'prioritized', 'waiting-children');
    const n = Object.values(c).reduce((a, b) => a + b, 0);
    if (n) out[name] = n;
  }
  return out;
}
