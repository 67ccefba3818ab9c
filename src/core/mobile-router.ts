/**
 * One per-guest mobile-router proxy instance: the registration state machine of RFC 6275
 * §11.7–11.8 and RFC 3963 §5, in proxy mode. It sends Binding Updates from the host's CoA,
 * retransmits with exponential backoff, refreshes before expiry, and handles every BA status.
 * Sequence numbers come from the guest's shared state (an atomic increment in Redis), so an
 * instance started on another host continues where the old one left off and two hosts can
 * never reuse a number.
 *
 * The instance owns its timers (Clock) and never de-registers: release on the old host just
 * stops it; the new host's BU with the next sequence number moves the binding.
 */
import { formatIpv6, type Ipv6Address, type Ipv6Prefix } from '../wire/ipv6.js';
import {
  BaStatus,
  BeStatus,
  INITIAL_BINDACK_TIMEOUT_MS,
  MAX_BINDACK_TIMEOUT_MS,
  MhOptionType,
  findOption,
  ntpFromUnixMs,
  unixMsFromNtp,
  type BindingAck,
} from '../wire/mh/index.js';
import type { SecurityAssociation } from '../security/mn-ha-auth.js';
import type { Cancel, Clock } from '../ports/clock.js';
import type { MhSenderPort, MobilityStatePort } from '../ports/mobility.js';
import { silentLogger, type Logger } from '../ports/log.js';
import { buildBindingUpdate } from './binding-update-builder.js';

export type MrState = 'idle' | 'registering' | 'registered' | 'refreshing' | 'failed' | 'stopped';

export interface MobileRouterConfig {
  readonly guest: string;
  readonly mnps: readonly Ipv6Prefix[];
  readonly sa: SecurityAssociation;
  readonly coa: Ipv6Address;
  readonly haAddress: Ipv6Address;
  /** Lifetime to request, seconds. */
  readonly lifetimeSec: number;
  /** First retransmission timeout (RFC 6275: 1 s; can be tens of ms in a lab). */
  readonly initialTimeoutMs?: number;
  readonly maxTimeoutMs?: number;
  /** Send the RFC 4285 replay-protection timestamp. */
  readonly useTimestamp?: boolean;
  /** Refresh when this share of the granted lifetime has passed (unless the BA's BRA says sooner). */
  readonly refreshRatio?: number;
}

export interface MrComponents {
  readonly state: MobilityStatePort;
  readonly sender: MhSenderPort;
  readonly clock: Clock;
  readonly log?: Logger;
}

export interface Registration {
  readonly seq: number;
  readonly status: number;
  readonly lifetimeSec: number;
  /** From the first BU of this round to the accepting BA. */
  readonly elapsedMs: number;
  /** BUs sent in this round (1 = no retransmission). */
  readonly attempts: number;
}

export class RegistrationError extends Error {
  static override readonly name = 'RegistrationError';
  readonly code = 'ROAM6_ERR_REGISTRATION';
  constructor(readonly guest: string, readonly status: number | null, message: string) {
    super(message);
    this.name = 'RegistrationError';
  }
}

/** Status codes after which retrying cannot help: the HA refuses this guest as configured. */
const FATAL = new Set<number>([
  BaStatus.AdministrativelyProhibited,
  BaStatus.HomeRegistrationNotSupported,
  BaStatus.NotHomeSubnet,
  BaStatus.NotHomeAgentForThisMobileNode,
  BaStatus.RegistrationTypeChangeDisallowed,
  BaStatus.MobileRouterOperationNotPermitted,
  BaStatus.InvalidPrefix,
  BaStatus.NotAuthorizedForPrefix,
  BaStatus.ForwardingSetupFailed,
  BaStatus.MessageIdRequired,
  BaStatus.AuthenticationFailed,
]);
/** 135 and 144 are answered by adjusting and retrying at once; more than this many in a row fails. */
const MAX_IMMEDIATE_RETRIES = 4;

interface Round {
  readonly startedAt: number;
  /** Sequence numbers sent in this round → the replay timestamp each carried. */
  readonly sent: Map<number, bigint | undefined>;
  attempts: number;
  immediateRetries: number;
  timeoutMs: number;
  timer: Cancel | null;
  resolve: (r: Registration) => void;
  reject: (e: RegistrationError) => void;
  readonly promise: Promise<Registration>;
}

export class MobileRouter {
  private st: MrState = 'idle';
  private round: Round | null = null;
  private refreshTimer: Cancel | null = null;
  private last: Registration | null = null;
  private lastError: string | null = null;
  private expiresAt = 0;
  /** HA clock minus ours, learned from a 144 answer (RFC 4285 §6). */
  private clockOffsetMs = 0;
  /** Timestamps must keep increasing across hosts: never go below the newest one used. */
  private timestampFloor = 0n;
  private readonly log: Logger;

  constructor(readonly cfg: MobileRouterConfig, private readonly c: MrComponents) {
    this.log = c.log ?? silentLogger;
  }

  get state(): MrState {
    return this.st;
  }

  status() {
    return {
      guest: this.cfg.guest,
      state: this.st,
      coa: formatIpv6(this.cfg.coa),
      lastRegistration: this.last,
      expiresAt: this.expiresAt || null,
      error: this.lastError,
    };
  }

  /**
   * Register now (the activate step of a move, or a refresh). Resolves when a BA accepts;
   * rejects on a fatal status. A call while a round is in flight joins it.
   */
  register(): Promise<Registration> {
    if (this.st === 'stopped') return Promise.reject(new RegistrationError(this.cfg.guest, null, 'instance stopped'));
    if (this.round) return this.round.promise;
    this.cancelRefresh();
    this.st = this.st === 'registered' ? 'refreshing' : 'registering';
    let resolve!: (r: Registration) => void;
    let reject!: (e: RegistrationError) => void;
    const promise = new Promise<Registration>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => {}); // the caller may not listen; failure is also kept in status()
    this.round = {
      startedAt: this.c.clock.now(),
      sent: new Map(),
      attempts: 0,
      immediateRetries: 0,
      timeoutMs: this.cfg.initialTimeoutMs ?? INITIAL_BINDACK_TIMEOUT_MS,
      timer: null,
      resolve,
      reject,
      promise,
    };
    void this.send();
    return promise;
  }

  /** A BA for this guest, already decoded and authenticated by the agent. */
  onAck(ack: BindingAck): void {
    const round = this.round;
    if (!round) return; // late duplicate
    if (!round.sent.has(ack.seq) && ack.status !== BaStatus.SequenceNumberOutOfWindow) return; // not ours
    if (ack.status < 128) return this.accepted(round, ack);
    if (ack.status === BaStatus.SequenceNumberOutOfWindow) return void this.retryAfter135(round, ack.seq);
    if (ack.status === BaStatus.IdMismatch) return void this.retryAfter144(round, ack);
    if (FATAL.has(ack.status)) return this.fail(round, ack.status, `home agent refused: status ${ack.status} (${BaStatus[ack.status] ?? 'unknown'})`);
    // 128, 130 and anything else: transient; the retransmission timer tries again.
    this.log.warn({ guest: this.cfg.guest, status: ack.status }, 'binding update not accepted; will retry');
  }

  /** RFC 6275 §11.7.4: a Binding Refresh Request means "send a BU now". */
  onRefreshRequest(): void {
    if (this.st === 'registered' || this.st === 'refreshing') void this.register();
  }

  /** A Binding Error from the HA about our BU. */
  onBindingError(status: number): void {
    const round = this.round;
    const reason = status === BeStatus.UnrecognizedMhType ? 'the home agent does not understand Binding Updates' : `binding error status ${status}`;
    if (round) this.fail(round, null, reason);
    else {
      this.st = 'failed';
      this.lastError = reason;
    }
  }

  /** Stop timers and forget the round. No de-registration is sent. */
  stop(): void {
    this.st = 'stopped';
    this.cancelRefresh();
    if (this.round) {
      this.round.timer?.();
      this.round.reject(new RegistrationError(this.cfg.guest, null, 'instance stopped'));
      this.round = null;
    }
  }

  // -------------------------------------------------------------------------------------------

  private async send(): Promise<void> {
    const round = this.round;
    if (!round || this.st === 'stopped') return;
    let seq: number;
    try {
      seq = await this.c.state.nextSequence(this.cfg.guest);
    } catch (e) {
      // Shared state unreachable (Redis down): keep the round alive, try again on the timer.
      this.log.warn({ guest: this.cfg.guest, err: String(e) }, 'cannot take a sequence number; will retry');
      this.lastError = `sequence number unavailable: ${String(e)}`;
      this.armTimer(round);
      return;
    }
    if (this.round !== round) return;
    const timestamp = this.cfg.useTimestamp ? this.timestampNow() : undefined;
    const { bytes } = buildBindingUpdate({
      guest: this.cfg.guest,
      sa: this.cfg.sa,
      seq,
      lifetimeSec: this.cfg.lifetimeSec,
      coa: this.cfg.coa,
      mnps: this.cfg.mnps,
      ...(timestamp !== undefined ? { timestamp } : {}),
    });
    round.sent.set(seq, timestamp);
    round.attempts++;
    try {
      this.c.sender.send(bytes, this.cfg.haAddress, this.cfg.coa);
    } catch (e) {
      this.log.warn({ guest: this.cfg.guest, err: String(e) }, 'sending the binding update failed; will retry');
    }
    this.armTimer(round);
  }

  private armTimer(round: Round): void {
    round.timer?.();
    const wait = round.timeoutMs;
    round.timer = this.c.clock.after(wait, () => {
      if (this.round !== round) return;
      round.timeoutMs = Math.min(round.timeoutMs * 2, this.cfg.maxTimeoutMs ?? MAX_BINDACK_TIMEOUT_MS);
      this.log.debug({ guest: this.cfg.guest, attempt: round.attempts, nextTimeoutMs: round.timeoutMs }, 'no binding ack; retransmitting');
      void this.send();
    });
  }

  private accepted(round: Round, ack: BindingAck): void {
    round.timer?.();
    this.round = null;
    const now = this.c.clock.now();
    const lifetimeSec = ack.lifetimeUnits * 4;
    const reg: Registration = { seq: ack.seq, status: ack.status, lifetimeSec, elapsedMs: now - round.startedAt, attempts: round.attempts };
    this.last = reg;
    this.lastError = null;
    this.st = 'registered';
    this.expiresAt = now + lifetimeSec * 1000;
    const bra = findOption(ack.options, MhOptionType.BindingRefreshAdvice);
    const byRatio = lifetimeSec * 1000 * (this.cfg.refreshRatio ?? 0.8);
    const refreshMs = Math.max(1000, Math.min(byRatio, bra ? bra.intervalUnits * 4000 : Infinity));
    this.refreshTimer = this.c.clock.after(refreshMs, () => void this.register());
    // Only an accepted timestamp becomes the floor for the next host (RFC 4285 §6).
    const ts = round.sent.get(ack.seq);
    if (ts !== undefined) void this.c.state.advanceReplayTimestamp(this.cfg.guest, ts).catch(() => {});
    round.resolve(reg);
  }

  private async retryAfter135(round: Round, lastAccepted: number): Promise<void> {
    // RFC 6275 §11.7.3: adopt the HA's last accepted number and send again with a newer one.
    if (++round.immediateRetries > MAX_IMMEDIATE_RETRIES) return this.fail(round, BaStatus.SequenceNumberOutOfWindow, 'sequence number rejected repeatedly');
    await this.c.state.setSequence(this.cfg.guest, lastAccepted).catch(() => false);
    if (this.round === round) void this.send();
  }

  private async retryAfter144(round: Round, ack: BindingAck): Promise<void> {
    // RFC 4285 §6: the HA put its own time in the high 32 bits; resynchronise and retry.
    if (++round.immediateRetries > MAX_IMMEDIATE_RETRIES) return this.fail(round, BaStatus.IdMismatch, 'timestamp rejected repeatedly');
    const ts = findOption(ack.options, MhOptionType.MobilityMessageReplayProtection)?.timestamp;
    const newest = await this.c.state.lastReplayTimestamp(this.cfg.guest).catch(() => undefined);
    if (newest !== undefined && newest >= this.timestampFloor) this.timestampFloor = newest + 1n;
    if (ts !== undefined) {
      const haMs = unixMsFromNtp((ts >> 32n) << 32n);
      this.clockOffsetMs = haMs - this.c.clock.now();
      this.log.warn({ guest: this.cfg.guest, offsetMs: Math.round(this.clockOffsetMs) }, 'clock skew with the home agent; adjusted');
    }
    if (this.round === round) void this.send();
  }

  private fail(round: Round, status: number | null, reason: string): void {
    round.timer?.();
    this.round = null;
    this.st = 'failed';
    this.lastError = reason;
    this.log.error({ guest: this.cfg.guest, status, reason }, 'registration failed; this guest needs attention');
    round.reject(new RegistrationError(this.cfg.guest, status, reason));
  }

  private timestampNow(): bigint {
    const t = ntpFromUnixMs(this.c.clock.now() + this.clockOffsetMs);
    return t > this.timestampFloor ? t : this.timestampFloor;
  }

  private cancelRefresh(): void {
    this.refreshTimer?.();
    this.refreshTimer = null;
  }
}
