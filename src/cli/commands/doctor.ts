/** `roam6 doctor`: check that this host has what roam6 needs (docs/deployment.md). */
import type { Command } from 'commander';

export function registerDoctorCommands(program: Command): void {
  program
    .command('doctor')
    .description('check this host: kernel features (probed in a throwaway namespace as root), tools, sysctls')
    .option('--role <role...>', 'also check what these need: qemu, libvirt, xen, lab, ha')
    .option('--no-probe', 'read the kernel config only; do not create a throwaway namespace')
    .option('--json', 'print the report as JSON')
    .action(async (o: { role?: string[]; probe: boolean; json?: boolean }) => {
      const { runDoctor, formatDoctorReport, doctorExitCode } = await import('../../doctor/doctor.js');
      const r = runDoctor({ probe: o.probe && process.getuid?.() === 0, roles: o.role ?? [] });
      process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : formatDoctorReport(r));
      process.exitCode = doctorExitCode(r);
    });
}
