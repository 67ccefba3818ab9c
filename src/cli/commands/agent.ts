/** `roam6 agent --config FILE` and `roam6 orchestrator`: the host agent and the migration worker. */
import type { Command } from 'commander';
import { ConfigError } from '../../config/common.js';
import { CliError } from '../errors.js';

function untilSignal(stop: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    const handler = () => {
      process.off('SIGTERM', handler);
      process.off('SIGINT', handler);
      void stop().then(resolve);
    };
    process.on('SIGTERM', handler);
    process.on('SIGINT', handler);
  });
}

function positiveInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`${flag} wants a positive integer, not ${JSON.stringify(v)}`);
  return n;
}

export function registerAgentCommands(program: Command): void {
  program
    .command('agent')
    .description('run the host agent: one mobile-router proxy per guest held here')
    .requiredOption('-c, --config <file>', 'agent configuration (JSON); see docs/configuration.md')
    .option('--check', 'validate the configuration and exit')
    .action(async (opts: { config: string; check?: boolean }) => {
      const { loadAgentConfig } = await import('../../config/agent-config.js');
      try {
        const cfg = loadAgentConfig(opts.config);
        if (opts.check) {
          process.stdout.write(`${opts.config}: ok (host ${cfg.hostId}, backend ${cfg.dataplane.backend})\n`);
          return;
        }
      } catch (e) {
        if (e instanceof ConfigError) throw new CliError(e.message, 78);
        throw e;
      }
      const { startAgentDaemon } = await import('../../daemon/agent.js');
      const daemon = await startAgentDaemon(opts.config);
      await untilSignal(() => daemon.stop());
    });

  program
    .command('orchestrator')
    .description('run the migration orchestrator (a BullMQ worker; run one or more anywhere)')
    .option('--redis <url>', 'Redis URL (default REDIS_URL)')
    .option('--concurrency <n>', 'migrations in flight at once', '64')
    .option('--lock-ms <ms>', 'job lock: a migration whose orchestrator died is taken up again after about this long', '15000')
    .option('--stalled-check-ms <ms>', 'how often to look for migrations whose orchestrator died', '5000')
    .action(async (opts: { redis?: string; concurrency: string; lockMs: string; stalledCheckMs: string }) => {
      const url = opts.redis ?? process.env.REDIS_URL;
      if (!url) throw new CliError('the orchestrator needs the shared Redis: --redis URL or REDIS_URL');
      const { connectRedis } = await import('../../platform/redis/connection.js');
      const { Orchestration } = await import('../../orchestrator/runtime.js');
      const { createLogger } = await import('../../util/log.js');
      const log = createLogger('roam6-orchestrator');
      const redis = await connectRedis({ url, name: 'roam6-orchestrator', log: (l) => log.info({}, l) });
      const orch = new Orchestration(redis);
      const timing = { lockMs: positiveInt(opts.lockMs, '--lock-ms'), stalledCheckMs: positiveInt(opts.stalledCheckMs, '--stalled-check-ms') };
      const worker = orch.startOrchestrator(positiveInt(opts.concurrency, '--concurrency'), { log, timing });
      log.info({ redis: redis.url, concurrency: Number(opts.concurrency) }, 'orchestrator ready');
      await untilSignal(async () => {
        await worker.close();
        await orch.close();
        await redis.close();
      });
    });
}
