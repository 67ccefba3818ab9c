/**
 * `roam6 qemu start|stop|status GUEST --config agent.json`: run a guest under the qemu driver on
 * this host, with exactly the command line the driver uses for the incoming side of a migration
 * (docs/hypervisors.md). Run it on the host (in its network namespace) that should hold the guest.
 */
import type { Command } from 'commander';
import { CliError } from '../errors.js';

async function driverFrom(configFile: string) {
  const { loadAgentConfig } = await import('../../config/agent-config.js');
  const { qemuConfigSchema } = await import('../../config/hypervisor-config.js');
  const { QemuDriver } = await import('../../platform/qemu/driver.js');
  const config = loadAgentConfig(configFile);
  if (config.hypervisor.driver !== 'qemu') throw new CliError(`${configFile}: hypervisor.driver is ${config.hypervisor.driver}, not qemu`, 2);
  const q = config.hypervisor.qemu ?? qemuConfigSchema.parse({});
  return new QemuDriver({
    stateDir: q.stateDir,
    ...(q.guestsDir ? { guestsDir: q.guestsDir } : {}),
    guests: q.guests,
    defaults: q.defaults,
    binary: q.binary,
    startTimeoutMs: q.startTimeoutMs,
  });
}

export function registerQemuCommands(program: Command): void {
  const qemu = program.command('qemu').description('guests of the qemu hypervisor driver on this host');
  qemu
    .command('start')
    .description('boot the guest here (not a migration); then activate it: POST /api/v1/guests/<id>/activate on the agent')
    .argument('<guest>', 'guest id')
    .requiredOption('--config <file>', 'the agent config (hypervisor.qemu)')
    .action(async (guest: string, o: { config: string }) => {
      const d = await driverFrom(o.config);
      try {
        const r = await d.start(guest);
        process.stdout.write(`${guest}: QEMU pid ${r.pid}, ${r.state}; TAP ${d.paths(guest).tap}; console ${d.paths(guest).serial}\n`);
      } finally {
        d.close();
      }
    });
  qemu
    .command('stop')
    .description('power the guest off here (QMP quit)')
    .argument('<guest>', 'guest id')
    .requiredOption('--config <file>', 'the agent config (hypervisor.qemu)')
    .action(async (guest: string, o: { config: string }) => {
      const d = await driverFrom(o.config);
      try {
        await d.stop(guest);
        process.stdout.write(`${guest}: stopped\n`);
      } finally {
        d.close();
      }
    });
  qemu
    .command('status')
    .description("the guest's QEMU state here (running, inmigrate, postmigrate, absent, …) and its command line")
    .argument('<guest>', 'guest id')
    .requiredOption('--config <file>', 'the agent config (hypervisor.qemu)')
    .option('--json', 'print JSON')
    .action(async (guest: string, o: { config: string; json?: boolean }) => {
      const d = await driverFrom(o.config);
      try {
        const state = await d.state(guest);
        const out = { guest, state, paths: d.paths(guest), commandLine: d.commandLine(guest, { incoming: false }) };
        process.stdout.write(o.json ? `${JSON.stringify(out, null, 2)}\n` : `${guest}: ${state}\n  ${out.commandLine.join(' ')}\n`);
      } finally {
        d.close();
      }
    });
}
