/**
 * A small QMP (QEMU Machine Protocol) client over a unix socket: the greeting, capabilities
 * negotiation (`qmp_capabilities`), commands with ids, and asynchronous events.
 *
 * Wire format (docs/interop/qmp-spec in QEMU): JSON objects separated by CRLF. The server
 * greets with `{"QMP": {"version": …, "capabilities": […]}}`; until `qmp_capabilities`
 * succeeds only that command is accepted. A command is `{"execute": NAME, "arguments": {…},
 * "id": ID}`; its answer is `{"return": …, "id": ID}` or `{"error": {"class", "desc"}, "id": ID}`.
 * Events arrive at any time as `{"event": NAME, "data": {…}, "timestamp": {"seconds",
 * "microseconds"}}` (the QEMU host's wall clock).
 *
 * One QMP monitor serves one client at a time, so the driver connects for an operation and
 * closes afterwards.
 */
import { connect, type Socket } from 'node:net';

export class QmpError extends Error {
  static override readonly name = 'QmpError';
  readonly code = 'ROAM6_ERR_QMP';
  /** QMP error class (`GenericError`, `CommandNotFound`, …), or a local reason (`connect`, `timeout`, `closed`). */
  readonly errorClass: string;
  constructor(message: string, errorClass: string) {
    super(message);
    this.name = 'QmpError';
    this.errorClass = errorClass;
  }
}

export interface QmpEvent {
  readonly event: string;
  readonly data: Record<string, unknown>;
  /** Epoch ms from the event's timestamp (the QEMU host's clock). */
  readonly at: number;
}

export interface QmpGreeting {
  readonly version: { qemu: { major: number; minor: number; micro: number }; package?: string };
  readonly capabilities: readonly string[];
}

export interface QmpConnectOptions {
  /** Give up connecting and negotiating after this long (default 5000 ms). */
  readonly timeoutMs?: number;
  /** Capabilities to enable in `qmp_capabilities` (e.g. `oob`); default none. */
  readonly enable?: readonly string[];
}

interface Pending {
  readonly command: string;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

type EventListener = (e: QmpEvent) => void;

export class QmpClient {
  readonly greeting: QmpGreeting;
  readonly #socket: Socket;
  readonly #pending = new Map<string, Pending>();
  readonly #listeners = new Set<EventListener>();
  readonly #closeListeners = new Set<(reason: string) => void>();
  #nextId = 1;
  #closed: string | null = null;

  private constructor(socket: Socket, greeting: QmpGreeting, rest: LineReader) {
    this.#socket = socket;
    this.greeting = greeting;
    rest.onMessage = (m) => this.#dispatch(m);
    socket.on('close', () => this.#fail('QMP connection closed'));
    socket.on('error', (e) => this.#fail(`QMP connection error: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
  }

  /** Connect to QEMU's QMP socket, read the greeting and leave capabilities-negotiation mode. */
  static async connect(path: string, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    const socket = connect({ path });
    const reader = new LineReader(socket);
    const first = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new QmpError(`QMP ${path}: no greeting within ${timeoutMs} ms (is another client connected?)`, 'timeout'));
      }, timeoutMs);
      socket.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new QmpError(`cannot connect to QMP socket ${path}: ${e.code ?? e.message}${e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? ' (is QEMU running?)' : ''}`, 'connect'));
      });
      socket.once('close', () => {
        clearTimeout(timer);
        reject(new QmpError(`QMP ${path}: connection closed before the greeting`, 'closed'));
      });
      // QEMU serves one QMP client at a time, and what it still owed the previous one (a
      // command's return, an event) can reach the next one before the greeting: skip it.
      reader.onMessage = (m) => {
        if (!('QMP' in m) && ('return' in m || 'error' in m || 'event' in m)) return;
        clearTimeout(timer);
        resolve(m);
      };
    });
    socket.removeAllListeners('error');
    socket.removeAllListeners('close');
    const qmp = first.QMP as QmpGreeting | undefined;
    if (!qmp || typeof qmp !== 'object') {
      socket.destroy();
      throw new QmpError(`QMP ${path}: expected a greeting, got ${JSON.stringify(first).slice(0, 200)}`, 'protocol');
    }
    const client = new QmpClient(socket, qmp, reader);
    try {
      await client.execute('qmp_capabilities', opts.enable?.length ? { enable: [...opts.enable] } : undefined, { timeoutMs });
    } catch (e) {
      client.close();
      throw e;
    }
    return client;
  }

  /** Run a command; resolves with its `return` value, rejects with QmpError on `error`. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts: { timeoutMs?: number } = {}): Promise<T> {
    if (this.#closed) return Promise.reject(new QmpError(`${command}: ${this.#closed}`, 'closed'));
    const id = `r6-${this.#nextId++}`;
    const timeoutMs = opts.timeoutMs ?? 10_000;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new QmpError(`${command}: no answer from QEMU within ${timeoutMs} ms`, 'timeout'));
      }, timeoutMs);
      this.#pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      this.#socket.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id })}\r\n`);
    });
  }

  /** Subscribe to events; returns the unsubscribe function. */
  onEvent(fn: EventListener): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** The first event matching `match` from now on, or a QmpError after `timeoutMs`. */
  waitForEvent(match: (e: QmpEvent) => boolean, timeoutMs: number): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new QmpError(`no matching QMP event within ${timeoutMs} ms`, 'timeout'));
      }, timeoutMs);
      const off = this.onEvent((e) => {
        if (!match(e)) return;
        clearTimeout(timer);
        off();
        resolve(e);
      });
    });
  }

  /** Called once when the connection ends (QEMU exited, or close()). */
  onClose(fn: (reason: string) => void): void {
    if (this.#closed) fn(this.#closed);
    else this.#closeListeners.add(fn);
  }

  get closed(): boolean {
    return this.#closed !== null;
  }

  close(): void {
    this.#fail('QMP client closed');
    this.#socket.destroy();
  }

  #dispatch(m: Record<string, unknown>): void {
    if (typeof m.event === 'string') {
      const ts = m.timestamp as { seconds?: number; microseconds?: number } | undefined;
      const at = ts && typeof ts.seconds === 'number' && ts.seconds >= 0 ? ts.seconds * 1000 + (ts.microseconds ?? 0) / 1000 : Date.now();
      const e: QmpEvent = { event: m.event, data: (m.data as Record<string, unknown> | undefined) ?? {}, at };
      for (const fn of [...this.#listeners]) fn(e);
      return;
    }
    const id = typeof m.id === 'string' ? m.id : undefined;
    const p = id === undefined ? undefined : this.#pending.get(id);
    if (!p || id === undefined) return;
    this.#pending.delete(id);
    clearTimeout(p.timer);
    if ('error' in m) {
      const err = (m.error ?? {}) as { class?: string; desc?: string };
      p.reject(new QmpError(`${p.command}: ${err.desc ?? 'error'}`, err.class ?? 'GenericError'));
    } else {
      p.resolve(m.return);
    }
  }

  #fail(reason: string): void {
    if (this.#closed) return;
    this.#closed = reason;
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new QmpError(`${p.command}: ${reason}`, 'closed'));
      this.#pending.delete(id);
    }
    for (const fn of this.#closeListeners) fn(reason);
    this.#closeListeners.clear();
  }
}

/** Splits the stream into JSON objects, one per line (QMP ends each with CRLF). */
class LineReader {
  onMessage: (m: Record<string, unknown>) => void = () => {};
  #buf = '';
  constructor(socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.#buf += chunk;
      for (let nl = this.#buf.indexOf('\n'); nl >= 0; nl = this.#buf.indexOf('\n')) {
        const line = this.#buf.slice(0, nl).trim();
        this.#buf = this.#buf.slice(nl + 1);
        if (!line) continue;
        let v: unknown;
        try {
          v = JSON.parse(line);
        } catch {
          continue; // not JSON: ignore the line (QMP never sends such)
        }
        if (v && typeof v === 'object') this.onMessage(v as Record<string, unknown>);
      }
    });
  }
}
