/** `roam6 lab up|down|status`: a whole deployment in network namespaces on this machine. */
import type { Command } from 'commander';
import { CliError } from '../errors.js';
import { apiRequest } from '../api-client.js';

export function registerLabCommands(program: Command): Command {
  const lab = program.command('lab').description('build a roam6 lab from network namespaces on this machine (root)');

  lab
    .command('up')
    .description('build the lab: core router, HA, correspondent, two hosts on different /64s, N guests; start everything')
    .option('--name <name>', 'lab name (namespaces r6lab-<name>-*)', 'demo')
    .option('--guests <n>', 'guests to start on host-a', '1')
    .option('--hypervisor <driver>', 'netns (namespace guests) or qemu (real QEMU guests under TCG; docs/hypervisors.md)', 'netns')
    .option('--guest-image <dir>', 'qemu: where the guest image is built (deploy/guest-image/build.sh)')
    .action(async (o: { name: string; guests: string; hypervisor: string; guestImage?: string }) => {
      if (o.hypervisor !== 'netns' && o.hypervisor !== 'qemu') throw new CliError(`--hypervisor ${o.hypervisor}: the lab runs netns or qemu guests`, 2);
      if (process.getuid?.() !== 0) throw new CliError('the lab needs root (network namespaces)', 77);
      const { labUp } = await import('../../lab/lab.js');
      const s = await labUp({
        name: o.name,
        guests: Number(o.guests),
        hypervisor: o.hypervisor,
        ...(o.guestImage ? { guestImageDir: o.guestImage } : {}),
        log: (l) => process.stderr.write(`  ${l}\n`),
      });
      process.stdout.write(
        [
          `lab ${s.name} is up (${s.guests.length} ${s.hypervisor ?? 'netns'} guest(s)); state and logs in ${s.dir}`,
          ...(s.qemu ? [`  guest consoles: ${s.qemu.stateDirs['host-a']}/*.serial, ${s.qemu.stateDirs['host-b']}/*.serial`] : []),
          `  export REDIS_URL=${s.redisUrl}`,
          `  export ROAM6_API=${s.haApi}`,
          `  roam6 bindings`,
          s.guests[0] ? `  roam6 migrate ${s.guests[0].id} --to host-b` : '',
          `  roam6 lab down --name ${s.name}`,
          '',
        ].filter((l) => l !== '').join('\n') + '\n',
      );
    });

  lab
    .command('down')
    .description('stop every lab process and remove every lab namespace (also after a crash)')
    .option('--name <name>', 'lab name', 'demo')
    .action(async (o: { name: string }) => {
      const { labDown } = await import('../../lab/lab.js');
      const r = await labDown(o.name);
      process.stdout.write(`lab ${o.name} is down (${r.killed} process(es) stopped, ${r.namespaces} namespace(s) removed)\n`);
    });

  lab
    .command('status')
    .description('what the lab runs')
    .option('--name <name>', 'lab name', 'demo')
    .option('--json', 'print JSON')
    .action(async (o: { name: string; json?: boolean }) => {
      const { readLabState } = await import('../../lab/lab.js');
      const s = readLabState(o.name);
      if (!s) throw new CliError(`no lab ${o.name} (roam6 lab up --name ${o.name})`, 3);
      const alive = (pid: number) => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      const procs = Object.fromEntries(Object.entries(s.pids).map(([k, pid]) => [k, { pid, alive: alive(pid) }]));
      const ha = await apiRequest(s.haApi, 'GET', '/api/v1/health').catch(() => null);
      const out = { name: s.name, dir: s.dir, redisUrl: s.redisUrl, haApi: s.haApi, processes: procs, bindings: (ha?.body as { bindings?: number } | null)?.bindings ?? null, guests: s.guests };
      if (o.json) {
        process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
        return;
      }
      process.stdout.write(`lab ${s.name} (${s.dir})\n`);
      for (const [k, v] of Object.entries(procs)) process.stdout.write(`  ${k.padEnd(14)} pid ${String(v.pid).padEnd(8)} ${v.alive ? 'running' : 'DEAD'}\n`);
      process.stdout.write(`  bindings at the HA: ${out.bindings ?? 'HA unreachable'}\n  guests: ${s.guests.map((g) => `${g.id}`).join(', ')}\n`);
    });
  return lab;
}
