/**
 * The embedded Redis: a private `redis-server` child process on a unix socket, used when no
 * REDIS_URL is given (DESIGN §3).
 *
 * - The server lives in a directory of mode 0700 that holds its config (0600, so a password
 *   never shows in `ps`), socket (perm 700), log, pid file and, with `persist`, its AOF.
 * - No TCP listener unless `tcp` is asked for (tests); RDB snapshots are off.
 * - `stop()` signals only the PID this module spawned: SIGTERM, then SIGKILL after
 *   `stopTimeoutMs`. A directory created here (mkdtemp) is removed; a caller-given directory is
 *   kept (it may hold persisted data).
 * - `restart()` stops and starts the same server on the same directory and socket; with
 *   `persist` the data survives (SIGTERM makes Redis flush its AOF).
 * - If this Node process exits normally while the server runs, an exit hook sends it SIGTERM.
 *   A SIGKILLed parent leaves the server behind; the next start on the same directory finds its
 *   pid file and refuses to hijack the socket (naming the PID) instead of killing it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** Options for {@link startEmbeddedRedis}. */
export interface EmbeddedRedisOptions {
  /** Working directory (created with mode 0700 if missing). Default: a fresh /tmp/roam6-redis-XXXXXX. */
  readonly dir?: string;
  /** Keep data across restarts with an append-only file in `dir` (appendfsync everysec). Default false. */
  readonly persist?: boolean;
  /** `requirepass` for the server (written to the 0600 config file, never to argv). */
  readonly password?: string;
  /** Also listen on TCP (tests, cluster). Default: unix socket only. */
  readonly tcp?: { readonly host: string; readonly port: number };
  /** Extra redis.conf lines (e.g. "cluster-enabled yes"). Trusted input. */
  readonly extraConfig?: readonly string[];
  /** redis-server binary. Default: ROAM6_REDIS_SERVER, else `redis-server` from PATH. */
  readonly binary?: string;
  /** How long to wait for the first PONG. Default 10 s. */
  readonly startTimeoutMs?: number;
  /** Grace period between SIGTERM and SIGKILL on stop. Default 5 s. */
  readonly stopTimeoutMs?: number;
}

/** A running embedded server. Only `stop()` / `restart()` ever signal its process. */
export interface EmbeddedRedis {
  /** `unix://<dir>/redis.sock` (no password in it). */
  readonly url: string;
  readonly socketPath: string;
  /** PID of the current redis-server process (changes on restart). */
  readonly pid: number;
  readonly dir: string;
  /** Path of the server log (startup failures are explained there). */
  readonly logFile: string;
  /** The TCP endpoint when `tcp` was asked for. */
  readonly tcp?: { readonly host: string; readonly port: number };
  /** SIGTERM, then SIGKILL after the grace period; removes the directory if this module created it. Idempotent. */
  stop(): Promise<void>;
  /** Stop the process (keeping the directory) and start it again on the same socket. */
  restart(): Promise<void>;
}

/**
 * Any failure to start or stop the embedded server. When the server process ran, `logFile`
 * names its log, and the directory holding it is kept (even a temporary one) for inspection.
 */
export class EmbeddedRedisError extends Error {
  static override readonly name = 'EmbeddedRedisError';
  readonly code = 'ROAM6_ERR_EMBEDDED_REDIS';
  readonly logFile?: string;
  constructor(message: string, options?: { cause?: unknown; logFile?: string }) {
    super(message, options);
    this.name = 'EmbeddedRedisError';
    if (options?.logFile) this.logFile = options.logFile;
  }
}

const SOCKET_NAME = 'redis.sock';
/** sockaddr_un.sun_path is 108 bytes including the terminating NUL. */
const MAX_SOCKET_PATH = 107;
const INSTALL_HINT = 'install it with `apt-get install redis-server` or set ROAM6_REDIS_SERVER to its path';

/** Absolute path of the redis-server binary, or undefined when none is installed. */
export function findRedisServer(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const explicit = env['ROAM6_REDIS_SERVER'];
  if (explicit) return isExecutable(explicit) ? explicit : undefined;
  for (const dir of (env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'redis-server');
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Start a private redis-server and wait until it answers PING. */
export async function startEmbeddedRedis(opts: EmbeddedRedisOptions = {}): Promise<EmbeddedRedis> {
  const binary = opts.binary ?? findRedisServer();
  if (!binary) throw new EmbeddedRedisError(`redis-server not found: ${INSTALL_HINT}`);
  if (opts.dir !== undefined) checkSocketPath(join(opts.dir, SOCKET_NAME));
  const { dir, ownsDir } = await prepareDir(opts.dir);
  try {
    const server = new EmbeddedServer(binary, dir, ownsDir, opts);
    await server.start();
    return server;
  } catch (err) {
    const keepForInspection = err instanceof EmbeddedRedisError && err.logFile !== undefined;
    if (ownsDir && !keepForInspection) await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

function checkSocketPath(socketPath: string): void {
  const bytes = Buffer.byteLength(socketPath);
  if (bytes > MAX_SOCKET_PATH) {
    throw new EmbeddedRedisError(
      `unix socket path too long for the kernel (${bytes} > ${MAX_SOCKET_PATH} bytes): ${socketPath}; choose a shorter dir`,
    );
  }
}

async function prepareDir(dir: string | undefined): Promise<{ dir: string; ownsDir: boolean }> {
  if (dir === undefined) return { dir: await mkdtemp(join(tmpdir(), 'roam6-redis-')), ownsDir: true };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  return { dir, ownsDir: false };
}

class EmbeddedServer implements EmbeddedRedis {
  readonly url: string;
  readonly socketPath: string;
  readonly logFile: string;
  readonly tcp?: { readonly host: string; readonly port: number };
  private readonly configFile: string;
  private readonly pidFile: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stopped = false;
  /** First chunks of the current child's stderr (config errors appear there, not in the log). */
  private stderr: Buffer[] = [];
  private readonly exitHook = (): void => {
    this.child?.kill('SIGTERM');
  };

  constructor(
    private readonly binary: string,
    readonly dir: string,
    private readonly ownsDir: boolean,
    private readonly opts: EmbeddedRedisOptions,
  ) {
    this.socketPath = join(dir, SOCKET_NAME);
    checkSocketPath(this.socketPath);
    this.url = `unix://${this.socketPath}`;
    this.logFile = join(dir, 'redis.log');
    this.configFile = join(dir, 'redis.conf');
    this.pidFile = join(dir, 'redis.pid');
    if (opts.tcp) this.tcp = opts.tcp;
  }

  get pid(): number {
    return this.child?.pid ?? 0;
  }

  async start(): Promise<void> {
    this.refuseIfAlreadyRunning();
    await writeFile(this.configFile, renderConfig(this.dir, this.socketPath, this.logFile, this.pidFile, this.opts), {
      mode: 0o600,
    });
    await chmod(this.configFile, 0o600);
    const child = this.spawnServer();
    const timeoutMs = this.opts.startTimeoutMs ?? 10_000;
    try {
      await waitUntilReady(child, this.socketPath, this.opts.password, timeoutMs, this.logFile, () => this.describeFailure());
    } catch (err) {
      await this.killChild();
      throw err;
    }
  }

  private spawnServer(): ChildProcess {
    const child = spawn(this.binary, [this.configFile], { cwd: this.dir, stdio: ['ignore', 'ignore', 'pipe'] });
    const stderr: Buffer[] = [];
    child.stderr?.on('data', (chunk: Buffer) => {
      if (stderr.length < 64) stderr.push(chunk);
    });
    this.stderr = stderr;
    // 'exit' (the process is gone), not 'close': a forked AOF-rewrite child could hold stderr open.
    // A spawn failure (ENOENT) emits 'error' and maybe no 'exit'.
    this.exited = new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', () => resolve());
    });
    this.child = child;
    process.on('exit', this.exitHook);
    void this.exited.then(() => process.off('exit', this.exitHook));
    return child;
  }

  /** A message naming the log, with its tail, for a server that did not come up. */
  private describeFailure(): string {
    const stderr = Buffer.concat(this.stderr).toString('utf8').trim();
    let tail = '';
    try {
      tail = readFileSync(this.logFile, 'utf8').trim().split('\n').slice(-5).join(' | ');
    } catch {
      /* no log yet */
    }
    const detail = [stderr && `stderr: ${stderr.split('\n').slice(-5).join(' | ')}`, tail && `log tail: ${tail}`]
      .filter(Boolean)
      .join('; ');
    return `see ${this.logFile}${detail ? ` (${detail})` : ''}`;
  }

  /** A live redis-server from an earlier run owns this directory: refuse, never kill it. */
  private refuseIfAlreadyRunning(): void {
    if (!existsSync(this.pidFile)) return;
    const pid = Number.parseInt(readFileSync(this.pidFile, 'utf8').trim(), 10);
    if (!Number.isInteger(pid) || pid <= 0 || pid === this.child?.pid) return;
    if (isRedisProcess(pid)) {
      throw new EmbeddedRedisError(
        `a redis-server (pid ${pid}) from an earlier run still serves ${this.dir}; stop it or use another dir`,
      );
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.killChild();
    if (this.ownsDir) await rm(this.dir, { recursive: true, force: true });
  }

  async restart(): Promise<void> {
    if (this.stopped) throw new EmbeddedRedisError(`embedded redis in ${this.dir} was stopped; start a new one`);
    await this.killChild();
    await this.start();
  }

  /** SIGTERM our own child, SIGKILL it after the grace period, and wait for it to be gone. */
  private async killChild(): Promise<void> {
    const child = this.child;
    if (!child || child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
      await this.exited;
      return;
    }
    child.kill('SIGTERM');
    const graceMs = this.opts.stopTimeoutMs ?? 5_000;
    if (!(await settlesWithin(this.exited, graceMs))) {
      child.kill('SIGKILL');
      if (!(await settlesWithin(this.exited, graceMs))) {
        throw new EmbeddedRedisError(`redis-server pid ${child.pid} did not exit after SIGKILL; see ${this.logFile}`);
      }
    }
  }
}

function renderConfig(
  dir: string,
  socketPath: string,
  logFile: string,
  pidFile: string,
  opts: EmbeddedRedisOptions,
): string {
  const lines = [
    `port ${opts.tcp ? opts.tcp.port : 0}`,
    ...(opts.tcp ? [`bind ${opts.tcp.host}`] : []),
    `unixsocket ${quote(socketPath)}`,
    'unixsocketperm 700',
    `dir ${quote(dir)}`,
    `logfile ${quote(logFile)}`,
    `pidfile ${quote(pidFile)}`,
    'daemonize no',
    'protected-mode yes',
    'save ""',
    ...(opts.persist ? ['appendonly yes', 'appendfsync everysec'] : ['appendonly no']),
    ...(opts.password !== undefined ? [`requirepass ${quote(opts.password)}`] : []),
    ...(opts.extraConfig ?? []),
  ];
  return `# written by roam6 (src/platform/redis/embedded.ts); regenerated on every start\n${lines.join('\n')}\n`;
}

/** redis.conf string quoting: double quotes with backslash escapes. */
function quote(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\n/g, '\\n').replace(/\r/g, '\\r')}"`;
}

function isRedisProcess(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('redis-server');
  } catch {
    return false;
  }
}

async function settlesWithin(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Poll the socket until the server answers PING with PONG (not LOADING), the child exits, or
 * the timeout passes. Authentication failure is reported at once.
 */
async function waitUntilReady(
  child: ChildProcess,
  socketPath: string,
  password: string | undefined,
  timeoutMs: number,
  logFile: string,
  describe: () => string,
): Promise<void> {
  const spawnError = new Promise<never>((_, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      const hint = err.code === 'ENOENT' ? `redis-server not found: ${INSTALL_HINT}` : `cannot run redis-server: ${err.message}`;
      reject(new EmbeddedRedisError(hint, { cause: err }));
    });
  });
  spawnError.catch(() => undefined);
  const deadline = Date.now() + timeoutMs;
  for (let delayMs = 5; ; delayMs = Math.min(delayMs * 2, 100)) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new EmbeddedRedisError(
        `redis-server exited during start (${child.exitCode !== null ? `code ${child.exitCode}` : child.signalCode}); ${describe()}`,
        { logFile },
      );
    }
    const answer = await Promise.race([probe(socketPath, password), spawnError]);
    if (answer === 'PONG') return;
    if (answer.startsWith('WRONGPASS') || answer.startsWith('NOAUTH') || answer.startsWith('ERR invalid password')) {
      throw new EmbeddedRedisError(`embedded redis rejected the password: ${answer}`);
    }
    if (Date.now() >= deadline) {
      throw new EmbeddedRedisError(`redis-server did not answer PING within ${timeoutMs} ms (last: ${answer}); ${describe()}`, {
        logFile,
      });
    }
    await Promise.race([new Promise((r) => setTimeout(r, delayMs)), spawnError]);
  }
}

/** One connection: [AUTH], PING. Resolves with the PING reply line, or a connect error code. */
function probe(socketPath: string, password: string | undefined): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect(socketPath);
    const commands = [...(password !== undefined ? [['AUTH', password]] : []), ['PING']];
    let buffered = '';
    const finish = (answer: string): void => {
      sock.destroy();
      resolve(answer);
    };
    sock.setTimeout(1_000, () => finish('probe timeout'));
    sock.on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? err.message));
    sock.on('connect', () => sock.write(commands.map(encodeCommand).join('')));
    sock.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const lines = buffered.split('\r\n').slice(0, -1);
      const authReply = password !== undefined ? lines.shift() : '+OK';
      if (authReply !== undefined && authReply.startsWith('-')) return finish(authReply.slice(1));
      const pingReply = lines[0];
      if (pingReply !== undefined) finish(pingReply.replace(/^[+-]/, ''));
    });
  });
}

function encodeCommand(args: readonly string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}
