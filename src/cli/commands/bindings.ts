/**
 * The operator's binding views, over the HA's HTTP API:
 *   roam6 bindings [filters]      table for people (fits the terminal) or --json
 *   roam6 bindings watch          live: redraws the table in place on a terminal, event lines otherwise
 *   roam6 binding GUEST           one guest's story: binding, MNPs, counters, handover timeline
 * The columns are declared once, next to the view (api/binding-view.ts BINDING_COLUMNS).
 */
import type { Command } from 'commander';
import { BINDING_COLUMNS, shortDuration, shortMs, type BindingView, type HandoverDetailView } from '../../api/binding-view.js';
import { apiBase, apiGet } from '../api-client.js';
import { connectEvents } from '../sse-client.js';
import { CliError } from '../errors.js';
import { renderTable, type Column } from '../table.js';

interface ListResponse {
  total: number;
  offset: number;
  limit: number;
  bindings: BindingView[];
}

interface ListOpts {
  api?: string;
  host?: string;
  coa?: string;
  prefix?: string;
  search?: string;
  state?: string;
  expiringWithin?: string;
  movedWithin?: string;
  sort?: string;
  desc?: boolean;
  limit: string;
  offset: string;
  json?: boolean;
}

/** "90" | "90s" | "15m" | "1h" | "2d" → seconds. */
export function parseSeconds(text: string, flag: string): number {
  const m = /^(\d+)\s*(s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new CliError(`${flag}: ${JSON.stringify(text)} is not a duration (90, 90s, 15m, 1h, 2d)`, 2);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
}

function listQuery(o: ListOpts, limit?: number): string {
  const q = new URLSearchParams({ limit: String(limit ?? o.limit), offset: o.offset });
  if (o.host) q.set('host', o.host);
  if (o.coa) q.set('coa', o.coa);
  if (o.prefix) q.set('prefix', o.prefix);
  if (o.search) q.set('q', o.search);
  if (o.state) q.set('state', o.state);
  if (o.expiringWithin) q.set('expiringWithin', String(parseSeconds(o.expiringWithin, '--expiring-within')));
  if (o.movedWithin) q.set('movedWithin', String(parseSeconds(o.movedWithin, '--moved-within')));
  if (o.sort) q.set('sort', o.sort);
  if (o.desc) q.set('order', 'desc');
  return `/api/v1/bindings?${q}`;
}

function table(rows: readonly BindingView[], now: number, width?: number): string {
  const cols: Column<BindingView>[] = BINDING_COLUMNS.map((c) => ({
    header: c.header,
    value: (v: BindingView) => c.value(v, now),
    ...(c.flexible ? { flexible: true } : {}),
    ...(c.align ? { align: c.align } : {}),
    ...(c.dropOrder !== undefined ? { dropOrder: c.dropOrder } : {}),
  }));
  return renderTable(rows, cols, width);
}

function filterOptions(cmd: Command): Command {
  return cmd
    .option('--api <url>', 'HA API base URL (default ROAM6_API or http://127.0.0.1:8446)')
    .option('--host <id>', 'only bindings at this host (CoA → host from the heartbeats)')
    .option('--coa <addr>', 'only bindings at this care-of address')
    .option('--prefix <addr>', 'the binding whose MNP covers this address or prefix (who owns it?)')
    .option('--search <text>', 'guest id, CoA, host or MNP contains this text')
    .option('--state <state>', 'registered | expiring (under 10% of the lifetime left: refreshes failing)')
    .option('--expiring-within <dur>', 'lifetime ends within this (90s, 15m, 1h)')
    .option('--moved-within <dur>', 'the last move was within this (e.g. 1h)')
    .option('--sort <key>', 'guest | host | coa | updatedAt | expiresAt | lastMove | registeredAt')
    .option('--desc', 'sort descending');
}

export function registerBindingsCommands(program: Command): void {
  const bindings = filterOptions(program.command('bindings').description('list per-guest bindings at the Home Agent'))
    .option('--limit <n>', 'page size (1–1000)', '1000')
    .option('--offset <n>', 'skip this many', '0')
    .option('--json', 'print JSON')
    .action(async (opts: ListOpts) => {
      const res = await apiGet<ListResponse>(apiBase(opts.api), listQuery(opts));
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
        return;
      }
      const shown = res.bindings.length;
      const range = shown === 0 ? '0' : res.offset > 0 ? `${res.offset + 1}–${res.offset + shown}` : String(shown);
      process.stdout.write(`${table(res.bindings, Date.now())}\n${range} of ${res.total} binding(s)\n`);
    });

  filterOptions(bindings.command('watch').description('live view of the bindings, updated from the HA event stream (Ctrl-C to quit)'))
    .option('--limit <n>', 'rows to show (default: what fits the terminal)')
    // Options given before "watch" belong to `bindings`: take both, but only watch's own --limit.
    .action((own: { limit?: string }, cmd: Command) => watch({ ...cmd.optsWithGlobals<ListOpts>(), limit: own.limit }));

  program
    .command('binding')
    .description("one guest's whole story: binding, MNPs, counters, handover history")
    .argument('<guest>', 'guest id (NAI), e.g. g1@demo.lab')
    .option('--api <url>', 'HA API base URL (default ROAM6_API or http://127.0.0.1:8446)')
    .option('--json', 'print JSON')
    .action(async (guest: string, opts: { api?: string; json?: boolean }) => {
      const v = await apiGet<BindingView>(apiBase(opts.api), `/api/v1/bindings/${encodeURIComponent(guest)}`);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
        return;
      }
      process.stdout.write(story(v, Date.now()));
    });
}

// --- roam6 binding GUEST -----------------------------------------------------------------------

const clock = (iso: string) => iso.slice(11, 19);
const day = (iso: string) => iso.slice(0, 10);
const ago = (iso: string, now: number) => `${shortDuration((now - Date.parse(iso)) / 1000)} ago`;
const n = (x: number) => x.toLocaleString('en-US');
const bytes = (b: number) => (b < 1024 ? `${b} B` : b < 1 << 20 ? `${(b / 1024).toFixed(1)} KiB` : `${(b / (1 << 20)).toFixed(1)} MiB`);
const at = (addr: string, host: string | null) => (host ? `${host} (${addr})` : addr);

export function story(v: BindingView, now: number): string {
  const out: string[] = [];
  const since = v.lastHandover?.at ?? v.registeredAt;
  out.push(`${v.guest} — ${v.state}, at ${at(v.coa, v.host)} since ${day(since)} ${clock(since)} UTC (${ago(since, now)})`);
  const kv = (k: string, val: string) => out.push(`  ${k.padEnd(12)}${val}`);
  kv('MNPs', v.mnps.join(', ') || '-');
  kv('HA', `${v.haAddress}   seq ${v.seq}   flags ${v.flags.join(',') || '-'}`);
  kv('lifetime', `${shortDuration(v.lifetimeSec)} granted, ${shortDuration(v.lifetimeLeftSec)} left (expires ${clock(v.expiresAt)} UTC)`);
  kv('registered', `${day(v.registeredAt)} ${clock(v.registeredAt)} UTC (${ago(v.registeredAt, now)}); last update ${ago(v.updatedAt, now)}`);
  if (v.bus) {
    const rej = v.lastRejection ? `; last rejected ${ago(v.lastRejection.at, now)}: ${v.lastRejection.status} ${v.lastRejection.statusText}${v.lastRejection.detail ? ` (${v.lastRejection.detail})` : ''}` : '';
    kv('BUs', `${n(v.bus.accepted)} accepted, ${n(v.bus.rejected)} rejected, ${n(v.bus.dropped)} dropped${rej}`);
  }
  if (v.dataplane) {
    const d = v.dataplane;
    kv('traffic', `to guest ${n(d.txPackets)} pkts / ${bytes(d.txBytes)}   from guest ${n(d.rxPackets)} pkts / ${bytes(d.rxBytes)}   dropped ${n(d.rxDropped)}`);
  } else kv('traffic', 'no data-plane counters');
  const history = v.history ?? [];
  out.push('');
  if (history.length === 0) {
    out.push('  no handovers: the guest has stayed at this CoA since it registered');
  } else {
    out.push(`  handovers (${history.length}, oldest first; duration = guest resumed → BA when the orchestrator recorded it, else HA side)`);
    history.forEach((h: HandoverDetailView, i) => {
      const last = i === history.length - 1;
      const dur = h.durationMs === null ? '-' : `${shortMs(h.durationMs)}${h.durationSource === 'ha' ? ' (HA)' : ''}`;
      const mig = h.migration ? `   migration ${shortMs(h.migration.totalMs)}, pause ${shortMs(h.migration.pauseMs)}` : '';
      out.push(`  ${last ? '└' : '├'}─ ${day(h.at)} ${clock(h.at)}  ${at(h.from, h.fromHost)} → ${at(h.to, h.toHost)}   ${dur}${mig}`);
    });
  }
  return `${out.join('\n')}\n`;
}

// --- roam6 bindings watch ----------------------------------------------------------------------

interface WatchEvent {
  type: string;
  guest: string;
  at: string;
  coa?: string;
  host?: string | null;
  from?: string;
  fromHost?: string | null;
  seq?: number;
  status?: number;
  statusText?: string;
  detail?: string;
  durationMs?: number;
}

export function eventLine(e: WatchEvent): string {
  const where = (a?: string, h?: string | null) => (a ? (h ? `${h} ${a}` : a) : '');
  const t = e.at.slice(11, 23);
  switch (e.type) {
    case 'moved':
      return `${t}  moved         ${e.guest}  ${where(e.from, e.fromHost)} → ${where(e.coa, e.host)}  seq ${e.seq ?? '-'}  ${e.durationMs !== undefined ? shortMs(e.durationMs) : ''}`.trimEnd();
    case 'rejected':
      return `${t}  rejected      ${e.guest}  ${e.status ?? ''} ${e.statusText ?? ''}${e.coa ? `  from ${where(e.coa, e.host)}` : ''}${e.detail ? `  (${e.detail})` : ''}`;
    default:
      return `${t}  ${e.type.padEnd(12)}  ${e.guest}  ${where(e.coa, e.host)}${e.seq !== undefined ? `  seq ${e.seq}` : ''}`.trimEnd();
  }
}

function watch(opts: Omit<ListOpts, 'limit'> & { limit: string | undefined }): Promise<void> {
  const base = apiBase(opts.api);
  const tty = !!process.stdout.isTTY;
  // The stream carries every event; on a terminal the list (with the filters) is refetched after each.
  const path = '/api/v1/events';
  return new Promise<void>((resolve, reject) => {
    let conn: { close(): void } | null = null;
    const stop = () => {
      conn?.close();
      if (tty) process.stdout.write('\x1b[?25h\x1b[?1049l');
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);

    if (!tty) {
      conn = connectEvents(base, path, {
        onEvent(e) {
          if (e.event === 'hello' || e.event === 'reset') return;
          try {
            process.stdout.write(`${eventLine(JSON.parse(e.data) as WatchEvent)}\n`);
          } catch {
            /* not ours */
          }
        },
        onState(state, detail) {
          if (state === 'open') process.stderr.write(`roam6: watching the HA's events at ${base} (Ctrl-C to quit)\n`);
          if (state === 'error') process.stderr.write(`roam6: event stream: ${detail ?? 'error'}; retrying\n`);
        },
      });
      return;
    }

    // Terminal: alternate screen, redraw in place; the list is refetched (at most 4 times a second) after events.
    process.stdout.write('\x1b[?1049h\x1b[?25l');
    let rows: ListResponse | null = null;
    let status = 'connecting…';
    const recent: string[] = [];
    let fetching = false;
    let again = false;
    let lastFetch = 0;
    const render = () => {
      const width = process.stdout.columns || 120;
      const height = process.stdout.rows || 40;
      const now = Date.now();
      const lines: string[] = [];
      lines.push(`roam6 bindings — ${base} — ${status} — ${new Date(now).toISOString().slice(11, 19)} UTC   (Ctrl-C quits)`);
      if (rows) {
        lines.push(...table(rows.bindings, now, width).split('\n'));
        lines.push(`${rows.bindings.length} of ${rows.total} binding(s)`);
      }
      lines.push('', 'recent events:', ...recent.slice(-5));
      const out = lines.slice(0, height).map((l) => (l.length > width ? `${l.slice(0, width - 1)}…` : l));
      process.stdout.write(`\x1b[H${out.map((l) => `${l}\x1b[K`).join('\n')}\x1b[J`);
    };
    const fetchRows = async () => {
      if (fetching) {
        again = true;
        return;
      }
      fetching = true;
      const wait = 250 - (Date.now() - lastFetch);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      lastFetch = Date.now();
      try {
        const fit = Math.max(1, (process.stdout.rows || 40) - 10);
        rows = await apiGet<ListResponse>(base, listQuery({ ...opts, offset: '0', limit: opts.limit ?? String(fit) }));
      } catch (e) {
        status = e instanceof Error ? e.message : String(e);
      }
      fetching = false;
      render();
      if (again) {
        again = false;
        void fetchRows();
      }
    };
    conn = connectEvents(base, path, {
      onEvent(e) {
        if (e.event === 'hello' || e.event === 'reset') {
          void fetchRows();
          return;
        }
        try {
          recent.push(eventLine(JSON.parse(e.data) as WatchEvent));
          if (recent.length > 50) recent.splice(0, recent.length - 50);
        } catch {
          /* ignore */
        }
        void fetchRows();
      },
      onState(state, detail) {
        status = state === 'open' ? 'live' : state === 'closed' ? 'reconnecting…' : `error: ${detail ?? ''}; retrying`;
        render();
      },
    });
    process.stdout.on('resize', () => void fetchRows());
    // Ages and lifetimes tick even without events.
    const tick = setInterval(render, 1000);
    tick.unref();
    void fetchRows().catch(reject);
  });
}
