/**
 * RawSocket: a raw IPv6 socket for one IP protocol, shaped like node:dgram's Socket.
 *
 *   const mh = RawSocket.open({ protocol: 135, bindAddress: coa });
 *   mh.on('message', (msg, rinfo) => ...);   // msg starts at the protocol header (the MH)
 *   mh.send(bu, haAddress);                  // the kernel builds the IPv6 header
 *
 * Bytes only: what the payload means is for src/wire/ to decide. For protocol 41 the
 * kernel prepends/strips the outer header; `msg` starts at the inner IPv6 header and
 * `rinfo` carries the outer source and destination.
 */
import { EventEmitter } from 'node:events';
import { constants } from 'node:os';

import type { Ipv6Address } from '../../wire/ipv6.js';
import { loadNative, startPoller, type NativeBinding, type NativePoller, type RawRecvInfo, SystemError } from './native.js';

/** IANA protocol numbers this code base opens raw sockets for. */
export const IPPROTO_IPV6 = 41;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_MH = 135;

export interface RawSocketOptions {
  /** IP protocol (Next Header value) to send and receive, 0..255: 135 MH, 41 IPv6-in-IPv6. */
  protocol: number;
  /** Source address to bind; it must be assigned locally (else SystemError EADDRNOTAVAIL). */
  bindAddress?: Ipv6Address;
  /**
   * Interface to bind to (SO_BINDTODEVICE). Multicast sends (e.g. to ff02::1) leave by it too
   * (IPV6_MULTICAST_IF).
   */
  device?: string;
  /**
   * Byte offset of the transport checksum the kernel fills in on send and verifies on
   * receive (dropping bad packets silently); -1 turns that off. Unset keeps the kernel
   * default: 4 for protocol 135 (the MH checksum field), off for other protocols.
   */
  checksumOffset?: number;
  /** SO_RCVBUF in bytes, for bursts (capped by net.core.rmem_max). */
  recvBufferSize?: number;
  /** SO_SNDBUF in bytes (capped by net.core.wmem_max). */
  sendBufferSize?: number;
  /**
   * Hop limit of every packet sent, unicast and multicast (IPV6_UNICAST_HOPS and
   * IPV6_MULTICAST_HOPS), 1..255. Router Advertisements and other ND messages need 255.
   * Unset: the kernel defaults (the interface hop limit, 1 for multicast).
   */
  hopLimit?: number;
  /**
   * ICMPv6 sockets only (protocol 58): the ICMPv6 types to receive (ICMP6_FILTER); every other
   * type is blocked in the kernel. E.g. [133] for a Router Advertisement sender that wants RS only.
   */
  icmp6Filter?: readonly number[];
}

export interface RawRemoteInfo {
  /** Who sent it (for protocol 41: the outer source, i.e. the tunnel peer). */
  address: Ipv6Address;
  /** Which local address it was sent to (IPV6_PKTINFO). */
  localAddress: Ipv6Address;
  /** Interface it arrived on. */
  ifindex: number;
  /** Hop limit it arrived with (-1 if unknown); ND receivers check it is 255 (RFC 4861 §6.1). */
  hopLimit: number;
  /** msg.length. */
  size: number;
}

export interface RawSocketEvents {
  message: [msg: Buffer, rinfo: RawRemoteInfo];
  /** A receive-side failure; the socket has been closed when this fires. */
  error: [err: SystemError];
  close: [];
}

/** IPv6 payloads are at most 65535 bytes (no jumbograms here), so nothing is ever truncated. */
const RECV_BUFFER_SIZE = 65535;
/** Datagrams handled per readability callback before yielding to the event loop. The poll
 * is level-triggered, so whatever is left is picked up on the next loop turn. */
const MAX_RECV_PER_WAKEUP = 64;

export class RawSocket extends EventEmitter<RawSocketEvents> {
  readonly protocol: number;
  readonly #native: NativeBinding;
  readonly #fd: number;
  readonly #poller: NativePoller;
  readonly #buffer = Buffer.allocUnsafe(RECV_BUFFER_SIZE);
  #closed = false;

  private constructor(native: NativeBinding, protocol: number, fd: number) {
    super();
    this.protocol = protocol;
    this.#native = native;
    this.#fd = fd;
    this.#poller = startPoller(native, fd, (err) => this.#onReadable(err));
  }

  /** Open, configure and start receiving. Throws SystemError (e.g. EADDRNOTAVAIL from bind). */
  static open(opts: RawSocketOptions): RawSocket {
    const native = loadNative();
    const fd = native.rawOpen(opts.protocol, {
      bindAddress: opts.bindAddress,
      device: opts.device,
      checksumOffset: opts.checksumOffset,
      recvBufferSize: opts.recvBufferSize,
      sendBufferSize: opts.sendBufferSize,
      hopLimit: opts.hopLimit,
      icmp6Filter: opts.icmp6Filter,
    });
    return new RawSocket(native, opts.protocol, fd);
  }

  /**
   * Send one datagram (the protocol header onwards) to `dst`. `src` pins the source address
   * for this datagram (IPV6_PKTINFO); it must be local. Throws SystemError; code 'EAGAIN'
   * means the send buffer is full and the datagram was not sent.
   */
  send(msg: Uint8Array, dst: Ipv6Address, src?: Ipv6Address): void {
    if (this.#closed) throw SystemError.fromErrno('sendmsg', constants.errno.EBADF, 'socket is closed');
    this.#native.rawSend(this.#fd, msg, dst, src);
  }

  /** Stop receiving and close the socket. Emits 'close' once; further calls do nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#poller.close(); // also closes the fd
    process.nextTick(() => this.emit('close'));
  }

  /** Keep the event loop alive while open (the default). */
  ref(): this {
    if (!this.#closed) this.#poller.ref();
    return this;
  }

  /** Let the process exit even though this socket is open. */
  unref(): this {
    if (!this.#closed) this.#poller.unref();
    return this;
  }

  #onReadable(err?: SystemError): void {
    if (!err) return this.#drain(MAX_RECV_PER_WAKEUP);
    // libuv reports any POLLERR as EBADF; one more receive surfaces the real errno if any.
    this.#drain(1);
    if (!this.#closed) this.#fail(err);
  }

  #drain(budget: number): void {
    for (let i = 0; i < budget && !this.#closed; i++) {
      let info: RawRecvInfo | null;
      try {
        info = this.#native.rawRecv(this.#fd, this.#buffer);
      } catch (e) {
        if (!(e instanceof SystemError)) throw e; // a bug, not an I/O failure
        return this.#fail(e);
      }
      if (info === null) return;
      const msg = Buffer.from(this.#buffer.subarray(0, info.length));
      // The addon hands out fresh 16-byte arrays, which is exactly an Ipv6Address.
      this.emit('message', msg, {
        address: info.src as Ipv6Address,
        localAddress: info.dst as Ipv6Address,
        ifindex: info.ifindex,
        hopLimit: info.hopLimit,
        size: info.length,
      });
    }
  }

  /** Receive errors on a raw socket are not transient (no IPV6_RECVERR here): report, close. */
  #fail(err: SystemError): void {
    this.close();
    this.emit('error', err);
  }
}
