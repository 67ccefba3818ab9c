/**
 * CoA → host id, for the operator views. The HA itself knows only care-of addresses; the host
 * agents' heartbeats in Redis (`host:<id>` → {coa, ...}) say which host holds which CoA. The
 * map is refreshed in the background (never on a request's path) and remembers a CoA after
 * its host's heartbeat lapsed, so a dead host's bindings still show its name.
 */
import type { HostIndex } from './binding-query.js';

/** What the map reads: RedisHostRegistry.list() has this shape. */
export interface HostSource {
  list(): Promise<readonly { host: string; lastSeen: number; alive: { coa: string } | undefined }[]>;
}

export interface HostInfo {
  readonly host: string;
  readonly coa: string | null;
  readonly alive: boolean;
  readonly lastSeen: number | null;
}

const EMPTY: ReadonlySet<string> = new Set();

export class HostMap implements HostIndex {
  private readonly byCoa = new Map<string, string>();
  private readonly byHost = new Map<string, Set<string>>();
  private hosts: HostInfo[] = [];
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | null = null;
  private readonly listeners: (() => void)[] = [];
  /** Epoch ms of the last successful refresh, or null. */
  lastRefresh: number | null = null;
  lastError: string | null = null;

  constructor(private readonly source: HostSource | undefined, private readonly intervalMs = 2000) {}

  readonly hostOf = (coa: string): string | null => this.byCoa.get(coa) ?? null;

  coasOf(host: string): ReadonlySet<string> {
    return this.byHost.get(host) ?? EMPTY;
  }

  /** Known hosts (alive or not), sorted by id. */
  list(): readonly HostInfo[] {
    return this.hosts;
  }

  /** Call `fn` after every successful refresh (e.g. to show queues of new hosts). */
  onRefresh(fn: () => void): void {
    this.listeners.push(fn);
  }

  get enabled(): boolean {
    return this.source !== undefined;
  }

  async start(): Promise<void> {
    if (!this.source) return;
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  refresh(): Promise<void> {
    if (!this.source) return Promise.resolve();
    this.refreshing ??= this.load(this.source).finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async load(source: HostSource): Promise<void> {
    let rows: Awaited<ReturnType<HostSource['list']>>;
    try {
      rows = await withTimeout(source.list(), 1500);
    } catch (e) {
      this.lastError = e instanceof Error ? e.message : String(e);
      return;
    }
    this.lastError = null;
    this.lastRefresh = Date.now();
    const hosts: HostInfo[] = [];
    for (const r of rows) {
      const coa = r.alive?.coa ?? null;
      if (coa !== null) this.assign(coa, r.host);
      hosts.push({ host: r.host, coa: coa ?? this.firstCoa(r.host), alive: r.alive !== undefined, lastSeen: Number.isFinite(r.lastSeen) ? r.lastSeen : null });
    }
    hosts.sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
    this.hosts = hosts;
    for (const fn of this.listeners) {
      try {
        fn();
      } catch (e) {
        this.lastError = `refresh listener failed: ${e instanceof Error ? e.message : String(e)}`;
      }
    }
  }

  private firstCoa(host: string): string | null {
    const s = this.byHost.get(host);
    return s && s.size ? ([...s][0] ?? null) : null;
  }

  private assign(coa: string, host: string): void {
    const prev = this.byCoa.get(coa);
    if (prev === host) return;
    if (prev !== undefined) this.byHost.get(prev)?.delete(coa);
    this.byCoa.set(coa, host);
    let s = this.byHost.get(host);
    if (!s) {
      s = new Set();
      this.byHost.set(host, s);
    }
    s.add(coa);
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
