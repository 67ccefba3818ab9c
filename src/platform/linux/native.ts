/**
 * Typed loader for the roam6 native addon (native/, plain C over N-API).
 *
 * The addon deals in fds, bytes and errno only; it never parses a protocol message
 * (docs/native.md). `NativeBinding` is the complete, exact shape of what native/src/addon.c
 * registers: keep the two in step. `loadNative()` returns the binding with every system
 * error re-typed as `SystemError`; nothing else in the code base imports the addon.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getSystemErrorName } from 'node:util';

/** What `rawRecv` reports about one received datagram. */
export interface RawRecvInfo {
  /** Bytes written to the caller's buffer. */
  readonly length: number;
  /** The datagram was longer than the buffer; only `length` bytes were kept. */
  readonly truncated: boolean;
  /** Source address (for proto 41: the outer source). Fresh 16-byte array. */
  readonly src: Uint8Array;
  /** Local destination address, from IPV6_PKTINFO. Fresh 16-byte array. */
  readonly dst: Uint8Array;
  /** Arrival interface index, from IPV6_PKTINFO. */
  readonly ifindex: number;
  /** Hop limit the packet arrived with (IPV6_HOPLIMIT); -1 if the kernel did not report one. */
  readonly hopLimit: number;
}

export interface RawOpenOptions {
  /** bind() to this 16-byte source address; it must be local (else EADDRNOTAVAIL). */
  readonly bindAddress?: Uint8Array;
  /** SO_BINDTODEVICE: send and receive only on this interface. */
  readonly device?: string;
  /** IPV6_CHECKSUM offset; -1 disables. Unset: kernel default (4 for proto 135, else off). */
  readonly checksumOffset?: number;
  /** SO_RCVBUF / SO_SNDBUF in bytes (capped by net.core.rmem_max / wmem_max). */
  readonly recvBufferSize?: number;
  readonly sendBufferSize?: number;
  /** IPV6_UNICAST_HOPS and IPV6_MULTICAST_HOPS, 1..255 (Neighbor Discovery needs 255). */
  readonly hopLimit?: number;
  /** ICMP6_FILTER: the ICMPv6 types (0..255) to receive; all others are blocked. ICMPv6 sockets only. */
  readonly icmp6Filter?: readonly number[];
}

export type TunMode = 'tun' | 'tap';

export interface TunOpenResult {
  readonly fd: number;
  /** The device name actually attached (the kernel picks one for an empty name). */
  readonly name: string;
}

/** Readability watcher for one fd on the event loop; owns the fd once constructed. */
export interface NativePoller {
  /** Watch for readability; throws once closed. */
  start(): void;
  stop(): void;
  ref(): void;
  unref(): void;
  /** Stop for good and close the fd. Idempotent; safe inside the callback. */
  close(): void;
}

/**
 * Called when the fd is readable (level-triggered: drain it), or with an error when the
 * kernel reported one on the fd, after which polling has stopped.
 */
export type ReadableCallback = (err?: SystemError) => void;

export interface NativePollerConstructor {
  new (fd: number, onReadable: ReadableCallback): NativePoller;
}

export interface ForwarderOptions {
  /** TUN fd the inner packets arrive on; with `rawFd`, or both absent for a table-only forwarder. */
  readonly tunFd?: number;
  /** Protocol-41 raw socket bound to the HA address (the outer source). */
  readonly rawFd?: number;
  /** ICMPv6 raw socket bound to the HA address, for Packet Too Big; absent: none sent. */
  readonly icmpFd?: number;
  /** Largest inner packet sent into the tunnel, 1280..65535 (default 1460). */
  readonly mtu?: number;
  /** MTU of the TUN device, sizes the read buffers (default 1500). */
  readonly tunMtu?: number;
  /** Packet Too Big token bucket: rate per second (default 100) and depth (default 10). */
  readonly ptbPerSecond?: number;
  readonly ptbBurst?: number;
  /** Bytes all hold buffers together may use (default 64 MiB). */
  readonly maxHeldBytes?: number;
  /** Packets per read/send batch, 1..256 (default 64). */
  readonly batch?: number;
}

/**
 * The userspace HA forwarding engine (native/src/forwarder.c): a thread moving packets
 * TUN ⇄ raw protocol 41 through a longest-prefix-match binding table. Takes ownership of the
 * fds once constructed. Bindings are numbered by the caller, densely from 0.
 */
export interface NativeForwarder {
  /** Install/replace binding `id`: its CoA and complete prefix list (17 bytes each: address, length). */
  set(id: number, coa: Uint8Array, prefixes: Uint8Array): void;
  /** Remove the binding and its prefixes (held packets are dropped). False if unknown. */
  remove(id: number): boolean;
  /** Buffer the binding's packets (bounded). False if unknown. */
  hold(id: number, maxPackets: number, maxMs: number, dropOnExpiry: boolean, nextCoa?: Uint8Array | null): boolean;
  /** Send the buffer, in order, to the current CoA. Packets held at the call; null if unknown. */
  release(id: number): number | null;
  /** Fill `out` (COUNTERS_LENGTH doubles, see FORWARDER_COUNTERS); false if unknown. */
  counters(id: number, out: Float64Array): boolean;
  /** Fill `out` (STATS_LENGTH doubles, see FORWARDER_STATS). */
  stats(out: Float64Array): void;
  /** Test hook: the binding id for a destination, -1 for none. */
  lookup(addr: Uint8Array): number;
  /** Test hook: mean time of one lookup over `rounds` passes over the addresses (16 bytes each). */
  benchLookup(addrs: Uint8Array, rounds: number): { nsPerLookup: number; hits: number };
  /** Stop the thread and close the fds; the table stays readable. Idempotent. */
  close(): void;
}

export interface NativeForwarderConstructor {
  new (options: ForwarderOptions): NativeForwarder;
  readonly STATS_LENGTH: number;
  readonly COUNTERS_LENGTH: number;
}

/** The order of `NativeForwarder.stats()` (enum fwd_stat in native/src/forwarder.h). */
export const FORWARDER_STATS = [
  'bindings', 'prefixes', 'txPackets', 'txBytes', 'rxPackets', 'rxBytes',
  'dropsNoBinding', 'dropsIngress', 'dropsHold', 'dropsFiltered', 'dropsMalformed', 'dropsTooBig',
  'ptbSent', 'sendErrors', 'heldPackets', 'heldBytes', 'holdExpired', 'checksumsCompleted', 'batches', 'lockWaits', 'lockWaitNs', 'running',
  'errno', 'errSyscall',
] as const;

/** The order of `NativeForwarder.counters()` (enum fwd_counter in native/src/forwarder.h). */
export const FORWARDER_COUNTERS = [
  'txPackets', 'txBytes', 'rxPackets', 'rxBytes', 'rxDropped', 'held', 'holdDropped', 'holdExpired', 'holding',
] as const;

/** `errSyscall` values (enum fwd_syscall). */
export const FORWARDER_SYSCALLS = ['', 'read', 'recvmmsg', 'poll'] as const;

/**
 * The addon's exports. As returned by `loadNative()`, every system error thrown (or passed
 * to a Poller callback) is a `SystemError`; the raw addon throws plain Errors carrying the
 * same errno/code/syscall fields, and TypeError/RangeError for bad arguments.
 */
export interface NativeBinding {
  /**
   * socket(AF_INET6, SOCK_RAW, protocol), non-blocking, IPV6_RECVPKTINFO and IPV6_RECVHOPLIMIT on;
   * with `device`, also IPV6_MULTICAST_IF = that device. Returns the fd.
   */
  rawOpen(protocol: number, options?: RawOpenOptions): number;
  /** sendmsg() to dst; src pins the source via IPV6_PKTINFO. Returns bytes sent. EAGAIN throws. */
  rawSend(fd: number, data: Uint8Array, dst: Uint8Array, src?: Uint8Array | null): number;
  /** recvmsg() one datagram into buf; null when none is queued (EAGAIN). */
  rawRecv(fd: number, buf: Uint8Array): RawRecvInfo | null;
  /** Open /dev/net/tun and attach device `name` (IFF_NO_PI), non-blocking. */
  tunOpen(name: string, mode: TunMode): TunOpenResult;
  /** read() one packet into buf; null when none is queued (EAGAIN). */
  read(fd: number, buf: Uint8Array): number | null;
  /** write() one packet. Returns bytes written. */
  write(fd: number, data: Uint8Array): number;
  /** close() an fd that was never given to a Poller. */
  close(fd: number): void;
  /**
   * if_nametoindex(): the interface's index in the caller's network namespace, 0 when there is
   * none. An ioctl resolved under RCU: unlike an rtnetlink RTM_GETLINK it never waits for RTNL.
   */
  ifIndex(name: string): number;
  Poller: NativePollerConstructor;
  Forwarder: NativeForwarderConstructor;
}

/**
 * A failed system call, shaped like Node's own system errors: `errno` is negative
 * (-99), `code` is the errno name ('EADDRNOTAVAIL'), `syscall` the call ('bind'), and the
 * message reads "bind EADDRNOTAVAIL 2001:db8::dead".
 */
export class SystemError extends Error {
  override readonly name = 'SystemError';
  readonly errno: number;
  readonly code: string;
  readonly syscall: string;

  constructor(message: string, fields: { errno: number; code: string; syscall: string }) {
    super(message);
    this.errno = fields.errno;
    this.code = fields.code;
    this.syscall = fields.syscall;
  }

  /** Build one from a positive errno value, e.g. `fromErrno('sendmsg', os.constants.errno.EBADF)`. */
  static fromErrno(syscall: string, errno: number, detail?: string): SystemError {
    const code = getSystemErrorName(-errno);
    return new SystemError(detail ? `${syscall} ${code} ${detail}` : `${syscall} ${code}`, {
      errno: -errno,
      code,
      syscall,
    });
  }
}

/** The addon's errors are plain Errors with errno/code/syscall; give them their type. */
function retype(err: unknown): unknown {
  if (err instanceof SystemError || !(err instanceof Error)) return err;
  const { errno, code, syscall } = err as Error & { errno?: unknown; code?: unknown; syscall?: unknown };
  if (typeof errno !== 'number' || typeof code !== 'string' || typeof syscall !== 'string') return err;
  const typed = new SystemError(err.message, { errno, code, syscall });
  if (err.stack !== undefined) typed.stack = err.stack.replace(/^Error/, 'SystemError');
  return typed;
}

/** Like retype(), for places that must hand on a SystemError whatever the addon produced. */
function toSystemError(err: unknown, syscall: string): SystemError {
  const typed = retype(err);
  if (typed instanceof SystemError) return typed;
  const wrapped = SystemError.fromErrno(syscall, constants.errno.EIO, String(err));
  wrapped.cause = err;
  return wrapped;
}

/** Wraps a native Poller so its errors (thrown and passed to the callback) are SystemErrors. */
function wrapPollerClass(Native: NativePollerConstructor): NativePollerConstructor {
  return class Poller implements NativePoller {
    readonly #native: NativePoller;
    constructor(fd: number, onReadable: ReadableCallback) {
      const callback = (err?: Error): void => onReadable(err === undefined ? undefined : toSystemError(err, 'poll'));
      try {
        this.#native = new Native(fd, callback);
      } catch (err) {
        throw retype(err);
      }
    }
    start(): void {
      try {
        this.#native.start();
      } catch (err) {
        throw retype(err);
      }
    }
    stop(): void { this.#native.stop(); }
    ref(): void { this.#native.ref(); }
    unref(): void { this.#native.unref(); }
    close(): void { this.#native.close(); }
  };
}

/** Wraps the native Forwarder so its system errors are SystemErrors. */
function wrapForwarderClass(Native: NativeForwarderConstructor): NativeForwarderConstructor {
  if (Native.STATS_LENGTH !== FORWARDER_STATS.length || Native.COUNTERS_LENGTH !== FORWARDER_COUNTERS.length) {
    throw new Error('roam6 native addon: Forwarder counter layout does not match native.ts; rebuild it');
  }
  return class Forwarder implements NativeForwarder {
    static readonly STATS_LENGTH = Native.STATS_LENGTH;
    static readonly COUNTERS_LENGTH = Native.COUNTERS_LENGTH;
    readonly #native: NativeForwarder;
    constructor(options: ForwarderOptions) {
      try { this.#native = new Native(options); } catch (err) { throw retype(err); }
    }
    set(id: number, coa: Uint8Array, prefixes: Uint8Array): void {
      try { this.#native.set(id, coa, prefixes); } catch (err) { throw retype(err); }
    }
    remove(id: number): boolean { return this.#native.remove(id); }
    hold(id: number, maxPackets: number, maxMs: number, dropOnExpiry: boolean, nextCoa?: Uint8Array | null): boolean {
      return this.#native.hold(id, maxPackets, maxMs, dropOnExpiry, nextCoa ?? null);
    }
    release(id: number): number | null { return this.#native.release(id); }
    counters(id: number, out: Float64Array): boolean { return this.#native.counters(id, out); }
    stats(out: Float64Array): void { this.#native.stats(out); }
    lookup(addr: Uint8Array): number { return this.#native.lookup(addr); }
    benchLookup(addrs: Uint8Array, rounds: number): { nsPerLookup: number; hits: number } {
      try { return this.#native.benchLookup(addrs, rounds); } catch (err) { throw retype(err); }
    }
    close(): void { this.#native.close(); }
  };
}

function wrapBinding(raw: NativeBinding): NativeBinding {
  return {
    rawOpen(protocol, options) {
      try { return raw.rawOpen(protocol, options); } catch (err) { throw retype(err); }
    },
    rawSend(fd, data, dst, src) {
      try { return raw.rawSend(fd, data, dst, src); } catch (err) { throw retype(err); }
    },
    rawRecv(fd, buf) {
      try { return raw.rawRecv(fd, buf); } catch (err) { throw retype(err); }
    },
    tunOpen(name, mode) {
      try { return raw.tunOpen(name, mode); } catch (err) { throw retype(err); }
    },
    read(fd, buf) {
      try { return raw.read(fd, buf); } catch (err) { throw retype(err); }
    },
    write(fd, data) {
      try { return raw.write(fd, data); } catch (err) { throw retype(err); }
    },
    close(fd) {
      try { raw.close(fd); } catch (err) { throw retype(err); }
    },
    ifIndex(name) {
      try { return raw.ifIndex(name); } catch (err) { throw retype(err); }
    },
    Poller: wrapPollerClass(raw.Poller),
    Forwarder: wrapForwarderClass(raw.Forwarder),
  };
}

/**
 * Create and start a Poller for `fd`, which it then owns. If that fails, `fd` is closed
 * either way and the error rethrown, so callers never leak the descriptor.
 */
export function startPoller(native: NativeBinding, fd: number, onReadable: ReadableCallback): NativePoller {
  let poller: NativePoller;
  try {
    poller = new native.Poller(fd, onReadable);
  } catch (err) {
    native.close(fd);
    throw err;
  }
  try {
    poller.start();
  } catch (err) {
    poller.close();
    throw err;
  }
  return poller;
}

const FUNCTIONS = ['rawOpen', 'rawSend', 'rawRecv', 'tunOpen', 'read', 'write', 'close', 'ifIndex', 'Poller', 'Forwarder'] as const;

function isNativeBinding(mod: unknown): mod is NativeBinding {
  if (typeof mod !== 'object' || mod === null) return false;
  const record = mod as Record<string, unknown>;
  return FUNCTIONS.every((name) => typeof record[name] === 'function');
}

const ADDON_PATH = join('native', 'build', 'Release', 'roam6_native.node');

/**
 * Find the built addon by walking up from this module: it runs both from src/platform/linux
 * (vitest) and from dist/src/platform/linux (compiled), so no fixed relative path fits both.
 */
function findAddon(): string {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    const candidate = join(dir, ADDON_PATH);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) break;
  }
  throw new Error(
    `roam6 native addon not built: no ${ADDON_PATH} in ${start} or any parent; ` +
      'run `npm rebuild` or `node-gyp rebuild -C native --nodedir=/usr`',
  );
}

let cached: NativeBinding | undefined;

/** Load the addon once (lazily, so importing this module never fails on its own). */
export function loadNative(): NativeBinding {
  if (cached) return cached;
  const path = findAddon();
  const mod: unknown = createRequire(import.meta.url)(path);
  if (!isNativeBinding(mod)) {
    throw new Error(`${path} does not export the expected roam6 functions (${FUNCTIONS.join(', ')}); rebuild it`);
  }
  cached = wrapBinding(mod);
  return cached;
}
