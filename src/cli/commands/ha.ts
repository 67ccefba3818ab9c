/** `roam6 ha --config FILE`: run the Home Agent until SIGTERM/SIGINT. */
import type { Command } from 'commander';
import { ConfigError } from '../../config/common.js';
import { CliError } from '../errors.js';

export function registerHaCommands(program: Command): void {
  program
    .command('ha')
    .description('run the Home Agent daemon')
    .requiredOption('-c, --config <file>', 'HA configuration (JSON); see docs/configuration.md')
    .option('--check', 'validate the configuration and exit')
    .option('--teardown', 'remove the data plane state this HA installed, then exit')
    .action(async (opts: { config: string; check?: boolean; teardown?: boolean }) => {
      const { loadHaConfig } = await import('../../config/ha-config.js');
      const { startHaDaemon } = await import('../../daemon/ha.js');
      let daemon: Awaited<ReturnType<typeof startHaDaemon>>;
      try {
        if (opts.check) {
          const cfg = loadHaConfig(opts.config);
          process.stdout.write(`${opts.config}: ok (${cfg.guests.length} guest(s), backend ${cfg.dataplane.backend})\n`);
          return;
        }
        daemon = await startHaDaemon(opts.config);
      } catch (e) {
        if (e instanceof ConfigError) throw new CliError(e.message, 78); // EX_CONFIG
        throw e;
      }
      if (opts.teardown) {
        await daemon.stop({ teardown: true });
        return;
      }
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGTERM', stop);
          process.off('SIGINT', stop);
          void daemon.stop().then(resolve);
        };
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
      });
    });
}
