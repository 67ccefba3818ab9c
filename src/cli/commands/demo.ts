/** `roam6 demo` (npm run demo): the paper's experiment in a namespace lab. */
import type { Command } from 'commander';
import { CliError } from '../errors.js';

export function registerDemoCommands(program: Command): void {
  program
    .command('demo')
    .description("reproduce the paper's experiment: stream 520 kbit/s from a guest, migrate it back and forth, chart the traffic")
    .option('--migrations <n>', 'how many migrations', '6')
    .option('--interval-ms <ms>', 'time between migrations', '3000')
    .option('--out <dir>', 'where the chart and the data go', 'roam6-demo')
    .option('--hypervisor <driver>', 'netns (namespace guest) or qemu (a real QEMU guest under TCG)', 'netns')
    .option('--keep-lab', 'leave the lab running afterwards (roam6 lab down --name demo)')
    .action(async (o: { migrations: string; intervalMs: string; out: string; hypervisor: string; keepLab?: boolean }) => {
      if (process.getuid?.() !== 0) throw new CliError('the demo builds network namespaces: run it as root', 77);
      if (o.hypervisor !== 'netns' && o.hypervisor !== 'qemu') throw new CliError(`--hypervisor ${o.hypervisor}: the demo runs netns or qemu guests`, 2);
      const { runDemo, demoReport } = await import('../../demo/demo.js');
      const r = await runDemo({
        migrations: Number(o.migrations),
        intervalMs: Number(o.intervalMs),
        out: o.out,
        keepLab: !!o.keepLab,
        hypervisor: o.hypervisor,
        log: (l) => process.stdout.write(`${l}\n`),
      });
      process.stdout.write(demoReport(r));
    });
}
