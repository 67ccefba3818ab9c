/**
 * The Home Agent service: receives Mobility Header octets, decides with the pure policy in
 * home-agent-policy.ts, applies the decision through the data-plane port with rollback,
 * keeps the binding cache, persists it in batches, expires bindings on the injected clock,
 * and tells listeners what happened. It owns no socket: `handle()` returns the reply to send.
 *
 * Work for one guest is serialised (a promise chain per guest), so two BUs of one guest never
 * race, while different guests proceed independently — instead of UMIP's thread per BU.
 */
import { formatIpv6, parseIpv6, parsePrefix, type Ipv6Address } from '../wire/ipv6.js';
import {
  BaStatus,
  BeStatus,
  MhType,
  decodeMobilityHeader,
  encodeMobilityHeader,
  seqGreater,
  type BindingAck,
  type WireErrorReason,
} from '../wire/mh/index.js';
import { mnHaAuthenticator, type SecurityAssociation } from '../security/mn-ha-auth.js';
import type { Clock, Cancel } from '../ports/clock.js';
import type { HaDataplanePort } from '../ports/dataplane.js';
import type { BindingStore, StoredBinding } from '../ports/binding-store.js';
import type { GuestDirectory } from '../ports/guest-directory.js';
import { silentLogger, type Logger } from '../ports/log.js';
import { BindingCache, type Binding } from './binding-cache.js';
import {
  authenticate,
  decideBindingUpdate,
  rejectBadAuthenticator,
  type BuInput,
  type Decision,
  type DropReason,
  type Rejection,
  type HaPolicyConfig,
} from './home-agent-policy.js';
import { KeyedQueue } from './keyed-queue.js';
import { TokenBuckets, type BucketConfig } from './token-bucket.js';

export type HaEventType = 'created' | 'updated' | 'moved' | 'deregistered' | 'expired' | 'revoked' | 'rejected' | 'held' | 'released';

export interface HaEvent {
  readonly type: HaEventType;
  readonly guest: string;
  readonly at: number;
  readonly coa?: string;
  readonly from?: string;
  readonly seq?: number;
  readonly status?: number;
  readonly detail?: string;
  /** moved: the HA-side handover time (see HandoverRecord.haMs); released: how long the hold lasted. */
  readonly durationMs?: number;
  /** released: packets that were held and now went to the new CoA. */
  readonly packets?: number;
}

/** What the HA did with a switch request (`switchHold`). */
export type SwitchResult =
  | { readonly switched: true; readonly coa: string; readonly packets: number }
  | { readonly switched: false; readonly reason: 'no-hold' | 'no-next-coa' };

/** What the HA did with a hold request (`holdForHandover`). */
export type HoldResult =
  | { readonly held: true; readonly coa: string; readonly until: number }
  | { readonly held: false; readonly reason: 'unsupported' | 'no-binding' };

export interface HoldRequest {
  /** The CoA the guest moves to; its first packets from there pass the ingress check. */
  readonly nextCoa?: Ipv6Address;
  readonly maxMs: number;
  readonly maxPackets: number;
}

export interface HaCounters {
  received: number;
  malformed: Partial<Record<WireErrorReason, number>>;
  dropped: Partial<Record<DropReason | 'dereg-from-old-coa', number>>;
  /** BAs sent, by status code. */
  acks: Record<number, number>;
  bindingErrors: number;
  expired: number;
  persistFailures: number;
}

export interface HomeAgentConfig {
  readonly policy: HaPolicyConfig;
  /** Per-guest BU rate limit (after authentication). */
  readonly rateLimit: BucketConfig;
  /** Per-guest limit on 146 answers, so forged floods are not reflected. */
  readonly authFailLimit: BucketConfig;
  /**
   * Per-guest limit on authenticated BUs whose sequence number is not newer than the binding's
   * (answered 135, or ignored): replays of a captured BU. They draw on this bucket, not on
   * `rateLimit`, so a replay flood can neither spend the guest's budget for real updates nor
   * reflect a stream of 135s at its care-of address.
   */
  readonly staleLimit: BucketConfig;
  /** How often dirty bindings are written to the store. */
  readonly persistIntervalMs: number;
  /** How often expiry runs. */
  readonly expiryIntervalMs: number;
}

export const DEFAULT_HA_RUNTIME = {
  rateLimit: { ratePerSec: 20, burst: 40 },
  authFailLimit: { ratePerSec: 1, burst: 5 },
  staleLimit: { ratePerSec: 1, burst: 5 },
  persistIntervalMs: 50,
  expiryIntervalMs: 1000,
} as const;

export interface HomeAgentComponents {
  readonly guests: GuestDirectory;
  readonly dataplane: HaDataplanePort;
  readonly store?: BindingStore;
  readonly clock: Clock;
  readonly log?: Logger;
}

/** What to send back: MH octets to `to`, from `from`. */
export interface Reply {
  readonly mh: Uint8Array;
  readonly to: Ipv6Address;
  readonly from: Ipv6Address;
}

export class HomeAgent {
  readonly cache = new BindingCache();
  readonly counters: HaCounters = { received: 0, malformed: {}, dropped: {}, acks: {}, bindingErrors: 0, expired: 0, persistFailures: 0 };
  private readonly listeners = new Set<(e: HaEvent) => void>();
  private readonly queue = new KeyedQueue();
  private readonly rate: TokenBuckets;
  private readonly authFail: TokenBuckets;
  private readonly stale: TokenBuckets;
  private readonly beLimit = new TokenBuckets({ ratePerSec: 10, burst: 20 });
  /** Log lines about BUs that name no enrolled guest (unknown SPI, no authenticator): a forged flood must not flood the log. */
  private readonly unauthLog = new TokenBuckets({ ratePerSec: 1, burst: 5 });
  private unauthSuppressed = 0;
  private readonly dirty = new Map<string, 'upsert' | 'delete'>();
  /** Per guest: when the first authenticated BU from a CoA other than the bound one arrived. */
  private readonly newCoaSince = new Map<string, { coa: string; at: number }>();
  /** Guests whose packets the data plane holds for a handover: since and until when, and where the guest goes. */
  private readonly holds = new Map<string, { since: number; until: number; next?: Ipv6Address }>();
  /**
   * Guests forwarded to their next CoA ahead of its BU (`switchHold`): the guest left its old
   * host, so until the BU from there arrives (or `until`), a refresh from the old CoA does not
   * pull the forwarding back.
   */
  private readonly ahead = new Map<string, { coa: string; until: number }>();
  private readonly log: Logger;
  private timers: Cancel[] = [];
  private flushing: Promise<void> | null = null;

  constructor(private readonly cfg: HomeAgentConfig, private readonly c: HomeAgentComponents) {
    this.rate = new TokenBuckets(cfg.rateLimit);
    this.authFail = new TokenBuckets(cfg.authFailLimit);
    this.stale = new TokenBuckets(cfg.staleLimit);
    this.log = c.log ?? silentLogger;
  }

  /** Restore bindings from the store and install them in the data plane, then start timers. */
  async start(): Promise<{ restored: number; expired: number }> {
    await this.c.dataplane.start();
    let restored = 0;
    let expired = 0;
    if (this.c.store) {
      const now = this.c.clock.now();
      const stored = await this.c.store.loadAll();
      const live: Binding[] = [];
      for (const s of stored) {
        if (s.expiresAt <= now) {
          this.markDirty(s.guest, 'delete');
          expired++;
          continue;
        }
        const b = fromStored(s);
        this.cache.put(b, s.mnps.map((p) => parsePrefix(p)));
        live.push(b);
      }
      // Forward for every live binding at once: do not wait for re-registrations.
      await runLimited(live, 64, (b) => this.c.dataplane.upsert(tunnelOf(b)));
      restored = live.length;
    }
    this.timers.push(this.c.clock.every(this.cfg.expiryIntervalMs, () => void this.expire()));
    this.timers.push(this.c.clock.every(this.cfg.persistIntervalMs, () => void this.flush()));
    this.log.info({ restored, expired }, 'home agent started');
    return { restored, expired };
  }

  async stop(): Promise<void> {
    for (const t of this.timers) t();
    this.timers = [];
    await this.queue.idle();
    await this.flush();
  }

  subscribe(fn: (e: HaEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Handle one received Mobility Header. Never throws on network input; returns the reply to
   * send (a BA or a Binding Error), or null when the message is dropped.
   */
  async handle(bytes: Uint8Array, src: Ipv6Address, dst: Ipv6Address): Promise<Reply | null> {
    this.counters.received++;
    const decoded = decodeMobilityHeader(bytes);
    if (!decoded.ok) {
      const r = decoded.error.reason;
      this.counters.malformed[r] = (this.counters.malformed[r] ?? 0) + 1;
      this.log.debug({ src: formatIpv6(src), reason: decoded.error.message }, 'malformed mobility header dropped');
      return null;
    }
    const msg = decoded.value;
    if (msg.type === 'unknown') return this.bindingError(src, dst, BeStatus.UnrecognizedMhType);
    if (msg.type !== MhType.BindingUpdate) return this.drop('not-binding-update');

    const input: BuInput = { bu: msg, bytes, src, dst, now: this.c.clock.now() };
    const auth = authenticate(input, this.c.guests);
    if (!auth.ok && 'drop' in auth) {
      // No enrolled guest to tell about it: counted, and logged (rate-limited), never an event.
      this.logUnauthenticated(input, auth.drop, auth.spi);
      return this.drop(auth.drop);
    }
    if (!auth.ok) {
      if (!this.authFail.take(auth.guest.id, input.now)) return this.drop('auth-fail-limited', auth.guest.id);
      return this.reject(input, rejectBadAuthenticator(input, auth.guest, auth.sa), { spi: auth.sa.spi });
    }
    const guest = auth.guest;
    // A sequence number that is not newer than the binding's can only be answered with 135 (or
    // ignored) — what a replayed BU looks like. Such BUs have their own small bucket, so that
    // replays sent from the guest's own CoA cannot crowd out its real updates. (A newer BU of
    // the guest may still be queued; it only makes this one staler, never fresher.)
    const bound = this.cache.get(guest.id);
    if (bound && !seqGreater(msg.seq, bound.seq)) {
      if (!this.stale.take(guest.id, input.now)) return this.drop('stale-limited', guest.id);
    } else if (!this.rate.take(guest.id, input.now)) return this.drop('rate-limited', guest.id);

    const srcText = formatIpv6(src);
    this.noteNewCoa(guest.id, srcText, input.now);
    return this.serialise(guest.id, async () => {
      // Decide against the state as it is now, after any earlier BU of this guest landed.
      const now = this.c.clock.now();
      const decision = decideBindingUpdate({ ...input, now, srcText }, guest, auth.sa, this.policyState(), this.cfg.policy);
      return this.apply({ ...input, now, srcText }, decision);
    });
  }

  /** Operator revocation (API `DELETE /bindings/:guest`): remove forwarding and the binding. */
  async revoke(guest: string): Promise<boolean> {
    return this.serialise(guest, async () => {
      const b = this.cache.get(guest);
      if (!b) return false;
      await this.c.dataplane.remove(guest);
      this.cache.delete(guest);
      this.newCoaSince.delete(guest);
      this.holds.delete(guest);
      this.ahead.delete(guest);
      this.markDirty(guest, 'delete');
      this.emit({ type: 'revoked', guest, at: this.c.clock.now(), coa: b.coa });
      this.log.info({ guest, coa: b.coa }, 'binding revoked by operator');
      return true;
    });
  }

  /**
   * Make-before-break: the guest is about to pause on its old host. Hold its packets here until
   * the BU from its new host moves the binding (then they go there, in order), or until
   * `maxMs` (then they go to the CoA of that moment: the migration did not happen). Only a data
   * plane that can buffer does this; the kernel backend answers 'unsupported'.
   */
  async holdForHandover(guest: string, req: HoldRequest): Promise<HoldResult> {
    const dp = this.c.dataplane;
    if (!dp.hold || !dp.release) return { held: false, reason: 'unsupported' };
    return this.serialise(guest, async () => {
      const b = this.cache.get(guest);
      if (!b || !(await dp.hold!(guest, req))) return { held: false, reason: 'no-binding' } as const;
      const now = this.c.clock.now();
      const until = now + req.maxMs;
      this.holds.set(guest, { since: this.holds.get(guest)?.since ?? now, until, ...(req.nextCoa ? { next: req.nextCoa } : {}) });
      this.emit({ type: 'held', guest, at: now, coa: b.coa, ...(req.nextCoa ? { detail: `next ${formatIpv6(req.nextCoa)}` } : {}) });
      return { held: true, coa: b.coa, until } as const;
    });
  }

  /**
   * The guest has left its old host (its hypervisor handed the last state over): forward what is
   * held, in order, and what comes next to the hold's next CoA now, without waiting for the BU
   * from there. Packets that arrive before the guest runs wait in its new host's TAP, which the
   * incoming hypervisor reads from its first instant; the BU then only confirms. The binding
   * (API, Redis) still shows the old CoA until that BU.
   */
  async switchHold(guest: string): Promise<SwitchResult> {
    return this.serialise(guest, async () => {
      const h = this.holds.get(guest);
      const b = this.cache.get(guest);
      if (!h || !b || !this.c.dataplane.release) return { switched: false, reason: 'no-hold' } as const;
      if (!h.next) return { switched: false, reason: 'no-next-coa' } as const;
      const now = this.c.clock.now();
      const coa = formatIpv6(h.next);
      await this.c.dataplane.upsert({ ...tunnelOf(b), coa: h.next });
      this.holds.delete(guest);
      this.ahead.set(guest, { coa, until: h.until });
      const packets = await this.c.dataplane.release(guest);
      this.emit({ type: 'released', guest, at: now, coa, packets, durationMs: now - h.since, detail: 'ahead of the BU' });
      this.log.info({ guest, coa, from: b.coa, packets }, 'forwarding to the next CoA ahead of its BU');
      return { switched: true, coa, packets } as const;
    });
  }

  /** End a hold now (a migration that failed before the switch): the packets go to the current CoA. */
  async releaseHold(guest: string): Promise<number> {
    return this.serialise(guest, () => this.endHold(guest));
  }

  private async endHold(guest: string): Promise<number> {
    const h = this.holds.get(guest);
    if (!h || !this.c.dataplane.release) return 0;
    this.holds.delete(guest);
    const now = this.c.clock.now();
    if (now > h.until) return 0; // the data plane already ended it
    const packets = await this.c.dataplane.release(guest);
    this.emit({ type: 'released', guest, at: now, coa: this.cache.get(guest)?.coa, packets, durationMs: now - h.since });
    return packets;
  }

  /** Write dirty bindings to the store as one batch. Failures keep them dirty for next time. */
  async flush(): Promise<void> {
    if (!this.c.store || this.dirty.size === 0) return;
    if (this.flushing) return this.flushing;
    const batch = new Map(this.dirty);
    this.dirty.clear();
    const upserts: StoredBinding[] = [];
    const deletes: string[] = [];
    for (const [guest, op] of batch) {
      const b = op === 'upsert' ? this.cache.get(guest) : undefined;
      if (b) upserts.push(toStored(b));
      else deletes.push(guest);
    }
    this.flushing = this.c.store
      .writeBatch(upserts, deletes)
      .catch((e: unknown) => {
        this.counters.persistFailures++;
        for (const [g, op] of batch) if (!this.dirty.has(g)) this.dirty.set(g, op);
        this.log.warn({ err: String(e), pending: this.dirty.size }, 'binding store write failed; will retry');
      })
      .finally(() => {
        this.flushing = null;
      });
    return this.flushing;
  }

  /** Expire bindings whose lifetime ran out; remove their forwarding. */
  async expire(): Promise<number> {
    const gone = this.cache.expire(this.c.clock.now());
    for (const b of gone) {
      this.counters.expired++;
      this.newCoaSince.delete(b.guest);
      this.holds.delete(b.guest);
      this.ahead.delete(b.guest);
      this.markDirty(b.guest, 'delete');
      this.emit({ type: 'expired', guest: b.guest, at: this.c.clock.now(), coa: b.coa });
      this.log.info({ guest: b.guest, coa: b.coa }, 'binding expired');
      await this.serialise(b.guest, () => this.c.dataplane.remove(b.guest)).catch((e: unknown) =>
        this.log.error({ guest: b.guest, err: String(e) }, 'data plane removal failed for an expired binding'),
      );
    }
    return gone.length;
  }

  // -------------------------------------------------------------------------------------------

  private policyState() {
    return {
      guests: this.c.guests,
      binding: (g: string) => this.cache.get(g),
      prefixOwner: (p: Parameters<BindingCache['ownerOf']>[0]) => this.cache.ownerOf(p),
    };
  }

  private async apply(input: BuInput, d: Decision): Promise<Reply | null> {
    switch (d.kind) {
      case 'drop':
        return this.drop(d.reason, d.guest);
      case 'ignore':
        this.counters.dropped[d.reason] = (this.counters.dropped[d.reason] ?? 0) + 1;
        this.log.info({ guest: d.guest, src: formatIpv6(input.src) }, 'de-registration from a CoA that is not the current one ignored');
        return null;
      case 'reject':
        return this.reject(input, d);
      case 'deregister': {
        try {
          await this.c.dataplane.remove(d.guest);
        } catch (e) {
          return this.reject(
            input,
            { kind: 'reject', guest: d.guest, sa: d.sa, status: BaStatus.InsufficientResources, detail: `data plane removal failed on de-registration: ${String(e)}`, ack: { ...d.ack, status: BaStatus.InsufficientResources } },
            {},
            'error',
          );
        }
        const old = this.cache.delete(d.guest);
        this.newCoaSince.delete(d.guest);
        this.holds.delete(d.guest);
        this.ahead.delete(d.guest);
        this.markDirty(d.guest, 'delete');
        this.emit({ type: 'deregistered', guest: d.guest, at: input.now, coa: old?.coa, seq: input.bu.seq });
        this.log.info({ guest: d.guest, coa: old?.coa }, 'binding de-registered');
        return this.sendAck(input, d.sa, d.ack);
      }
      case 'accept': {
        const previous = this.cache.get(d.guest);
        // Forwarded ahead of this BU (switchHold): a BU that moves the binding (the one from
        // there, normally) ends that; a refresh from the old CoA meanwhile must not pull the
        // forwarding back to a host the guest has left.
        const ahead = this.ahead.get(d.guest);
        if (ahead && (d.moved || input.now > ahead.until)) this.ahead.delete(d.guest);
        const keepAhead = ahead && this.ahead.has(d.guest);
        try {
          await this.c.dataplane.upsert(keepAhead ? { ...d.tunnel, coa: parseIpv6(ahead.coa) } : d.tunnel);
        } catch (e) {
          // Roll back to what forwarded before, so a failed move leaves the guest reachable.
          await (previous ? this.c.dataplane.upsert(tunnelOf(previous)) : this.c.dataplane.remove(d.guest)).catch(() => {});
          const status = BaStatus.ForwardingSetupFailed;
          const ack = { ...d.ack, status, lifetimeUnits: 0, flags: { ...d.ack.flags, router: false } };
          return this.reject(input, { kind: 'reject', guest: d.guest, sa: d.sa, status, detail: `forwarding setup failed: ${String(e)}`, ack }, {}, 'error');
        }
        const from = previous?.coa;
        const since = this.newCoaSince.get(d.guest);
        this.newCoaSince.delete(d.guest);
        const haMs = d.moved ? Math.max(0, this.c.clock.now() - (since && since.coa === input.srcText ? since.at : input.now)) : undefined;
        this.cache.put(d.binding, d.prefixes, haMs);
        this.countGuest(d.guest, 'accepted');
        this.markDirty(d.guest, 'upsert');
        const type: HaEventType = d.created ? 'created' : d.moved ? 'moved' : 'updated';
        this.emit({ type, guest: d.guest, at: input.now, coa: d.binding.coa, seq: d.binding.seq, ...(d.moved && from ? { from } : {}), ...(haMs !== undefined ? { durationMs: haMs } : {}) });
        if (type !== 'updated') this.log.info({ guest: d.guest, coa: d.binding.coa, from, seq: d.binding.seq, mnps: d.binding.mnps, ...(haMs !== undefined ? { haMs } : {}) }, `binding ${type}`);
        // The binding points at the new host now: what was held for the handover goes there.
        if (d.moved && this.holds.has(d.guest)) await this.endHold(d.guest).catch((e: unknown) => this.log.error({ guest: d.guest, err: String(e) }, 'releasing the hold failed'));
        return this.sendAck(input, d.sa, d.ack);
      }
    }
  }

  /**
   * Remember when an authenticated BU first came from a CoA other than the bound one, so a move
   * accepted later (after retransmissions or rejections) can report how long the handover took
   * at the HA. A BU from the bound CoA, or a marker older than a minute, starts afresh.
   */
  private noteNewCoa(guest: string, coa: string, now: number): void {
    const b = this.cache.get(guest);
    if (!b) return;
    if (coa === b.coa) {
      this.newCoaSince.delete(guest);
      return;
    }
    const seen = this.newCoaSince.get(guest);
    if (!seen || seen.coa !== coa || now - seen.at > 60_000) this.newCoaSince.set(guest, { coa, at: now });
  }

  /**
   * The one place a BU of an enrolled guest is refused with a BA status (≥ 128): counted on the
   * guest's binding, one `rejected` event (status, detail, the CoA it came from) and one log
   * line with src and seq. Bad authenticators (146) log at warn, data-plane failures at error.
   * Nothing here carries key material: the SA stays in `d` for the BA's authenticator only.
   */
  private reject(
    input: BuInput,
    d: Rejection,
    fields: Record<string, unknown> = {},
    level: 'info' | 'warn' | 'error' = d.status === BaStatus.AuthenticationFailed ? 'warn' : 'info',
  ): Reply {
    const src = input.srcText ?? formatIpv6(input.src);
    this.countGuest(d.guest, 'rejected');
    this.emit({ type: 'rejected', guest: d.guest, at: input.now, status: d.status, detail: d.detail, coa: src });
    this.log[level]({ guest: d.guest, status: d.status, detail: d.detail, src, seq: input.bu.seq, ...fields }, 'binding update rejected');
    return this.sendAck(input, d.sa, d.ack);
  }

  /** A BU dropped before any guest is known (unknown SPI, no MN-HA option): at most 1/s logged, the rest summed. */
  private logUnauthenticated(input: BuInput, reason: DropReason, spi: number | undefined): void {
    if (!this.unauthLog.take('all', input.now)) {
      this.unauthSuppressed++;
      return;
    }
    const suppressed = this.unauthSuppressed;
    this.unauthSuppressed = 0;
    this.log.warn(
      { reason, src: formatIpv6(input.src), seq: input.bu.seq, ...(spi !== undefined ? { spi } : {}), ...(suppressed ? { suppressed } : {}) },
      'binding update for no enrolled guest dropped',
    );
  }

  /** Queue a binding for the next batched write; without a store there is nothing to write. */
  private markDirty(guest: string, op: 'upsert' | 'delete'): void {
    if (this.c.store) this.dirty.set(guest, op);
  }

  private sendAck(input: BuInput, sa: SecurityAssociation, ack: BindingAck): Reply {
    this.counters.acks[ack.status] = (this.counters.acks[ack.status] ?? 0) + 1;
    // Proxy mode: the mobile node's "home address" is the BU source, as is the CoA we answer.
    const mh = encodeMobilityHeader(ack, { authenticate: (m, covered) => mnHaAuthenticator(sa, input.src, input.src, m, covered) });
    return { mh, to: input.src, from: input.dst };
  }

  private bindingError(src: Ipv6Address, dst: Ipv6Address, status: BeStatus): Reply | null {
    if (!this.beLimit.take('all', this.c.clock.now())) return this.drop('rate-limited');
    this.counters.bindingErrors++;
    const mh = encodeMobilityHeader({ type: MhType.BindingError, status, homeAddress: src, options: [] });
    return { mh, to: src, from: dst };
  }

  private drop(reason: DropReason, guest?: string): null {
    this.counters.dropped[reason] = (this.counters.dropped[reason] ?? 0) + 1;
    if (guest) this.countGuest(guest, 'dropped');
    return null;
  }

  private countGuest(guest: string, what: 'accepted' | 'rejected' | 'dropped'): void {
    const b = this.cache.get(guest);
    if (!b) return;
    b.counters ??= { accepted: 0, rejected: 0, dropped: 0 };
    b.counters[what]++;
  }

  private emit(e: HaEvent): void {
    for (const fn of this.listeners) {
      try {
        fn(e);
      } catch (err) {
        this.log.error({ err: String(err) }, 'event listener failed');
      }
    }
  }

  private serialise<T>(guest: string, fn: () => Promise<T>): Promise<T> {
    return this.queue.run(guest, fn);
  }
}

export function tunnelOf(b: Binding) {
  return { guest: b.guest, prefixes: b.mnps.map((p) => parsePrefix(p)), coa: parseIpv6(b.coa) };
}

export function toStored(b: Binding): StoredBinding {
  return {
    guest: b.guest,
    mnps: b.mnps,
    coa: b.coa,
    haAddress: b.haAddress,
    seq: b.seq,
    flags: b.flags,
    lifetimeSec: b.lifetimeSec,
    expiresAt: b.expiresAt,
    registeredAt: b.registeredAt,
    updatedAt: b.updatedAt,
    ...(b.lastTimestamp !== undefined ? { lastTimestamp: b.lastTimestamp.toString() } : {}),
    history: b.history ?? [],
  };
}

export function fromStored(s: StoredBinding): Binding {
  return {
    guest: s.guest,
    mnps: [...s.mnps],
    coa: s.coa,
    haAddress: s.haAddress,
    seq: s.seq,
    flags: [...s.flags],
    lifetimeSec: s.lifetimeSec,
    expiresAt: s.expiresAt,
    registeredAt: s.registeredAt,
    updatedAt: s.updatedAt,
    ...(s.lastTimestamp !== undefined ? { lastTimestamp: BigInt(s.lastTimestamp) } : {}),
    ...(s.history.length ? { history: s.history.map((h) => ({ ...h })) } : {}),
  };
}

async function runLimited<T>(items: readonly T[], limit: number, fn: (x: T) => Promise<void>): Promise<void> {
  let i = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (i < items.length) {
      const item = items[i++] as T;
      await fn(item);
    }
  });
  await Promise.all(workers);
}
