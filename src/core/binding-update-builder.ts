/**
 * Build the Binding Update a per-guest mobile-router proxy sends (proxy mode, explicit NEMO
 * mode): A|H|R flags, the guest's MN-ID, its MNPs, an optional MESG-ID timestamp, and the
 * MN-HA authenticator last. Also checks a received BA's authenticator. PURE apart from the
 * HMAC; used by the host agent, the tests and the benchmarks.
 */
import type { Ipv6Address, Ipv6Prefix } from '../wire/ipv6.js';
import {
  MhOptionType,
  MhType,
  MnIdSubtype,
  buFlags,
  decodeMobilityHeader,
  encodeMobilityHeader,
  findOption,
  type BindingAck,
  type BindingUpdate,
  type MobilityOption,
} from '../wire/mh/index.js';
import { authOptionFor, mnHaAuthenticator, verifyMnHa, type SecurityAssociation } from '../security/mn-ha-auth.js';

export interface BindingUpdateSpec {
  readonly guest: string;
  readonly sa: SecurityAssociation;
  readonly seq: number;
  /** Requested lifetime in seconds (0 = de-registration). */
  readonly lifetimeSec: number;
  /** The care-of address the BU is sent from (covered by the authenticator). */
  readonly coa: Ipv6Address;
  /** Explicit mode: the MNPs; empty = implicit mode. */
  readonly mnps: readonly Ipv6Prefix[];
  /** RFC 4285 MESG-ID timestamp (NTP 64-bit), when replay protection by timestamp is on. */
  readonly timestamp?: bigint;
  /** Override flags (tests). */
  readonly flags?: Partial<BindingUpdate['flags']>;
}

export function buildBindingUpdate(s: BindingUpdateSpec): { bu: BindingUpdate; bytes: Uint8Array } {
  const options: MobilityOption[] = [
    { type: MhOptionType.MobileNodeIdentifier, subtype: MnIdSubtype.Nai, identifier: new TextEncoder().encode(s.guest) },
    ...s.mnps.map((prefix) => ({ type: MhOptionType.MobileNetworkPrefix as const, prefix })),
  ];
  if (s.timestamp !== undefined) options.push({ type: MhOptionType.MobilityMessageReplayProtection, timestamp: s.timestamp });
  options.push(authOptionFor(s.sa));
  const bu: BindingUpdate = {
    type: MhType.BindingUpdate,
    seq: s.seq & 0xffff,
    flags: buFlags({ ack: true, home: true, router: true, ...s.flags }),
    lifetimeUnits: Math.min(0xffff, Math.floor(s.lifetimeSec / 4)),
    options,
  };
  const bytes = encodeMobilityHeader(bu, { authenticate: (mh, c) => mnHaAuthenticator(s.sa, s.coa, s.coa, mh, c) });
  return { bu, bytes };
}

export type AckCheck =
  | { readonly ok: true; readonly ack: BindingAck }
  | { readonly ok: false; readonly reason: string };

/** Decode a BA and verify its MN-HA authenticator against the SA (CoA = HoA = our address). */
export function checkBindingAck(bytes: Uint8Array, sa: SecurityAssociation, coa: Ipv6Address): AckCheck {
  const r = decodeMobilityHeader(bytes);
  if (!r.ok) return { ok: false, reason: r.error.message };
  if (r.value.type !== MhType.BindingAck) return { ok: false, reason: `not a BA (type ${String(r.value.type)})` };
  const auth = findOption(r.value.options, MhOptionType.MobilityMessageAuthentication);
  if (!auth) return { ok: false, reason: 'BA carries no authentication option' };
  if (auth.spi !== sa.spi) return { ok: false, reason: `BA authenticated with SPI ${auth.spi}, expected ${sa.spi}` };
  if (!verifyMnHa(sa, coa, coa, bytes, auth)) return { ok: false, reason: 'BA authenticator does not verify' };
  return { ok: true, ack: r.value };
}
