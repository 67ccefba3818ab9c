/**
 * Mobility Header messages and options as host-order values.
 *
 * PURE. A decoded message is a discriminated union keyed by `type`; options are a
 * discriminated union keyed by `type` too. Padding (Pad1/PadN) is not kept: the encoder
 * recomputes canonical padding, so encode(decode(x)) = x for any canonically padded x.
 */
import type { Ipv6Address, Ipv6Prefix } from '../ipv6.js';
import type { BaFlags, BuFlags } from './constants.js';
import { MhOptionType, MhType } from './constants.js';

export interface BindingRefreshAdviceOption {
  readonly type: MhOptionType.BindingRefreshAdvice;
  /** Refresh interval in units of 4 s. */
  readonly intervalUnits: number;
}
export interface AlternateCareOfAddressOption {
  readonly type: MhOptionType.AlternateCareOfAddress;
  readonly address: Ipv6Address;
}
export interface NonceIndicesOption {
  readonly type: MhOptionType.NonceIndices;
  readonly homeNonceIndex: number;
  readonly careOfNonceIndex: number;
}
export interface BindingAuthorizationDataOption {
  readonly type: MhOptionType.BindingAuthorizationData;
  readonly authenticator: Uint8Array;
}
export interface MobileNetworkPrefixOption {
  readonly type: MhOptionType.MobileNetworkPrefix;
  readonly prefix: Ipv6Prefix;
}
export interface MobileNodeIdentifierOption {
  readonly type: MhOptionType.MobileNodeIdentifier;
  readonly subtype: number;
  readonly identifier: Uint8Array;
}
export interface AuthenticationOption {
  readonly type: MhOptionType.MobilityMessageAuthentication;
  readonly subtype: number;
  /** Mobility SPI (RFC 4285 §5); 0–255 are reserved. */
  readonly spi: number;
  readonly authenticator: Uint8Array;
  /**
   * Decode only: octets of the Mobility Header from its first octet up to and including
   * this option's SPI field — the MH-Data the authenticator covers (RFC 4285 §5.1).
   */
  readonly coveredLength?: number;
}
export interface ReplayProtectionOption {
  readonly type: MhOptionType.MobilityMessageReplayProtection;
  /** 64-bit NTP timestamp (RFC 1305: seconds since 1900 << 32 | fraction). */
  readonly timestamp: bigint;
}
export interface HomeNetworkPrefixOption {
  readonly type: MhOptionType.HomeNetworkPrefix;
  readonly prefix: Ipv6Prefix;
}
export interface HandoffIndicatorOption {
  readonly type: MhOptionType.HandoffIndicator;
  readonly indicator: number;
}
export interface AccessTechnologyTypeOption {
  readonly type: MhOptionType.AccessTechnologyType;
  readonly technology: number;
}
export interface TimestampOption {
  readonly type: MhOptionType.Timestamp;
  /** RFC 5213 §8.8: 48-bit seconds since 1970 << 16 | 1/65536 s. */
  readonly timestamp: bigint;
}
/** An option type this codec does not know. Skipped by the protocol, kept for inspection. */
export interface UnknownOption {
  readonly type: 'unknown';
  /** The option type octet. */
  readonly code: number;
  readonly data: Uint8Array;
}

export type KnownMobilityOption =
  | BindingRefreshAdviceOption
  | AlternateCareOfAddressOption
  | NonceIndicesOption
  | BindingAuthorizationDataOption
  | MobileNetworkPrefixOption
  | MobileNodeIdentifierOption
  | AuthenticationOption
  | ReplayProtectionOption
  | HomeNetworkPrefixOption
  | HandoffIndicatorOption
  | AccessTechnologyTypeOption
  | TimestampOption;

export type MobilityOption = KnownMobilityOption | UnknownOption;

export interface BindingRefreshRequest {
  readonly type: MhType.BindingRefreshRequest;
  readonly options: readonly MobilityOption[];
}

export interface BindingUpdate {
  readonly type: MhType.BindingUpdate;
  readonly seq: number;
  readonly flags: BuFlags;
  /** Flag-word bits outside A H L K M R P (F, T, B and reserved), kept for round trips. */
  readonly otherFlagBits?: number;
  /** Requested lifetime in units of 4 s; 0 = de-registration. */
  readonly lifetimeUnits: number;
  readonly options: readonly MobilityOption[];
}

export interface BindingAck {
  readonly type: MhType.BindingAck;
  readonly status: number;
  readonly flags: BaFlags;
  /** Flag-octet bits outside K R P, kept for round trips. */
  readonly otherFlagBits?: number;
  readonly seq: number;
  /** Granted lifetime in units of 4 s. */
  readonly lifetimeUnits: number;
  readonly options: readonly MobilityOption[];
}

export interface BindingError {
  readonly type: MhType.BindingError;
  readonly status: number;
  readonly homeAddress: Ipv6Address;
  readonly options: readonly MobilityOption[];
}

/** A message type this codec does not parse; its body is kept as bytes. */
export interface UnknownMessage {
  readonly type: 'unknown';
  /** The MH Type octet. */
  readonly code: number;
  /** Octets after the 6-octet common header. */
  readonly data: Uint8Array;
}

export type MobilityMessage = BindingRefreshRequest | BindingUpdate | BindingAck | BindingError;
export type DecodedMessage = MobilityMessage | UnknownMessage;

export function isUnknownMessage(m: DecodedMessage): m is UnknownMessage {
  return m.type === 'unknown';
}

export function isUnknownOption(o: MobilityOption): o is UnknownOption {
  return o.type === 'unknown';
}

/** First option of a given type, typed. */
export function findOption<T extends MhOptionType>(
  options: readonly MobilityOption[],
  type: T,
): Extract<KnownMobilityOption, { type: T }> | undefined {
  for (const o of options) if (o.type === type) return o as Extract<KnownMobilityOption, { type: T }>;
  return undefined;
}

/** Every option of a given type, typed. */
export function findOptions<T extends MhOptionType>(
  options: readonly MobilityOption[],
  type: T,
): Extract<KnownMobilityOption, { type: T }>[] {
  const out: Extract<KnownMobilityOption, { type: T }>[] = [];
  for (const o of options) if (o.type === type) out.push(o as Extract<KnownMobilityOption, { type: T }>);
  return out;
}

export function buFlags(set: Partial<BuFlags> = {}): BuFlags {
  return {
    ack: false, home: false, linkLocal: false, key: false, map: false, router: false, proxy: false,
    ...set,
  };
}

export function baFlags(set: Partial<BaFlags> = {}): BaFlags {
  return { key: false, router: false, proxy: false, ...set };
}
