/**
 * Mobility Header constants: one table per IANA registry.
 *
 * PURE. Names follow the RFCs; the kernel/UMIP or IANA name is in the doc comment, the way
 * node_netlink keeps `orig`. Every number here is on the wire; nothing is host-specific.
 */

/** IPv6 Next Header value of the Mobility Header (RFC 6275 §6.1, IPPROTO_MH). */
export const IPPROTO_MH = 135;
/** IPv6 Next Header value for IPv6-in-IPv6 (RFC 2473). */
export const IPPROTO_IPV6 = 41;
/** "No Next Header"; the only Payload Proto a Mobility Header may carry (RFC 6275 §6.1.1). */
export const IPPROTO_NONE = 59;

/** Mobility Header Type registry (RFC 6275 §6.1.2–6.1.9 and later RFCs). */
export enum MhType {
  /** RFC 6275 §6.1.2, IP6_MH_TYPE_BRR */
  BindingRefreshRequest = 0,
  /** RFC 6275 §6.1.3 */
  HomeTestInit = 1,
  /** RFC 6275 §6.1.4 */
  CareOfTestInit = 2,
  /** RFC 6275 §6.1.5 */
  HomeTest = 3,
  /** RFC 6275 §6.1.6 */
  CareOfTest = 4,
  /** RFC 6275 §6.1.7, IP6_MH_TYPE_BU */
  BindingUpdate = 5,
  /** RFC 6275 §6.1.8, IP6_MH_TYPE_BACK */
  BindingAck = 6,
  /** RFC 6275 §6.1.9, IP6_MH_TYPE_BERROR */
  BindingError = 7,
  /** RFC 5142 §4 */
  HomeAgentSwitch = 12,
  /** RFC 5847 §3 */
  Heartbeat = 13,
  /** RFC 5846 §6 */
  BindingRevocation = 16,
}

/**
 * Size of each message's fixed part after the 6-octet common header, for the types this
 * codec understands. Options start at 6 + this. (UMIP `_mh_len[]`.)
 */
export const MH_FIXED_LEN: Readonly<Partial<Record<MhType, number>>> = {
  [MhType.BindingRefreshRequest]: 2,
  [MhType.BindingUpdate]: 6,
  [MhType.BindingAck]: 6,
  [MhType.BindingError]: 18,
};

/** Mobility Option Type registry (RFC 6275 §6.2 and the RFCs named per member). */
export enum MhOptionType {
  /** RFC 6275 §6.2.2 — a single zero octet */
  Pad1 = 0,
  /** RFC 6275 §6.2.3 */
  PadN = 1,
  /** RFC 6275 §6.2.4 */
  BindingRefreshAdvice = 2,
  /** RFC 6275 §6.2.5 */
  AlternateCareOfAddress = 3,
  /** RFC 6275 §6.2.6 */
  NonceIndices = 4,
  /** RFC 6275 §6.2.7 */
  BindingAuthorizationData = 5,
  /** RFC 3963 §4.3 */
  MobileNetworkPrefix = 6,
  /** RFC 4283 §3 */
  MobileNodeIdentifier = 8,
  /** RFC 4285 §5 */
  MobilityMessageAuthentication = 9,
  /** RFC 4285 §6 (MESG-ID) */
  MobilityMessageReplayProtection = 10,
  /** RFC 5213 §8.3 */
  HomeNetworkPrefix = 22,
  /** RFC 5213 §8.4 */
  HandoffIndicator = 23,
  /** RFC 5213 §8.5 */
  AccessTechnologyType = 24,
  /** RFC 5213 §8.8 */
  Timestamp = 27,
}

/** Binding Update flags, bits of the 16-bit word at MH offset 8 (RFC 6275 §6.1.7). */
export const BU_FLAG_BITS = {
  /** Acknowledge (RFC 6275) */
  ack: 0x8000,
  /** Home Registration (RFC 6275) */
  home: 0x4000,
  /** Link-Local Address Compatibility (RFC 6275) */
  linkLocal: 0x2000,
  /** Key Management Mobility Capability (RFC 6275) */
  key: 0x1000,
  /** MAP Registration (RFC 5380) */
  map: 0x0800,
  /** Mobile Router (RFC 3963 §4.1) */
  router: 0x0400,
  /** Proxy Registration (RFC 5213 §8.1) */
  proxy: 0x0200,
} as const;

export type BuFlagName = keyof typeof BU_FLAG_BITS;
export type BuFlags = Record<BuFlagName, boolean>;
export const BU_FLAG_MASK = Object.values(BU_FLAG_BITS).reduce((a, b) => a | b, 0);

/** Binding Acknowledgement flags, bits of the octet at MH offset 7 (RFC 6275 §6.1.8). */
export const BA_FLAG_BITS = {
  /** Key Management Mobility Capability (RFC 6275) */
  key: 0x80,
  /** Mobile Router (RFC 3963 §4.2) */
  router: 0x40,
  /** Proxy Registration (RFC 5213 §8.2) */
  proxy: 0x20,
} as const;

export type BaFlagName = keyof typeof BA_FLAG_BITS;
export type BaFlags = Record<BaFlagName, boolean>;
export const BA_FLAG_MASK = Object.values(BA_FLAG_BITS).reduce((a, b) => a | b, 0);

/** Binding Acknowledgement status registry. < 128 accepted, ≥ 128 rejected. */
export enum BaStatus {
  /** RFC 6275 */
  Accepted = 0,
  /** RFC 6275 */
  AcceptedPrefixDiscoveryNecessary = 1,
  /** RFC 6275 */
  ReasonUnspecified = 128,
  /** RFC 6275 */
  AdministrativelyProhibited = 129,
  /** RFC 6275, IP6_MH_BAS_INSUFFICIENT */
  InsufficientResources = 130,
  /** RFC 6275 */
  HomeRegistrationNotSupported = 131,
  /** RFC 6275 */
  NotHomeSubnet = 132,
  /** RFC 6275 */
  NotHomeAgentForThisMobileNode = 133,
  /** RFC 6275 */
  DuplicateAddressDetectionFailed = 134,
  /** RFC 6275, IP6_MH_BAS_SEQNO_BAD */
  SequenceNumberOutOfWindow = 135,
  /** RFC 6275 */
  RegistrationTypeChangeDisallowed = 139,
  /** RFC 3963 §4.2, IP6_MH_BAS_MR_OP_NOT_PERMITTED */
  MobileRouterOperationNotPermitted = 140,
  /** RFC 3963 §4.2, IP6_MH_BAS_INVAL_PRFX */
  InvalidPrefix = 141,
  /** RFC 3963 §4.2, IP6_MH_BAS_NOT_AUTH_FOR_PRFX */
  NotAuthorizedForPrefix = 142,
  /** RFC 3963 §4.2, IP6_MH_BAS_FWDING_FAILED */
  ForwardingSetupFailed = 143,
  /** RFC 4285 §8, MIPV6-ID-MISMATCH */
  IdMismatch = 144,
  /** RFC 4285 §8, MIPV6-MESG-ID-REQD */
  MessageIdRequired = 145,
  /** RFC 4285 §8, MIPV6-AUTH-FAIL */
  AuthenticationFailed = 146,
}

export function baStatusAccepted(status: number): boolean {
  return status < 128;
}

/** Binding Error status registry (RFC 6275 §6.1.9). */
export enum BeStatus {
  /** Unknown binding for Home Address destination option */
  UnknownBindingForHao = 1,
  /** Unrecognized MH Type value */
  UnrecognizedMhType = 2,
}

/** RFC 4283 §3 Mobile Node Identifier subtypes. */
export enum MnIdSubtype {
  /** Network Access Identifier, RFC 4282 */
  Nai = 1,
}

/** RFC 4285 §5 Mobility Message Authentication subtypes. */
export enum AuthSubtype {
  /** MN-HA authentication mobility option */
  MnHa = 1,
  /** MN-AAA authentication mobility option */
  MnAaa = 2,
}

/** RFC 5213 §8.4 Handoff Indicator values. */
export enum HandoffIndicator {
  NewInterface = 1,
  InterfaceChange = 2,
  MagChangeSameInterface = 3,
  Unknown = 4,
  NotChanged = 5,
}

/** RFC 5213 §8.5 Access Technology Type values. */
export enum AccessTechnologyType {
  Virtual = 1,
  Ppp = 2,
  Ieee8023 = 3,
  Ieee80211abg = 4,
  Ieee80216e = 5,
}

/** Lifetimes and Binding Refresh Advice intervals are in units of 4 seconds (RFC 6275 §6.1.7). */
export const LIFETIME_UNIT_SEC = 4;
/** Largest lifetime a 16-bit field can say: 262,140 s (UMIP MAX_BINDING_LIFETIME). */
export const MAX_LIFETIME_SEC = 0xffff * LIFETIME_UNIT_SEC;

/** RFC 6275 §12 protocol constants. */
export const INITIAL_BINDACK_TIMEOUT_MS = 1000;
export const MAX_BINDACK_TIMEOUT_MS = 32000;
export const MAX_UPDATE_RATE_PER_SEC = 3;
/** RFC 6275 §13: InitialBindackTimeoutFirstReg default. */
export const INITIAL_BINDACK_TIMEOUT_FIRST_REG_MS = 1500;
