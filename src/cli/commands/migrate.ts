/**
 * `roam6 migrate GUEST --to HOST`, `roam6 rebalance`, `roam6 jobs`: what hosting providers run.
 * Everything goes through the orchestrator's queue; these commands enqueue and follow.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import type { Job } from 'bullmq';
import { CliError } from '../errors.js';
import { cliRedis } from '../redis-cli-connection.js';
import { apiBase } from '../api-client.js';
import { renderTable } from '../table.js';
import type { MigrateRequest, MigrationOutcome, MigrationPhase, MigrationProgressData } from '../../orchestrator/jobs.js';
import { ORCHESTRATOR_QUEUE } from '../../orchestrator/jobs.js';

const PHASES: MigrationPhase[] = ['validate', 'prepare', 'migrate', 'activate', 'verify', 'release', 'done'];
const ms = (n: number) => `${n.toFixed(n < 10 ? 1 : 0)} ms`;

function printOutcome(o: MigrationOutcome): void {
  process.stdout.write(
    [
      `migrated ${o.guest}: ${o.from} → ${o.to}`,
      `  total            ${ms(o.totalMs)}`,
      `  hypervisor pause ${ms(o.downtimeMs)}`,
      `  resume → BA      ${ms(o.resumeToBaMs)}`,
      `  BU → BA          ${ms(o.registrationMs)}`,
      `  new CoA          ${o.newCoa}`,
      ...Object.entries(o.clockSkewMs ?? {}).map(([host, skew]) => `  clock of ${host}  ${skew > 0 ? '+' : ''}${ms(skew)} off the orchestrator's (corrected for; keep hosts under NTP)`),
      '',
    ].join('\n'),
  );
}

export function registerMigrateCommands(program: Command): void {
  program
    .command('migrate')
    .description('live-migrate one guest to another host, through the queue')
    .argument('<guest>', 'guest id')
    .requiredOption('--to <host>', 'destination host id')
    .option('--json', 'print the result as JSON')
    .option('--no-wait', 'enqueue, print the job id and return')
    .option('--timeout <sec>', 'give up waiting after this long', '300')
    .option('--redis <url>', 'Redis URL (default REDIS_URL)')
    .action(async (guest: string, o: { to: string; json?: boolean; wait: boolean; timeout: string; redis?: string }) => {
      const redis = await cliRedis(o.redis);
      const { Orchestration } = await import('../../orchestrator/runtime.js');
      const orch = new Orchestration(redis);
      try {
        const job = await orch.requestMigration({ guest, to: o.to });
        if (!o.wait) {
          process.stdout.write(`${o.json ? JSON.stringify({ job: job.id }) : job.id}\n`);
          return;
        }
        const events = await orch.queueEvents(ORCHESTRATOR_QUEUE);
        const tty = process.stderr.isTTY && !o.json;
        const bar = tty ? new cliProgress.SingleBar({ format: ` {bar} {phase}`, stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic) : null;
        bar?.start(PHASES.length, 0, { phase: 'queued' });
        const onProgress = ({ jobId, data }: { jobId: string; data: unknown }) => {
          if (jobId !== job.id || typeof data !== 'object' || data === null) return;
          const p = data as MigrationProgressData;
          if (bar) bar.update(PHASES.indexOf(p.phase) + 1, { phase: p.phase });
          else if (!o.json) process.stderr.write(`  ${p.phase}\n`);
        };
        events.on('progress', onProgress);
        try {
          const out = await orch.waitFor<MigrationOutcome>(job as Job, Number(o.timeout) * 1000);
          bar?.update(PHASES.length, { phase: 'done' });
          bar?.stop();
          if (o.json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
          else printOutcome(out);
        } catch (e) {
          bar?.stop();
          throw new CliError(`migration of ${guest} failed: ${e instanceof Error ? e.message : String(e)}`);
        } finally {
          events.off('progress', onProgress);
        }
      } finally {
        await orch.close();
        await redis.close();
      }
    });

  program
    .command('rebalance')
    .description('move many guests between hosts through the queue')
    .option('--from <host>', 'source host')
    .option('--to <host>', 'destination host')
    .option('--all', 'every guest on --from')
    .option('--count <n>', 'this many guests from --from')
    .option('--plan <file>', 'JSON [{"guest": "...", "to": "..."}]')
    .option('--concurrency <k>', 'migrations in flight per destination host', '4')
    .option('--json', 'print the summary as JSON')
    .option('--redis <url>', 'Redis URL (default REDIS_URL)')
    .action(async (o: { from?: string; to?: string; all?: boolean; count?: string; plan?: string; concurrency: string; json?: boolean; redis?: string }) => {
      const redis = await cliRedis(o.redis);
      const { Orchestration } = await import('../../orchestrator/runtime.js');
      const { RedisGuestRegistry } = await import('../../platform/redis/guest-registry.js');
      const orch = new Orchestration(redis);
      try {
        let plan: MigrateRequest[];
        if (o.plan) {
          plan = JSON.parse(readFileSync(o.plan, 'utf8')) as MigrateRequest[];
        } else {
          if (!o.from || !o.to || (!o.all && !o.count)) throw new CliError('give --from HOST --to HOST with --all or --count N, or --plan FILE', 2);
          const guests = (await new RedisGuestRegistry(redis.client).list()).filter((g) => g.host === o.from).map((g) => g.id).sort();
          const n = o.all ? guests.length : Math.min(guests.length, Number(o.count));
          plan = guests.slice(0, n).map((guest) => ({ guest, to: o.to! }));
        }
        const k = Math.max(1, Number(o.concurrency));
        const t0 = Date.now();
        const results: { guest: string; to: string; ok: boolean; detail: string; ms: number }[] = [];
        const bar = process.stderr.isTTY && !o.json ? new cliProgress.SingleBar({ format: ' {bar} {value}/{total} moved, {failed} failed', stream: process.stderr }, cliProgress.Presets.shades_classic) : null;
        bar?.start(plan.length, 0, { failed: 0 });
        // Per-destination concurrency: one lane of k workers per destination host.
        const byDest = new Map<string, MigrateRequest[]>();
        for (const p of plan) byDest.set(p.to, [...(byDest.get(p.to) ?? []), p]);
        await Promise.all(
          [...byDest.values()].flatMap((list) =>
            Array.from({ length: Math.min(k, list.length) }, async () => {
              for (let item = list.shift(); item; item = list.shift()) {
                const start = Date.now();
                try {
                  const job = await orch.requestMigration(item);
                  const out = await orch.waitFor<MigrationOutcome>(job as Job, 300_000);
                  results.push({ guest: item.guest, to: item.to, ok: true, detail: `${ms(out.totalMs)}, resume→BA ${ms(out.resumeToBaMs)}`, ms: Date.now() - start });
                } catch (e) {
                  results.push({ guest: item.guest, to: item.to, ok: false, detail: e instanceof Error ? e.message : String(e), ms: Date.now() - start });
                }
                bar?.update(results.length, { failed: results.filter((r) => !r.ok).length });
              }
            }),
          ),
        );
        bar?.stop();
        const failed = results.filter((r) => !r.ok);
        const summary = { total: plan.length, moved: results.length - failed.length, failed: failed.length, seconds: (Date.now() - t0) / 1000 };
        if (o.json) process.stdout.write(`${JSON.stringify({ ...summary, results }, null, 2)}\n`);
        else {
          process.stdout.write(`rebalance: ${summary.moved}/${summary.total} moved in ${summary.seconds.toFixed(1)} s, ${summary.failed} failed\n`);
          if (failed.length) {
            process.stdout.write(`${renderTable(failed, [
              { header: 'FAILED GUEST', value: (r) => r.guest },
              { header: 'TO', value: (r) => r.to },
              { header: 'WHY', value: (r) => r.detail, flexible: true },
            ])}\n`);
          }
        }
        if (failed.length) process.exitCode = 1;
      } finally {
        await orch.close();
        await redis.close();
      }
    });

  program
    .command('jobs')
    .description('migrations queued, running, failed and done')
    .option('--json', 'print JSON')
    .option('--limit <n>', 'jobs per state', '20')
    .option('--redis <url>', 'Redis URL (default REDIS_URL)')
    .option('--api <url>', 'HA API base URL, for the dashboard link (default ROAM6_API or http://127.0.0.1:8446)')
    .action(async (o: { json?: boolean; limit: string; redis?: string; api?: string }) => {
      const redis = await cliRedis(o.redis);
      const { Orchestration } = await import('../../orchestrator/runtime.js');
      const orch = new Orchestration(redis);
      try {
        const q = orch.queue(ORCHESTRATOR_QUEUE);
        const counts = await q.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed');
        const n = Number(o.limit);
        const jobs = await q.getJobs(['active', 'waiting', 'failed', 'completed'], 0, n - 1);
        const rows = await Promise.all(
          jobs.map(async (j) => ({ id: j.id ?? '', state: await j.getState(), guest: (j.data as MigrateRequest).guest, to: (j.data as MigrateRequest).to, phase: (j.progress as MigrationProgressData | undefined)?.phase ?? '-', reason: j.failedReason ?? '' })),
        );
        if (o.json) {
          process.stdout.write(`${JSON.stringify({ counts, jobs: rows }, null, 2)}\n`);
          return;
        }
        process.stdout.write(`${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ')}\n`);
        if (rows.length) {
          process.stdout.write(`${renderTable(rows, [
            { header: 'JOB', value: (r) => r.id, flexible: true },
            { header: 'STATE', value: (r) => r.state },
            { header: 'GUEST', value: (r) => r.guest, flexible: true },
            { header: 'TO', value: (r) => r.to },
            { header: 'PHASE', value: (r) => r.phase },
            { header: 'REASON', value: (r) => r.reason, flexible: true },
          ])}\n`);
        }
        // Every queue (host steps too), retries and removals: the HA serves bull-board.
        const api = apiBase(o.api);
        if (/^https?:/.test(api)) process.stdout.write(`queues dashboard: ${api}/queues\n`);
        else process.stdout.write(`queues dashboard: /queues on the HA's API (${api})\n`);
      } finally {
        await orch.close();
        await redis.close();
      }
    });
}
