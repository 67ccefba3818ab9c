/** `roam6 bindings`: every per-guest binding at the HA, as a table for people or JSON. */
import type { Command } from 'commander';
import type { BindingView } from '../../api/binding-view.js';
import { apiBase, apiGet } from '../api-client.js';
import { duration, renderTable } from '../table.js';

interface ListResponse {
  total: number;
  bindings: BindingView[];
}

export function registerBindingsCommands(program: Command): void {
  program
    .command('bindings')
    .description('list per-guest bindings at the Home Agent')
    .option('--api <url>', 'HA API base URL (default ROAM6_API or http://127.0.0.1:8446)')
    .option('--coa <addr>', 'only bindings at this care-of address')
    .option('--prefix <addr>', 'the binding whose MNP covers this address or prefix')
    .option('--state <state>', 'registered | expiring')
    .option('--limit <n>', 'page size', '1000')
    .option('--offset <n>', 'skip this many', '0')
    .option('--json', 'print JSON')
    .action(async (opts: { api?: string; coa?: string; prefix?: string; state?: string; limit: string; offset: string; json?: boolean }) => {
      const q = new URLSearchParams({ limit: opts.limit, offset: opts.offset });
      if (opts.coa) q.set('coa', opts.coa);
      if (opts.prefix) q.set('prefix', opts.prefix);
      if (opts.state) q.set('state', opts.state);
      const res = await apiGet<ListResponse>(apiBase(opts.api), `/api/v1/bindings?${q}`);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
        return;
      }
      const now = Date.now();
      process.stdout.write(
        `${renderTable(res.bindings, [
          { header: 'GUEST', value: (b) => b.guest, flexible: true },
          { header: 'MNPS', value: (b) => b.mnps.join(','), flexible: true },
          { header: 'COA', value: (b) => b.coa },
          { header: 'SEQ', value: (b) => String(b.seq), align: 'right' },
          { header: 'AGE', value: (b) => duration((now - Date.parse(b.registeredAt)) / 1000), align: 'right' },
          { header: 'LEFT', value: (b) => duration(b.lifetimeLeftSec), align: 'right' },
          { header: 'STATE', value: (b) => b.state },
          { header: 'LAST MOVE', value: (b) => (b.lastHandover ? `${duration((now - Date.parse(b.lastHandover.at)) / 1000)} ago` : '-'), align: 'right' },
        ])}\n${res.bindings.length} of ${res.total} binding(s)\n`,
      );
    });
}
