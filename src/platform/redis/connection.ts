/**
 * One way to reach Redis for every roam6 process (DESIGN §3): the URL in `REDIS_URL`, or, when
 * there is none, a private embedded redis-server that the returned handle owns.
 *
 * URL forms:
 *   redis://[[user]:password@]host[:port][/db]        plain TCP (IPv6 literal: redis://[2001:db8::1]:6379)
 *   rediss://[[user]:password@]host[:port][/db]       TLS; see TLS_ENV below for CA and client cert
 *   unix:///path/to/redis.sock[?password=..&user=..&db=N]
 *   redis+cluster://[[user]:password@]host:port,host:port,...   Redis Cluster (ioredis Cluster)
 *   rediss+cluster://...                              Redis Cluster over TLS
 *
 * Clients are set up for BullMQ (`maxRetriesPerRequest: null`, ready check on): commands wait
 * through an outage instead of failing, and `duplicate()` gives workers their own connection.
 * Connection errors never surface as unhandled 'error' events: each client gets a listener
 * that logs one line when the connection is lost and one when it is back.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { startEmbeddedRedis, type EmbeddedRedis, type EmbeddedRedisOptions } from './embedded.js';

/** A standalone client or a Cluster client; both speak the same command API. */
export type RedisClient = Redis | Cluster;

/**
 * Environment variables read for `rediss://` URLs (file paths, PEM):
 * ROAM6_REDIS_TLS_CA (trusted CA bundle; default: Node's CA store), ROAM6_REDIS_TLS_CERT and
 * ROAM6_REDIS_TLS_KEY (client certificate, for servers with `tls-auth-clients yes`),
 * ROAM6_REDIS_TLS_SERVERNAME (name to verify instead of the URL host). Server certificates are
 * always verified.
 */
export const TLS_ENV = {
  ca: 'ROAM6_REDIS_TLS_CA',
  cert: 'ROAM6_REDIS_TLS_CERT',
  key: 'ROAM6_REDIS_TLS_KEY',
  servername: 'ROAM6_REDIS_TLS_SERVERNAME',
} as const;

export interface ConnectRedisOptions {
  /** Redis URL; default `REDIS_URL` from the environment. Empty or unset: embedded server. */
  readonly url?: string;
  /** Client name shown by CLIENT LIST and in log lines, e.g. "roam6-ha". */
  readonly name: string;
  /** Options for the embedded server started when there is no URL. */
  readonly embedded?: EmbeddedRedisOptions;
  /** How long to wait for the first ready connection. Default 10 s. */
  readonly connectTimeoutMs?: number;
  /** Where connection-state lines go. Default: one line on stderr. */
  readonly log?: (line: string) => void;
  /** Environment for REDIS_URL and the TLS variables. Default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
}

/** A connected client plus what it owns. */
export interface RedisHandle {
  readonly client: RedisClient;
  /** The URL with any password replaced by "***": safe to log. */
  readonly url: string;
  /** The embedded server this handle started and will stop on close(), if any. */
  readonly embedded?: EmbeddedRedis;
  /** A new connection with the same settings (BullMQ workers, subscribers). Closed by close(). */
  duplicate(): RedisClient;
  /** Close every connection made through this handle, then stop the embedded server. Idempotent. */
  close(): Promise<void>;
}

/** The URL could not be understood; the message names the URL (password redacted) and the part at fault. */
export class RedisUrlError extends TypeError {
  static override readonly name = 'RedisUrlError';
  readonly code = 'ROAM6_ERR_REDIS_URL';
  constructor(message: string) {
    super(message);
    this.name = 'RedisUrlError';
  }
}

/** The first connection did not become ready. */
export class RedisConnectError extends Error {
  static override readonly name = 'RedisConnectError';
  readonly code = 'ROAM6_ERR_REDIS_CONNECT';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RedisConnectError';
  }
}

/** Where a URL points, as ioredis options. */
export type RedisTarget =
  | { readonly kind: 'standalone'; readonly options: RedisOptions; readonly display: string }
  | {
      readonly kind: 'cluster';
      readonly nodes: readonly { readonly host: string; readonly port: number }[];
      readonly redisOptions: NonNullable<ClusterOptions['redisOptions']>;
      readonly display: string;
    };

/** Settings every roam6 connection shares (BullMQ requires maxRetriesPerRequest: null). */
const COMMON_OPTIONS = { maxRetriesPerRequest: null, enableReadyCheck: true } as const;
const DEFAULT_PORT = 6379;

/**
 * Connect to the Redis named by `opts.url` / REDIS_URL, or start an embedded one. Resolves once
 * the client is ready; rejects with one clear error (URL redacted) if it is not within
 * `connectTimeoutMs`, or at once on an authentication failure or a server certificate the client
 * does not trust (unknown CA, wrong name, expired).
 */
export async function connectRedis(opts: ConnectRedisOptions): Promise<RedisHandle> {
  const env = opts.env ?? process.env;
  const url = opts.url ?? env['REDIS_URL'] ?? '';
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const embedded = url === '' ? await startEmbeddedRedis(opts.embedded) : undefined;
  try {
    const target = embedded
      ? parseRedisUrl(withPassword(embedded.url, opts.embedded?.password), env)
      : parseRedisUrl(url, env);
    const client = createClient(target, opts.name);
    const handle = new Handle(client, target.display, opts.name, log, embedded);
    await handle.ready(opts.connectTimeoutMs ?? 10_000);
    return handle;
  } catch (err) {
    await embedded?.stop();
    throw err;
  }
}

function withPassword(url: string, password: string | undefined): string {
  return password === undefined ? url : `${url}?password=${encodeURIComponent(password)}`;
}

function createClient(target: RedisTarget, name: string): RedisClient {
  const connectionName = name.replace(/\s+/g, '-');
  if (target.kind === 'standalone') {
    return new Redis({ ...target.options, ...COMMON_OPTIONS, connectionName, lazyConnect: true });
  }
  const options: ClusterOptions = {
    enableReadyCheck: true,
    lazyConnect: true,
    redisOptions: { ...target.redisOptions, maxRetriesPerRequest: null, connectionName },
  };
  return new Cluster(
    target.nodes.map((n) => ({ host: n.host, port: n.port })),
    options,
  );
}

/** Parse a roam6 Redis URL (forms in the module comment) into ioredis options. */
export function parseRedisUrl(url: string, env: NodeJS.ProcessEnv = process.env): RedisTarget {
  const scheme = /^([a-z+]+):\/\//i.exec(url)?.[1]?.toLowerCase();
  switch (scheme) {
    case 'redis':
    case 'rediss':
      return parseTcpUrl(url, scheme === 'rediss', env);
    case 'unix':
      return parseUnixUrl(url);
    case 'redis+cluster':
    case 'rediss+cluster':
      return parseClusterUrl(url, scheme === 'rediss+cluster', env);
    default:
      throw new RedisUrlError(
        `unsupported Redis URL ${JSON.stringify(redactUrl(url))}: expected redis://, rediss://, unix:// or redis+cluster://`,
      );
  }
}

function parseTcpUrl(url: string, tls: boolean, env: NodeJS.ProcessEnv): RedisTarget {
  const u = parseWhatwg(url);
  const host = stripBrackets(u.hostname);
  if (!host) throw new RedisUrlError(`Redis URL ${JSON.stringify(redactUrl(url))} has no host`);
  const options: RedisOptions = {
    host,
    port: u.port ? Number(u.port) : DEFAULT_PORT,
    db: parseDb(u.pathname.replace(/^\//, ''), url),
    ...credentials(decodeURIComponent(u.username), u.password ? decodeURIComponent(u.password) : undefined),
    ...(tls ? { tls: tlsOptions(host, env) } : {}),
  };
  return { kind: 'standalone', options, display: redactUrl(url) };
}

function parseUnixUrl(url: string): RedisTarget {
  const u = parseWhatwg(url);
  if (u.host !== '') throw new RedisUrlError(`unix Redis URL needs three slashes (unix:///path/to/redis.sock), got ${JSON.stringify(redactUrl(url))}`);
  const path = decodeURIComponent(u.pathname);
  if (path === '' || path === '/') throw new RedisUrlError(`unix Redis URL ${JSON.stringify(redactUrl(url))} has no socket path`);
  const params = u.searchParams;
  const options: RedisOptions = {
    path,
    db: parseDb(params.get('db') ?? '', url),
    ...credentials(params.get('user') ?? '', params.get('password') ?? undefined),
  };
  return { kind: 'standalone', options, display: redactUrl(url) };
}

function parseClusterUrl(url: string, tls: boolean, env: NodeJS.ProcessEnv): RedisTarget {
  const rest = url.replace(/^[a-z+]+:\/\//i, '').replace(/\/$/, '');
  const at = rest.lastIndexOf('@');
  const auth = at >= 0 ? rest.slice(0, at) : '';
  const hostList = at >= 0 ? rest.slice(at + 1) : rest;
  const colon = auth.indexOf(':');
  const username = decodeURIComponent(colon >= 0 ? auth.slice(0, colon) : auth);
  const password = colon >= 0 ? decodeURIComponent(auth.slice(colon + 1)) : undefined;
  const nodes = hostList.split(',').map((part) => parseHostPort(part.trim(), url));
  if (nodes.length === 0 || nodes.some((n) => !n.host)) {
    throw new RedisUrlError(`cluster Redis URL ${JSON.stringify(redactUrl(url))} needs host:port[,host:port...]`);
  }
  const first = nodes[0];
  const redisOptions = {
    ...credentials(username, password),
    ...(tls && first ? { tls: tlsOptions(first.host, env) } : {}),
  };
  return { kind: 'cluster', nodes, redisOptions, display: redactUrl(url) };
}

function parseHostPort(text: string, url: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]/]+))(?::(\d{1,5}))?$/.exec(text);
  if (!m) throw new RedisUrlError(`bad node ${JSON.stringify(text)} in Redis URL ${JSON.stringify(redactUrl(url))}: use host:port or [v6addr]:port`);
  const port = m[3] ? Number(m[3]) : DEFAULT_PORT;
  if (port < 1 || port > 65535) throw new RedisUrlError(`bad port in ${JSON.stringify(text)} (Redis URL ${JSON.stringify(redactUrl(url))})`);
  return { host: m[1] ?? m[2] ?? '', port };
}

function parseWhatwg(url: string): URL {
  try {
    return new URL(url);
  } catch {
    throw new RedisUrlError(`malformed Redis URL ${JSON.stringify(redactUrl(url))}`);
  }
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function parseDb(text: string, url: string): number {
  if (text === '') return 0;
  if (!/^\d{1,5}$/.test(text)) throw new RedisUrlError(`bad database number ${JSON.stringify(text)} in Redis URL ${JSON.stringify(redactUrl(url))}`);
  return Number(text);
}

function credentials(username: string, password: string | undefined): { username?: string; password?: string } {
  return { ...(username ? { username } : {}), ...(password !== undefined && password !== '' ? { password } : {}) };
}

function tlsOptions(host: string, env: NodeJS.ProcessEnv): ConnectionOptions {
  const file = (name: string): Buffer | undefined => {
    const path = env[name];
    if (!path) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new RedisUrlError(`cannot read ${name}=${path}: ${(err as Error).message}`);
    }
  };
  const ca = file(TLS_ENV.ca);
  const cert = file(TLS_ENV.cert);
  const key = file(TLS_ENV.key);
  if ((cert === undefined) !== (key === undefined)) {
    throw new RedisUrlError(`${TLS_ENV.cert} and ${TLS_ENV.key} must be set together`);
  }
  // SNI carries host names only (RFC 6066; Node warns, DEP0123, for an IP): for an IP literal
  // the certificate is still checked against the IP through `host`.
  const servername = env[TLS_ENV.servername] || (isIP(host) ? undefined : host);
  return {
    ...(servername ? { servername } : {}),
    rejectUnauthorized: true,
    ...(ca ? { ca } : {}),
    ...(cert && key ? { cert, key } : {}),
  };
}

/** The URL with any password (userinfo or `password=` query) replaced by "***". */
export function redactUrl(url: string): string {
  return url
    .replace(/^([a-z+]+:\/\/)([^@/]*?):([^@/]*)@/i, (_, scheme: string, user: string) => `${scheme}${user}:***@`)
    .replace(/([?&]password=)[^&]*/i, '$1***');
}

/** One line for any error ioredis or net may raise (AggregateError from dual-stack connects has no message). */
export function describeRedisError(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) {
    return [...new Set(err.errors.map(describeRedisError))].join(', ');
  }
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return err.message || code || err.name;
  }
  return String(err);
}

function isAuthError(message: string): boolean {
  return /WRONGPASS|NOAUTH|invalid password|invalid username-password/i.test(message);
}

/** OpenSSL/Node codes for a server certificate this client will not trust: retrying cannot help. */
const TLS_VERIFY_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function tlsVerifyHint(code: string): string {
  return code === 'ERR_TLS_CERT_ALTNAME_INVALID'
    ? `the URL's host (or ${TLS_ENV.servername}) must match a name in the server certificate`
    : `set ${TLS_ENV.ca} to the CA that signed the server certificate`;
}

class Handle implements RedisHandle {
  private readonly duplicates = new Set<RedisClient>();
  private closing: Promise<void> | undefined;

  constructor(
    readonly client: RedisClient,
    readonly url: string,
    private readonly name: string,
    private readonly log: (line: string) => void,
    readonly embedded: EmbeddedRedis | undefined,
  ) {}

  /** Connect and wait for 'ready'; fail with the last error after `timeoutMs`, or at once on auth errors. */
  async ready(timeoutMs: number): Promise<void> {
    const client = this.client;
    const { outcome, lastError } = await firstReady(client, timeoutMs);
    if (outcome === 'ready') {
      watchConnection(client, this.name, this.url, this.log);
      return;
    }
    client.on('error', () => undefined);
    client.disconnect();
    const why =
      outcome === 'auth'
        ? `authentication failed: ${lastError}`
        : outcome === 'tls'
          ? `TLS: server certificate not accepted: ${lastError}`
          : `not ready within ${timeoutMs} ms: ${lastError}`;
    throw new RedisConnectError(`cannot connect to Redis at ${this.url} (client ${this.name}): ${why}`);
  }

  duplicate(): RedisClient {
    if (this.closing) throw new RedisConnectError(`Redis handle ${this.name} (${this.url}) is closed`);
    const dup: RedisClient =
      this.client instanceof Cluster
        ? this.client.duplicate(undefined, { lazyConnect: false })
        : this.client.duplicate({ lazyConnect: false });
    watchConnection(dup, this.name, this.url, this.log);
    this.duplicates.add(dup);
    dup.once('end', () => this.duplicates.delete(dup));
    return dup;
  }

  close(): Promise<void> {
    this.closing ??= this.closeAll();
    return this.closing;
  }

  private async closeAll(): Promise<void> {
    await Promise.all([...this.duplicates].map(closeClient));
    await closeClient(this.client);
    await this.embedded?.stop();
  }
}

/** Start connecting and wait for the first 'ready', an auth error, or the timeout. */
function firstReady(
  client: RedisClient,
  timeoutMs: number,
): Promise<{ outcome: 'ready' | 'auth' | 'tls' | 'timeout'; lastError: string }> {
  return new Promise((resolve) => {
    let lastError = 'no answer';
    const settle = (outcome: 'ready' | 'auth' | 'tls' | 'timeout'): void => {
      clearTimeout(timer);
      client.off('error', onError);
      client.off('ready', onReady);
      resolve({ outcome, lastError });
    };
    const onError = (err: unknown): void => {
      lastError = describeRedisError(err);
      if (isAuthError(lastError)) return settle('auth');
      const code = (err as NodeJS.ErrnoException | undefined)?.code;
      if (code && TLS_VERIFY_CODES.has(code)) {
        lastError = `${lastError} (${code}); ${tlsVerifyHint(code)}`;
        settle('tls');
      }
    };
    const onReady = (): void => settle('ready');
    const timer = setTimeout(() => settle('timeout'), timeoutMs);
    client.on('error', onError);
    client.once('ready', onReady);
    client.connect().catch(onError);
  });
}

/**
 * Log one line per outage, not one per retry: "lost" when a ready connection fails or starts
 * reconnecting, "back" on the next ready. The 'error' listener also keeps errors from being
 * unhandled (ioredis emits connection errors as 'error' events).
 */
function watchConnection(client: RedisClient, name: string, url: string, log: (line: string) => void): void {
  let down = false;
  const lost = (why: string): void => {
    if (down) return;
    down = true;
    log(`redis ${name} (${url}): connection lost: ${why}; retrying`);
  };
  client.on('error', (err: unknown) => lost(describeRedisError(err)));
  client.on('reconnecting', () => lost('connection closed'));
  client.on('ready', () => {
    if (!down) return;
    down = false;
    log(`redis ${name} (${url}): connection back`);
  });
}

/** Read status afresh (a plain property read would stay narrowed by earlier checks). */
function isEnded(client: RedisClient): boolean {
  return client.status === 'end';
}

/** QUIT when connected (bounded by a timer) and wait for the socket to end; otherwise drop it at once. */
async function closeClient(client: RedisClient): Promise<void> {
  if (isEnded(client)) return;
  const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
  if (client.status === 'ready') {
    client.quit().catch(() => undefined);
  } else {
    client.disconnect();
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), 2_000);
  });
  try {
    if ((await Promise.race([ended, timeout])) === 'timeout') {
      client.disconnect();
      await Promise.race([ended, new Promise((r) => setTimeout(r, 500))]);
    }
  } finally {
    clearTimeout(timer);
  }
}
