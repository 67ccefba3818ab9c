/**
 * RaSender: the router side of Neighbor Discovery on one guest link, so that an unmodified guest
 * configures itself by SLAAC and keeps its router across moves (docs/guest-link.md).
 *
 * - Unsolicited Router Advertisements to ff02::1 every MinRtrAdvInterval..MaxRtrAdvInterval
 *   (default 3–10 s), and one at start.
 * - An RA right away in answer to a Router Solicitation, at most one per MinDelayBetweenRAs.
 * - `announce()`: an RA plus an unsolicited Neighbor Advertisement (R=1, O=1) for every gateway
 *   address, repeated a few times; the agent calls it when the guest arrives on this host.
 *
 * Everything is sent from the derived link-local address with hop limit 255 over a raw ICMPv6
 * socket bound to the bridge; the kernel fills the checksums. Neighbor Solicitations for the
 * gateway addresses are answered by the kernel itself (the addresses are on the bridge).
 * What is sent is built in src/core/guest-router-advertisement.ts.
 */
import {
  checkRaContent, checkRaTiming, DEFAULT_RA_LIFETIMES, GuestRaConfigError, DEFAULT_RA_TIMING, describePrefixes,
  gatewayNeighborAdvertisement, guestRouterAdvertisement, nextUnsolicitedDelayMs,
  type AdvertisedRoute, type GuestRaContent, type GuestRaTiming,
} from '../../core/guest-router-advertisement.js';
import { mnpGatewayAddress, type GuestLinkIdentity } from '../../core/guest-link-identity.js';
import type { Cancel, Clock } from '../../ports/clock.js';
import { silentLogger, type Logger } from '../../ports/log.js';
import { formatIpv6, type Ipv6Address, type Ipv6Prefix } from '../../wire/ipv6.js';
import {
  ALL_NODES, decodeNdMessage, encodeNdMessage, Icmpv6Type, IPPROTO_ICMPV6, ND_HOP_LIMIT, ndReceptionProblem,
} from '../../wire/nd.js';
import { systemClock } from '../system-clock.js';
import { DEFAULT_TUNNEL_MTU } from './kernel-dataplane.js';
import { RawSocket } from './raw-socket.js';

/** What the sender needs from a socket; RawSocket in production, a fake in unit tests. */
export interface NdSocket {
  /** Send one ICMPv6 message (checksum left to the kernel) from `src` to `dst`. Throws on failure. */
  send(msg: Uint8Array, dst: Ipv6Address, src: Ipv6Address): void;
  close(): void;
}

export interface NdSocketHandlers {
  /** A received ICMPv6 message; `hopLimit` is -1 when the kernel did not report it. */
  message(msg: Uint8Array, from: { address: Ipv6Address; localAddress: Ipv6Address; hopLimit: number }): void;
  /** The socket failed and is closed. */
  error(err: Error): void;
}

/** Opens the ICMPv6 socket on `device`. */
export type NdSocketFactory = (device: string, handlers: NdSocketHandlers) => NdSocket;

/** The production socket: raw ICMPv6 on the bridge, hop limit 255, receiving Router Solicitations only. */
export const openRawNdSocket: NdSocketFactory = (device, handlers) => {
  const sock = RawSocket.open({
    protocol: IPPROTO_ICMPV6,
    device,
    hopLimit: ND_HOP_LIMIT,
    icmp6Filter: [Icmpv6Type.RouterSolicitation],
  });
  sock.on('message', (msg, rinfo) => handlers.message(msg, rinfo));
  sock.on('error', (err) => handlers.error(err));
  // Like the system clock's timers: never keep a process alive on its own.
  sock.unref();
  return sock;
};

export interface RaSenderOptions {
  readonly identity: GuestLinkIdentity;
  /** The guest's MNPs (Prefix Information options; their ::1 are announced as gateways). */
  readonly prefixes: readonly Ipv6Prefix[];
  /** The interface to advertise on; default the guest bridge `identity.ifname`. */
  readonly ifname?: string;
  /** Advertised link MTU; default 1460 (the tunnel's inner MTU). */
  readonly mtu?: number;
  readonly routerLifetimeSec?: number;
  readonly validLifetimeSec?: number;
  readonly preferredLifetimeSec?: number;
  readonly curHopLimit?: number;
  readonly dns?: GuestRaContent['dns'];
  readonly routes?: readonly AdvertisedRoute[];
  readonly timing?: Partial<GuestRaTiming>;
  /**
   * `announce()` sends a round (RA + NAs) at once and again this many ms after the call;
   * default [100, 300, 700, 1500], which outlasts the kernel's ≤ 1 s delay in bringing a
   * bridge's carrier up after its first port arrives (docs/guest-link.md).
   */
  readonly announceRepeatsMs?: readonly number[];
  readonly clock?: Clock;
  /** Uniform in [0, 1); default Math.random. */
  readonly random?: () => number;
  readonly log?: Logger;
  readonly openSocket?: NdSocketFactory;
}

export const DEFAULT_ANNOUNCE_REPEATS_MS: readonly number[] = [100, 300, 700, 1500];
/** A solicited RA that met a link without carrier is retried this often, this many times. */
const LINK_DOWN_RETRY_MS = 100;
const LINK_DOWN_RETRIES = 20;

export interface RaSenderStats {
  readonly rasSent: number;
  readonly nasSent: number;
  /** Valid Router Solicitations received. */
  readonly solicitations: number;
  /** Messages dropped as malformed or invalid (RFC 4861 §6.1.1). */
  readonly dropped: number;
  /** Sends refused because the link had no carrier yet (no guest port, or it just arrived). */
  readonly linkDown: number;
  /** Other send failures. */
  readonly sendErrors: number;
  readonly lastError: string | null;
}

/**
 * How one send went. 'link-down': the kernel had no route to ff02::1 on the link yet
 * (ENETUNREACH/ENETDOWN: no port with carrier); normal before the guest arrives.
 */
export type SendOutcome = 'sent' | 'link-down' | 'failed';

/** The sender could not start or announce: its socket cannot be opened on the link. */
export class RaSenderError extends Error {
  static override readonly name = 'RaSenderError';
  readonly code = 'ROAM6_ERR_RA_SENDER';
  constructor(message: string, readonly guest: string, cause?: unknown) {
    super(cause === undefined ? message : `${message}: ${cause instanceof Error ? cause.message : String(cause)}`,
      cause === undefined ? undefined : { cause });
    this.name = 'RaSenderError';
  }
}

type RaReason = 'initial' | 'periodic' | 'solicited' | 'announce' | 'update';
type Received = { address: Ipv6Address; localAddress: Ipv6Address; hopLimit: number };

export class RaSender {
  readonly identity: GuestLinkIdentity;
  readonly ifname: string;
  readonly #timing: GuestRaTiming;
  readonly #announceRepeatsMs: readonly number[];
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #log: Logger;
  readonly #openSocket: NdSocketFactory;
  #content: GuestRaContent;
  #ra: Uint8Array;
  #nas: { readonly target: Ipv6Address; readonly bytes: Uint8Array }[];
  #socket: NdSocket | null = null;
  #lastRaAt = Number.NEGATIVE_INFINITY;
  #periodic: Cancel | null = null;
  #solicited: Cancel | null = null;
  #linkDownRetries = 0;
  readonly #announcing = new Set<Cancel>();
  #stopped = false;
  #stats = { rasSent: 0, nasSent: 0, solicitations: 0, dropped: 0, linkDown: 0, sendErrors: 0, lastError: null as string | null };

  private constructor(opts: RaSenderOptions) {
    this.identity = opts.identity;
    this.ifname = opts.ifname ?? opts.identity.ifname;
    this.#content = contentFrom(opts);
    this.#timing = { ...DEFAULT_RA_TIMING, ...opts.timing };
    checkRaTiming(this.#timing, this.#content.routerLifetimeSec);
    this.#announceRepeatsMs = checkRepeats(opts.announceRepeatsMs ?? DEFAULT_ANNOUNCE_REPEATS_MS);
    this.#clock = opts.clock ?? systemClock;
    this.#random = opts.random ?? Math.random;
    this.#log = opts.log ?? silentLogger;
    this.#openSocket = opts.openSocket ?? openRawNdSocket;
    [this.#ra, this.#nas] = this.#encode();
  }

  /**
   * Open the socket on the link, send the first RA (lost quietly if the link has no carrier
   * yet) and start the periodic ones. Throws GuestRaConfigError for a configuration the RFCs
   * forbid, RaSenderError when the socket cannot be opened (no such interface, say).
   */
  static start(opts: RaSenderOptions): RaSender {
    const sender = new RaSender(opts);
    try {
      sender.#openOrThrow('starting');
    } catch (err) {
      sender.stop();
      throw err;
    }
    sender.#sendRa('initial');
    return sender;
  }

  get stats(): RaSenderStats {
    return { ...this.#stats };
  }

  /** The gateway addresses announced by NA: the link-local one, then <MNP>::1 per MNP. */
  get gatewayAddresses(): readonly Ipv6Address[] {
    return this.#nas.map((n) => n.target);
  }

  /**
   * The guest has just arrived on this host: send an RA and an unsolicited NA per gateway
   * address now, and again at each of `announceRepeatsMs` (a new call restarts the repeats).
   * Returns how the first round went; throws RaSenderError only if the socket cannot be opened.
   */
  announce(): SendOutcome {
    this.#checkRunning();
    this.#openOrThrow('announcing');
    this.#cancelAnnouncements();
    for (const at of this.#announceRepeatsMs) {
      const cancel = this.#clock.after(at, () => {
        this.#announcing.delete(cancel);
        this.#announceRound();
      });
      this.#announcing.add(cancel);
    }
    return this.#announceRound();
  }

  /** Advertise other prefixes from now on (sends an RA at once). */
  setPrefixes(prefixes: readonly Ipv6Prefix[]): void {
    this.#checkRunning();
    const next = { ...this.#content, prefixes: [...prefixes] };
    checkRaContent(next);
    this.#content = next;
    [this.#ra, this.#nas] = this.#encode();
    this.#sendRa('update');
  }

  /**
   * Stop advertising and close the socket. No final RA with Router Lifetime 0 (RFC 4861
   * §6.2.5): the router is not going away, it moves with the guest. Idempotent.
   */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#periodic?.();
    this.#solicited?.();
    this.#periodic = this.#solicited = null;
    this.#cancelAnnouncements();
    this.#closeSocket();
  }

  // ---- sending ------------------------------------------------------------------------

  #encode(): [Uint8Array, { target: Ipv6Address; bytes: Uint8Array }[]] {
    const ra = encodeNdMessage(guestRouterAdvertisement(this.identity, this.#content));
    const targets = [this.identity.linkLocal, ...this.#content.prefixes.map(mnpGatewayAddress)];
    return [ra, targets.map((target) => ({ target, bytes: encodeNdMessage(gatewayNeighborAdvertisement(this.identity, target)) }))];
  }

  #announceRound(): SendOutcome {
    const outcome = this.#sendRa('announce');
    if (outcome !== 'sent') return outcome;
    for (const na of this.#nas) {
      if (this.#send(na.bytes, `NA ${formatIpv6(na.target)}`) === 'sent') this.#stats.nasSent++;
    }
    return outcome;
  }

  /** Send the RA now and restart the periodic timer from now, whatever the outcome. */
  #sendRa(reason: RaReason): SendOutcome {
    const outcome = this.#send(this.#ra, `RA (${reason})`);
    if (outcome === 'sent') this.#stats.rasSent++;
    this.#lastRaAt = this.#clock.now();
    this.#schedulePeriodic();
    return outcome;
  }

  #schedulePeriodic(): void {
    if (this.#stopped) return;
    this.#periodic?.();
    this.#periodic = this.#clock.after(nextUnsolicitedDelayMs(this.#timing, this.#random), () => {
      this.#periodic = null;
      this.#sendRa('periodic');
    });
  }

  /** One send from the link-local address to ff02::1; failures are counted and logged, never thrown. */
  #send(bytes: Uint8Array, what: string): SendOutcome {
    if (this.#stopped) return 'failed';
    try {
      this.#socketOrOpen().send(bytes, ALL_NODES, this.identity.linkLocal);
      return 'sent';
    } catch (err) {
      return this.#sendFailed(err, what);
    }
  }

  #sendFailed(err: unknown, what: string): SendOutcome {
    const code = errorCode(err);
    const fields = { guest: this.identity.guest, ifname: this.ifname, what, err: String(err) };
    if (code === 'ENETUNREACH' || code === 'ENETDOWN') {
      this.#stats.linkDown++;
      this.#log.debug(fields, 'guest link has no carrier yet; advertisement not sent');
      return 'link-down';
    }
    this.#stats.sendErrors++;
    this.#stats.lastError = err instanceof Error ? err.message : String(err);
    this.#log.warn(fields, 'neighbor discovery message not sent');
    // A socket that failed this way is no use any more; the next send opens a new one.
    if (code === 'ENODEV' || code === 'ENXIO' || code === 'EBADF') this.#closeSocket();
    return 'failed';
  }

  // ---- receiving ----------------------------------------------------------------------

  #onMessage(msg: Uint8Array, from: Received): void {
    if (this.#stopped || msg[0] !== Icmpv6Type.RouterSolicitation) return;
    const decoded = decodeNdMessage(msg);
    const problem = decoded.ok
      ? ndReceptionProblem(decoded.value, { src: from.address, dst: from.localAddress, ...(from.hopLimit >= 0 ? { hopLimit: from.hopLimit } : {}) })
      : decoded.error.message;
    if (problem !== null) {
      this.#stats.dropped++;
      this.#log.debug({ guest: this.identity.guest, from: formatIpv6(from.address), problem }, 'router solicitation dropped');
      return;
    }
    this.#stats.solicitations++;
    this.#linkDownRetries = 0;
    this.#answerSolicitation();
  }

  /**
   * RFC 6275 §7.5: answer at once, but never faster than MinDelayBetweenRAs. If the link has
   * no carrier yet (the guest's port has only just arrived), try again shortly.
   */
  #answerSolicitation(): void {
    if (this.#solicited) return; // an answer is already due
    const wait = this.#lastRaAt + this.#timing.minDelayBetweenRasMs - this.#clock.now();
    if (wait > 0) return this.#answerLater(wait);
    if (this.#sendRa('solicited') === 'link-down' && this.#linkDownRetries++ < LINK_DOWN_RETRIES) {
      this.#answerLater(LINK_DOWN_RETRY_MS);
    }
  }

  #answerLater(ms: number): void {
    this.#solicited = this.#clock.after(ms, () => {
      this.#solicited = null;
      this.#answerSolicitation();
    });
  }

  // ---- socket -------------------------------------------------------------------------

  #openOrThrow(what: string): void {
    try {
      this.#socketOrOpen();
    } catch (err) {
      throw new RaSenderError(`${what}: cannot open an ICMPv6 socket on ${this.ifname} for guest ${this.identity.guest}`,
        this.identity.guest, err);
    }
  }

  #socketOrOpen(): NdSocket {
    this.#socket ??= this.#openSocket(this.ifname, {
      message: (msg, from) => this.#onMessage(msg, from),
      error: (err) => {
        this.#log.warn({ guest: this.identity.guest, ifname: this.ifname, err: String(err) }, 'ICMPv6 socket failed; reopening on next send');
        this.#socket = null;
      },
    });
    return this.#socket;
  }

  #closeSocket(): void {
    const s = this.#socket;
    this.#socket = null;
    s?.close();
  }

  #cancelAnnouncements(): void {
    for (const cancel of this.#announcing) cancel();
    this.#announcing.clear();
  }

  #checkRunning(): void {
    if (this.#stopped) throw new RaSenderError(`RA sender on ${this.ifname} is stopped`, this.identity.guest);
  }

  toString(): string {
    return `RA sender ${this.ifname} for ${this.identity.guest} (${describePrefixes(this.#content.prefixes)})`;
  }
}

function contentFrom(opts: RaSenderOptions): GuestRaContent {
  const content: GuestRaContent = {
    prefixes: [...opts.prefixes],
    mtu: opts.mtu ?? DEFAULT_TUNNEL_MTU,
    routerLifetimeSec: opts.routerLifetimeSec ?? DEFAULT_RA_LIFETIMES.routerLifetimeSec,
    validLifetimeSec: opts.validLifetimeSec ?? DEFAULT_RA_LIFETIMES.validLifetimeSec,
    preferredLifetimeSec: opts.preferredLifetimeSec ?? DEFAULT_RA_LIFETIMES.preferredLifetimeSec,
    curHopLimit: opts.curHopLimit ?? DEFAULT_RA_LIFETIMES.curHopLimit,
    ...(opts.dns ? { dns: opts.dns } : {}),
    ...(opts.routes ? { routes: opts.routes } : {}),
  };
  checkRaContent(content);
  return content;
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function checkRepeats(repeats: readonly number[]): readonly number[] {
  if (repeats.some((ms) => !(Number.isFinite(ms) && ms > 0))) {
    throw new GuestRaConfigError(`announce repeats ${JSON.stringify(repeats)}: every delay must be > 0 ms`);
  }
  return [...repeats];
}
