/**
 * roam6 command line. Each module registers its own commands (UMIP's ha_vt_init idea):
 * the codec tool, the daemons, and the operator views.
 */
import { Command, CommanderError } from 'commander';
import { CliError } from './errors.js';
import { registerMhCommands } from './commands/mh.js';
import { registerBindingsCommands } from './commands/bindings.js';
import { registerHaCommands } from './commands/ha.js';
import { registerGuestCommands } from './commands/guest.js';
import { registerAgentCommands } from './commands/agent.js';
import { registerMigrateCommands } from './commands/migrate.js';
import { registerLabCommands } from './commands/lab.js';
import { registerLabStreamCommands } from './commands/lab-stream.js';
import { registerDemoCommands } from './commands/demo.js';
import { registerDoctorCommands } from './commands/doctor.js';
import { registerQemuCommands } from './commands/qemu.js';

export function buildProgram(): Command {
  const program = new Command('roam6')
    .description('live-migrate unmodified VMs across IPv6 segments with per-guest NEMO mobile-router proxies')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError('(roam6 --help lists the commands)');
  registerMhCommands(program);
  registerHaCommands(program);
  registerBindingsCommands(program);
  registerGuestCommands(program);
  registerAgentCommands(program);
  registerMigrateCommands(program);
  registerLabStreamCommands(registerLabCommands(program));
  registerDemoCommands(program);
  registerDoctorCommands(program);
  registerQemuCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (e instanceof CliError) {
      process.stderr.write(`roam6: ${e.message}\n`);
      return e.exitCode;
    }
    process.stderr.write(`roam6: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}
