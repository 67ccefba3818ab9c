/**
 * Binding Update processing at the Home Agent, in proxy mode (no Home Address option):
 * RFC 6275 §9.5.1 and §10.3.1–2, RFC 3963 §6, RFC 4285 §5–6, with the deviations listed in
 * docs/protocol.md. PURE: takes the decoded BU, the current binding (if any) and the guest's
 * policy, and returns a Decision — what to reply, what to change, and what to tell the data
 * plane. It never touches the cache, a socket or the kernel.
 */
import {
  formatIpv6,
  formatPrefix,
  ipv6Equal,
  maskIpv6,
  prefixCovers,
  prefixEqual,
  type Ipv6Address,
  type Ipv6Prefix,
} from '../wire/ipv6.js';
import {
  AuthSubtype,
  BaStatus,
  MhOptionType,
  MhType,
  baFlags,
  findOption,
  findOptions,
  lifetimeUnitsFromSec,
  ntpFromUnixMs,
  seqGreater,
  type BindingAck,
  type BindingUpdate,
  type MobilityOption,
} from '../wire/mh/index.js';
import { authOptionFor, verifyMnHa, type SecurityAssociation } from '../security/mn-ha-auth.js';
import type { GuestDirectory, GuestPolicy } from '../ports/guest-directory.js';
import type { TunnelBinding } from '../ports/dataplane.js';
import type { Binding } from './binding-cache.js';

export interface HaPolicyConfig {
  /** Prefixes this HA serves (RFC 3963 §6.2: the "served prefix" check). */
  readonly servedPrefixes: readonly Ipv6Prefix[];
  /** Longest lifetime granted, seconds (≤ 262,140). */
  readonly maxLifetimeSec: number;
  /** Require the RFC 4285 Mobility Message Replay Protection option (else 145). */
  readonly requireTimestamp: boolean;
  /** How far a BU's timestamp may be from the HA's clock (RFC 4285 §6 default 7 s). */
  readonly timestampWindowMs: number;
  /** Binding Refresh Advice as a share of the granted lifetime (0 disables the option). */
  readonly refreshAdviceRatio: number;
}

export const DEFAULT_HA_POLICY: Omit<HaPolicyConfig, 'servedPrefixes'> = {
  maxLifetimeSec: 3600,
  requireTimestamp: false,
  timestampWindowMs: 7000,
  refreshAdviceRatio: 0.8,
};

/** Why a BU was dropped without any answer (counted, never replied to). */
export type DropReason =
  | 'no-auth-option'
  | 'unknown-spi'
  | 'rate-limited'
  | 'auth-fail-limited'
  | 'stale-limited'
  | 'not-binding-update';

export interface BuInput {
  readonly bu: BindingUpdate;
  /** The received MH octets (the authenticator covers them). */
  readonly bytes: Uint8Array;
  /** IPv6 source of the BU: the CoA and, in proxy mode, also the "home address". */
  readonly src: Ipv6Address;
  /** The HA address the BU was sent to (IPV6_PKTINFO); the BA is sent from it. */
  readonly dst: Ipv6Address;
  readonly now: number;
  /** `src` in text form, when the caller has it already (saves formatting it again). */
  readonly srcText?: string;
}

interface Answered {
  readonly guest: string;
  readonly sa: SecurityAssociation;
  readonly ack: BindingAck;
}

/** A BU refused with a BA status of 128 or more; `detail` says why, for the log and the event. */
export type Rejection = Answered & { readonly kind: 'reject'; readonly status: BaStatus; readonly detail: string };

export type Decision =
  | { readonly kind: 'drop'; readonly reason: DropReason; readonly guest?: string }
  /** A de-registration from a CoA that is not the binding's: RFC 5213 §5.3.5 "MUST ignore". */
  | { readonly kind: 'ignore'; readonly guest: string; readonly reason: 'dereg-from-old-coa' }
  | Rejection
  | (Answered & { readonly kind: 'deregister' })
  | (Answered & {
      readonly kind: 'accept';
      /** The binding as it will be once the data plane has it. */
      readonly binding: Binding;
      readonly prefixes: readonly Ipv6Prefix[];
      readonly tunnel: TunnelBinding;
      readonly created: boolean;
      readonly moved: boolean;
    });

/** The BU flag names that are set, as one shared frozen array per combination (bindings keep it). */
const FLAG_NAMES = new Map<string, readonly string[]>();
function flagNames(flags: BindingUpdate['flags']): string[] {
  const names = (Object.keys(flags) as (keyof typeof flags)[]).filter((f) => flags[f]);
  const key = names.join(',');
  let shared = FLAG_NAMES.get(key);
  if (!shared) {
    shared = Object.freeze(names);
    FLAG_NAMES.set(key, shared);
  }
  return shared as string[];
}

/** Look-ups the policy needs from the HA's state (kept narrow for tests). */
export interface PolicyState {
  readonly guests: GuestDirectory;
  binding(guest: string): Binding | undefined;
  /** The guest currently holding exactly this prefix, if any. */
  prefixOwner(prefix: Ipv6Prefix): string | undefined;
}

/**
 * Authenticate a BU (RFC 4285 §5.1): find the SA by SPI and check the authenticator over
 * CoA | HoA | MH-Data. Returns the guest and SA, a silent drop (with the SPI when there was
 * one), or "bad authenticator".
 */
export function authenticate(
  input: BuInput,
  guests: GuestDirectory,
):
  | { ok: true; guest: GuestPolicy; sa: SecurityAssociation }
  | { ok: false; drop: DropReason; spi?: number }
  | { ok: false; guest: GuestPolicy; sa: SecurityAssociation; badMac: true } {
  const auth = findOption(input.bu.options, MhOptionType.MobilityMessageAuthentication);
  if (!auth || auth.subtype !== AuthSubtype.MnHa) return { ok: false, drop: 'no-auth-option' };
  const entry = guests.bySpi(auth.spi);
  if (!entry) return { ok: false, drop: 'unknown-spi', spi: auth.spi }; // RFC 4285 §5.1.1: silently discard
  const coa = careOfAddress(input);
  if (!verifyMnHa(entry.sa, coa, input.src, input.bytes, auth)) return { ok: false, guest: entry.guest, sa: entry.sa, badMac: true };
  return { ok: true, guest: entry.guest, sa: entry.sa };
}

/** CoA = Alternate Care-of Address option if present, else the IPv6 source (RFC 6275 §9.5.1). */
export function careOfAddress(input: Pick<BuInput, 'bu' | 'src'>): Ipv6Address {
  return findOption(input.bu.options, MhOptionType.AlternateCareOfAddress)?.address ?? input.src;
}

/**
 * Decide on an authenticated BU. `guest`/`sa` come from `authenticate`. Rate limiting is the
 * caller's (it is state); everything else that decides the answer is here.
 */
export function decideBindingUpdate(
  input: BuInput,
  guest: GuestPolicy,
  sa: SecurityAssociation,
  state: PolicyState,
  cfg: HaPolicyConfig,
): Decision {
  const { bu, now } = input;
  const reject = (status: BaStatus, detail: string, seq = bu.seq): Decision => ({
    kind: 'reject',
    guest: guest.id,
    sa,
    status,
    detail,
    ack: buildAck(input, sa, { status, seq, lifetimeUnits: 0, router: false, timestamp: replayEcho(input, status) }),
  });

  // The SA authenticates one guest; a BU that names another identity is not authenticated for it.
  const mnId = findOption(bu.options, MhOptionType.MobileNodeIdentifier);
  if (mnId && new TextDecoder().decode(mnId.identifier) !== guest.id) {
    return reject(BaStatus.AuthenticationFailed, 'Mobile Node Identifier does not belong to this SPI');
  }
  if (!bu.flags.home) {
    return bu.flags.router
      ? reject(BaStatus.MobileRouterOperationNotPermitted, 'R flag without H flag (RFC 3963 §6.1)')
      : reject(BaStatus.AdministrativelyProhibited, 'not a home registration; this HA does no route optimisation');
  }
  if (!bu.flags.router) return reject(BaStatus.HomeRegistrationNotSupported, 'roam6 serves mobile routers only (R flag required)');
  if (!guest.mobileRouter) return reject(BaStatus.MobileRouterOperationNotPermitted, 'mobile-router operation is off for this guest');

  const existing = state.binding(guest.id);
  const replay = checkReplay(input, existing, cfg);
  if (replay) return reject(replay.status, replay.detail);

  const coa = careOfAddress(input);
  const coaText = coa === input.src && input.srcText !== undefined ? input.srcText : formatIpv6(coa);
  const dereg = bu.lifetimeUnits === 0;
  if (dereg && existing && existing.coa !== coaText) {
    return { kind: 'ignore', guest: guest.id, reason: 'dereg-from-old-coa' };
  }
  if (existing && !seqGreater(bu.seq, existing.seq)) {
    return reject(BaStatus.SequenceNumberOutOfWindow, `sequence ${bu.seq} is not newer than ${existing.seq}`, existing.seq);
  }

  if (dereg) {
    if (!existing) return reject(BaStatus.NotHomeAgentForThisMobileNode, 'de-registration without a binding');
    return {
      kind: 'deregister',
      guest: guest.id,
      sa,
      ack: buildAck(input, sa, { status: BaStatus.Accepted, seq: bu.seq, lifetimeUnits: 0, router: true, timestamp: replayEcho(input, 0) }),
    };
  }

  const prefixes = registeredPrefixes(bu.options, guest, state, cfg);
  if ('status' in prefixes) return reject(prefixes.status, prefixes.detail);

  const lifetimeSec = Math.min(bu.lifetimeUnits * 4, cfg.maxLifetimeSec);
  const lifetimeUnits = lifetimeUnitsFromSec(lifetimeSec);
  const grantedSec = lifetimeUnits * 4;
  const timestamp = findOption(bu.options, MhOptionType.MobilityMessageReplayProtection)?.timestamp;
  const binding: Binding = {
    guest: guest.id,
    mnps: prefixes.map(formatPrefix),
    coa: coaText,
    haAddress: formatIpv6(input.dst),
    seq: bu.seq,
    flags: flagNames(bu.flags),
    lifetimeSec: grantedSec,
    expiresAt: now + grantedSec * 1000,
    registeredAt: existing?.registeredAt ?? now,
    updatedAt: now,
    ...(timestamp !== undefined ? { lastTimestamp: timestamp } : existing?.lastTimestamp !== undefined ? { lastTimestamp: existing.lastTimestamp } : {}),
    ...(existing?.history ? { history: existing.history } : {}),
    ...(existing?.counters ? { counters: existing.counters } : {}),
  };
  const refresh = cfg.refreshAdviceRatio > 0 ? Math.floor(lifetimeUnits * cfg.refreshAdviceRatio) : 0;
  return {
    kind: 'accept',
    guest: guest.id,
    sa,
    binding,
    prefixes,
    tunnel: { guest: guest.id, prefixes, coa },
    created: !existing,
    moved: !!existing && existing.coa !== coaText,
    ack: buildAck(input, sa, {
      status: BaStatus.Accepted,
      seq: bu.seq,
      lifetimeUnits,
      router: true,
      timestamp: replayEcho(input, 0),
      ...(refresh > 0 && refresh < lifetimeUnits ? { refreshUnits: refresh } : {}),
    }),
  };
}

/**
 * RFC 3963 §6.1–6.2 prefix rules. Explicit mode (MNP options present): each must be a valid,
 * served prefix (else 141) that this guest is authorised for and nobody else holds (else 142).
 * Implicit mode: the guest's configured prefixes (none → 143).
 */
function registeredPrefixes(
  options: readonly MobilityOption[],
  guest: GuestPolicy,
  state: PolicyState,
  cfg: HaPolicyConfig,
): Ipv6Prefix[] | { status: BaStatus; detail: string } {
  const requested = findOptions(options, MhOptionType.MobileNetworkPrefix).map((o) => o.prefix);
  if (requested.length === 0) {
    if (guest.mnps.length === 0) return { status: BaStatus.ForwardingSetupFailed, detail: 'implicit mode and no prefix configured for this guest' };
    return [...guest.mnps];
  }
  const out: Ipv6Prefix[] = [];
  for (const p of requested) {
    const text = () => `${formatIpv6(p.addr)}/${p.len}`; // only for the rejection messages
    if (p.len === 0 || !ipv6Equal(maskIpv6(p.addr, p.len), p.addr)) return { status: BaStatus.InvalidPrefix, detail: `${text()} is not a valid prefix` };
    if (!cfg.servedPrefixes.some((s) => prefixCovers(s, p))) return { status: BaStatus.InvalidPrefix, detail: `${text()} is outside the prefixes this HA serves` };
    if (!guest.mnps.some((g) => prefixCovers(g, p))) return { status: BaStatus.NotAuthorizedForPrefix, detail: `${text()} is not authorised for ${guest.id}` };
    const owner = state.prefixOwner(p);
    if (owner !== undefined && owner !== guest.id) return { status: BaStatus.NotAuthorizedForPrefix, detail: `${text()} is held by another guest` };
    if (!out.some((q) => prefixEqual(q, p))) out.push(p);
  }
  return out;
}

/**
 * RFC 4285 §6 replay protection with the MESG-ID timestamp: required when configured (145);
 * must be within the window of the HA's clock and newer than the last accepted one (144).
 */
function checkReplay(input: BuInput, existing: Binding | undefined, cfg: HaPolicyConfig): { status: BaStatus; detail: string } | null {
  const opt = findOption(input.bu.options, MhOptionType.MobilityMessageReplayProtection);
  if (!opt) return cfg.requireTimestamp ? { status: BaStatus.MessageIdRequired, detail: 'replay-protection timestamp required' } : null;
  const ts = opt.timestamp;
  const here = ntpFromUnixMs(input.now);
  const windowNtp = BigInt(Math.round((cfg.timestampWindowMs / 1000) * 2 ** 32));
  const diff = ts > here ? ts - here : here - ts;
  if (diff > windowNtp) return { status: BaStatus.IdMismatch, detail: `timestamp ${Number(diff >> 22n) / 1024} s away from the HA clock` };
  if (existing?.lastTimestamp !== undefined && ts <= existing.lastTimestamp) return { status: BaStatus.IdMismatch, detail: 'timestamp not newer than the last accepted one (replay)' };
  return null;
}

/**
 * The timestamp to put in the BA (RFC 4285 §6): the BU's own on success; on 144, the HA's
 * time in the high 32 bits so the mobile node can resynchronise.
 */
function replayEcho(input: BuInput, status: number): bigint | undefined {
  const opt = findOption(input.bu.options, MhOptionType.MobilityMessageReplayProtection);
  if (!opt) return undefined;
  if (status !== BaStatus.IdMismatch) return opt.timestamp;
  return (ntpFromUnixMs(input.now) & ~0xffffffffn) | (opt.timestamp & 0xffffffffn);
}

interface AckSpec {
  readonly status: number;
  readonly seq: number;
  readonly lifetimeUnits: number;
  readonly router: boolean;
  readonly timestamp: bigint | undefined;
  readonly refreshUnits?: number;
}

/** The BA: R when requested and accepted, MN-ID and timestamp echoed, BRA, and the MN-HA option last. */
function buildAck(input: BuInput, sa: SecurityAssociation, a: AckSpec): BindingAck {
  const options: MobilityOption[] = [];
  const mnId = findOption(input.bu.options, MhOptionType.MobileNodeIdentifier);
  if (mnId) options.push(mnId);
  if (a.refreshUnits !== undefined) options.push({ type: MhOptionType.BindingRefreshAdvice, intervalUnits: a.refreshUnits });
  if (a.timestamp !== undefined) options.push({ type: MhOptionType.MobilityMessageReplayProtection, timestamp: a.timestamp });
  options.push(authOptionFor(sa));
  const accepted = a.status < 128;
  return {
    type: MhType.BindingAck,
    status: a.status,
    flags: baFlags({ router: accepted && a.router && input.bu.flags.router, proxy: input.bu.flags.proxy }),
    seq: a.seq,
    lifetimeUnits: a.lifetimeUnits,
    options,
  };
}

/** The 146 answer to a BU whose authenticator does not verify (RFC 4285 §5.1.1). */
export function rejectBadAuthenticator(input: BuInput, guest: GuestPolicy, sa: SecurityAssociation): Rejection {
  return {
    kind: 'reject',
    guest: guest.id,
    sa,
    status: BaStatus.AuthenticationFailed,
    detail: 'authenticator does not verify',
    ack: buildAck(input, sa, { status: BaStatus.AuthenticationFailed, seq: input.bu.seq, lifetimeUnits: 0, router: false, timestamp: undefined }),
  };
}
