/** The fake `virsh` / `xl` of test/fixtures/hypervisors: a scratch dir with the scenario and the call log. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';

export const FIXTURES = new URL('../../fixtures/hypervisors/', import.meta.url).pathname;

export class FakeCli {
  readonly dir = mkdtempSync(join(tmpdir(), 'roam6-fake-hv-'));
  readonly binary: string;

  constructor(name: 'fake-virsh' | 'fake-xl') {
    this.binary = join(FIXTURES, name);
    process.env.FAKE_HV_DIR = this.dir;
  }

  scenario(s: string): void {
    writeFileSync(join(this.dir, 'scenario'), s);
    writeFileSync(join(this.dir, 'calls.log'), '');
  }

  /** argv of every call so far. */
  calls(): string[][] {
    try {
      return readFileSync(join(this.dir, 'calls.log'), 'utf8').split('\n').filter(Boolean).map((l) => l.split('\t'));
    } catch {
      return [];
    }
  }

  /** Whether any process of the fake still runs (a hung one must have been killed). */
  running(): boolean {
    try {
      return execFileSync('pgrep', ['-f', `${this.binary}|sleep 3600`], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean)
        .some((pid) => {
          try {
            return readFileSync(`/proc/${pid}/environ`, 'utf8').includes(`FAKE_HV_DIR=${this.dir}`);
          } catch {
            return false;
          }
        });
    } catch {
      return false;
    }
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
