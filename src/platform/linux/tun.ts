/**
 * TunDevice: a TUN (IP packets) or TAP (Ethernet frames) device, one packet per event.
 *
 *   const tun = TunDevice.open('mr0');       // mode 'tun' by default
 *   tun.on('packet', (pkt) => ...);          // pkt starts at the IPv6 header (TUN)
 *   tun.write(pkt);                          // inject one packet into the kernel
 *
 * Opened with IFF_NO_PI, so there is no 4-byte packet-information prefix. The device is
 * created in the opener's network namespace if it does not exist, is not brought up or
 * addressed here (that is routing's job), and vanishes when closed.
 *
 * Note: once the link is up, the kernel sends its own packets out of it (router
 * solicitations, MLD reports from fe80::); consumers must expect and filter them.
 */
import { EventEmitter } from 'node:events';
import { constants } from 'node:os';

import { loadNative, startPoller, type NativeBinding, type NativePoller, SystemError, type TunMode } from './native.js';

export type { TunMode } from './native.js';

export interface TunOpenOptions {
  /** 'tun' (layer 3, default) or 'tap' (layer 2). */
  mode?: TunMode;
}

export interface TunDeviceEvents {
  packet: [packet: Buffer];
  /** A read failure (e.g. EBADFD after the device was deleted); the device is closed when this fires. */
  error: [err: SystemError];
  close: [];
}

/** Largest packet a read can return: 65535-byte MTU plus an Ethernet + VLAN header (TAP). */
const READ_BUFFER_SIZE = 65535 + 18;
/** Packets handled per readability callback before yielding to the event loop. */
const MAX_READS_PER_WAKEUP = 64;

export class TunDevice extends EventEmitter<TunDeviceEvents> {
  /** The attached device name (the kernel picks one when opened with ''). */
  readonly name: string;
  readonly mode: TunMode;
  readonly #native: NativeBinding;
  readonly #fd: number;
  readonly #poller: NativePoller;
  readonly #buffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);
  #closed = false;

  private constructor(native: NativeBinding, fd: number, name: string, mode: TunMode) {
    super();
    this.name = name;
    this.mode = mode;
    this.#native = native;
    this.#fd = fd;
    this.#poller = startPoller(native, fd, (err) => this.#onReadable(err));
  }

  /** Attach to (or create) device `name`. Throws SystemError (e.g. EBUSY if it is already open). */
  static open(name: string, opts: TunOpenOptions = {}): TunDevice {
    const native = loadNative();
    const mode = opts.mode ?? 'tun';
    const { fd, name: actual } = native.tunOpen(name, mode);
    return new TunDevice(native, fd, actual, mode);
  }

  /** Inject one packet (TUN: an IP packet; TAP: an Ethernet frame). Throws SystemError. */
  write(packet: Uint8Array): void {
    if (this.#closed) throw SystemError.fromErrno('write', constants.errno.EBADF, 'device is closed');
    this.#native.write(this.#fd, packet);
  }

  /** Stop reading and close the device. Emits 'close' once; further calls do nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#poller.close(); // also closes the fd
    process.nextTick(() => this.emit('close'));
  }

  ref(): this {
    if (!this.#closed) this.#poller.ref();
    return this;
  }

  unref(): this {
    if (!this.#closed) this.#poller.unref();
    return this;
  }

  #onReadable(err?: SystemError): void {
    if (!err) return this.#drain(MAX_READS_PER_WAKEUP);
    // libuv reports any POLLERR as EBADF; one more read surfaces the real errno (EBADFD
    // once the device has been deleted).
    this.#drain(1);
    if (!this.#closed) this.#fail(err);
  }

  #drain(budget: number): void {
    for (let i = 0; i < budget && !this.#closed; i++) {
      let length: number | null;
      try {
        length = this.#native.read(this.#fd, this.#buffer);
      } catch (e) {
        if (!(e instanceof SystemError)) throw e; // a bug, not an I/O failure
        return this.#fail(e);
      }
      if (length === null) return;
      this.emit('packet', Buffer.from(this.#buffer.subarray(0, length)));
    }
  }

  /** Read errors on a TUN fd mean the device is gone or broken: report, close. */
  #fail(err: SystemError): void {
    this.close();
    this.emit('error', err);
  }
}
