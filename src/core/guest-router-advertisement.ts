/**
 * What the router on a guest link advertises, and when: the Router Advertisement and the
 * unsolicited Neighbor Advertisements that let an unmodified guest configure itself by SLAAC
 * (RFC 4862) and keep its default router across moves.
 *
 * PURE: values in, ND messages out. Sending is in src/platform/linux/ra-sender.ts.
 *
 * Departures from RFC 4861 defaults, all allowed by it or by RFC 6275 §7.5 (faster RAs for
 * mobility):
 * - MinRtrAdvInterval 3 s / MaxRtrAdvInterval 10 s (RFC 4861 default 200 s / 600 s).
 * - Router Lifetime 1800 s regardless of the interval: the router never goes away (it moves
 *   with the guest), and a host agent restart must not cost the guest its default route.
 * - Solicited RAs are sent at once (no 0–500 ms MAX_RA_DELAY_TIME), rate-limited by
 *   MinDelayBetweenRAs, as RFC 6275 §7.5 allows.
 * - No final RA with Router Lifetime 0 when the sender stops (RFC 4861 §6.2.5): the same router
 *   keeps serving the guest from the next host.
 */
import { formatPrefix, type Ipv6Address, type Ipv6Prefix } from '../wire/ipv6.js';
import {
  Icmpv6Type, NdOptionType, RouterPreference,
  type NdOption, type NeighborAdvertisement, type RouterAdvertisement,
} from '../wire/nd.js';
import type { GuestLinkIdentity } from './guest-link-identity.js';

/** RFC 6275 §7.5: the smallest MinRtrAdvInterval and MaxRtrAdvInterval a mobile-friendly router may use. */
export const MIN_RTR_ADV_INTERVAL_FLOOR_MS = 30;
export const MAX_RTR_ADV_INTERVAL_FLOOR_MS = 70;
/** RFC 4861 §6.2.1: MaxRtrAdvInterval ≤ 1800 s, AdvDefaultLifetime ≤ 9000 s. */
export const MAX_RTR_ADV_INTERVAL_CEILING_MS = 1_800_000;
export const MAX_ROUTER_LIFETIME_SEC = 9000;

/** A route advertised with a Route Information option (RFC 4191), e.g. a more specific path. */
export interface AdvertisedRoute {
  readonly prefix: Ipv6Prefix;
  readonly preference: RouterPreference;
  readonly lifetimeSec: number;
}

export interface GuestRaContent {
  /** The guest's MNPs. Each goes out as a Prefix Information option (L; A when /64). */
  readonly prefixes: readonly Ipv6Prefix[];
  /** Link MTU (RFC 4861 §4.6.4): the tunnel's inner MTU. */
  readonly mtu: number;
  readonly routerLifetimeSec: number;
  readonly validLifetimeSec: number;
  readonly preferredLifetimeSec: number;
  /** Default hop limit for the guest; 0 leaves the guest's own. */
  readonly curHopLimit: number;
  /** Recursive DNS servers (RFC 8106). */
  readonly dns?: { readonly servers: readonly Ipv6Address[]; readonly lifetimeSec: number };
  /** Route Information options (RFC 4191); guests ignore them unless configured to accept them. */
  readonly routes?: readonly AdvertisedRoute[];
}

export interface GuestRaTiming {
  /** MinRtrAdvInterval. */
  readonly minIntervalMs: number;
  /** MaxRtrAdvInterval. */
  readonly maxIntervalMs: number;
  /** MinDelayBetweenRAs: the fastest an RS can make us repeat an RA. */
  readonly minDelayBetweenRasMs: number;
}

export const DEFAULT_RA_TIMING: GuestRaTiming = { minIntervalMs: 3000, maxIntervalMs: 10_000, minDelayBetweenRasMs: 100 };

export const DEFAULT_RA_LIFETIMES = {
  routerLifetimeSec: 1800,
  /** radvd's AdvValidLifetime / AdvPreferredLifetime defaults. */
  validLifetimeSec: 86_400,
  preferredLifetimeSec: 14_400,
  curHopLimit: 64,
} as const;

/** A Router Advertisement configuration the RFCs forbid. */
export class GuestRaConfigError extends Error {
  static override readonly name = 'GuestRaConfigError';
  readonly code = 'ROAM6_ERR_RA_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'GuestRaConfigError';
  }
}

/** Throw GuestRaConfigError for timing RFC 4861 §6.2.1 / RFC 6275 §7.5 do not allow. */
export function checkRaTiming(t: GuestRaTiming, routerLifetimeSec: number): void {
  const fail = (why: string): never => { throw new GuestRaConfigError(`Router Advertisement timing: ${why}`); };
  if (!(t.maxIntervalMs >= MAX_RTR_ADV_INTERVAL_FLOOR_MS && t.maxIntervalMs <= MAX_RTR_ADV_INTERVAL_CEILING_MS)) {
    fail(`MaxRtrAdvInterval ${t.maxIntervalMs} ms is outside ${MAX_RTR_ADV_INTERVAL_FLOOR_MS}..${MAX_RTR_ADV_INTERVAL_CEILING_MS} ms`);
  }
  if (!(t.minIntervalMs >= MIN_RTR_ADV_INTERVAL_FLOOR_MS && t.minIntervalMs <= 0.75 * t.maxIntervalMs)) {
    fail(`MinRtrAdvInterval ${t.minIntervalMs} ms is outside ${MIN_RTR_ADV_INTERVAL_FLOOR_MS} ms..0.75 × MaxRtrAdvInterval`);
  }
  if (!(t.minDelayBetweenRasMs >= MIN_RTR_ADV_INTERVAL_FLOOR_MS)) {
    fail(`MinDelayBetweenRAs ${t.minDelayBetweenRasMs} ms is below ${MIN_RTR_ADV_INTERVAL_FLOOR_MS} ms`);
  }
  if (routerLifetimeSec !== 0 && !(routerLifetimeSec * 1000 >= t.maxIntervalMs && routerLifetimeSec <= MAX_ROUTER_LIFETIME_SEC)) {
    fail(`router lifetime ${routerLifetimeSec} s must be 0 or MaxRtrAdvInterval..${MAX_ROUTER_LIFETIME_SEC} s`);
  }
}

/** Throw GuestRaConfigError for content no guest could use. */
export function checkRaContent(c: GuestRaContent): void {
  if (c.prefixes.length === 0) throw new GuestRaConfigError('Router Advertisement: no prefix to advertise');
  if (!(Number.isInteger(c.mtu) && c.mtu >= 1280)) throw new GuestRaConfigError(`Router Advertisement: MTU ${c.mtu} is below the IPv6 minimum 1280`);
  if (c.preferredLifetimeSec > c.validLifetimeSec) {
    throw new GuestRaConfigError(`Router Advertisement: preferred lifetime ${c.preferredLifetimeSec} s exceeds valid lifetime ${c.validLifetimeSec} s`);
  }
  if (c.dns && c.dns.servers.length === 0) throw new GuestRaConfigError('Router Advertisement: RDNSS without a server');
}

/**
 * The Router Advertisement for a guest link: source link-layer address = the derived MAC,
 * MTU, one Prefix Information option per MNP, then RDNSS and Route Information if configured.
 */
export function guestRouterAdvertisement(id: GuestLinkIdentity, c: GuestRaContent): RouterAdvertisement {
  const options: NdOption[] = [
    { type: NdOptionType.SourceLinkLayerAddress, address: id.mac },
    { type: NdOptionType.Mtu, mtu: c.mtu },
    ...c.prefixes.map((p) => prefixInformation(p, c)),
  ];
  if (c.dns) options.push({ type: NdOptionType.RecursiveDnsServer, lifetimeSec: c.dns.lifetimeSec, servers: c.dns.servers });
  for (const r of c.routes ?? []) {
    options.push({ type: NdOptionType.RouteInformation, prefix: r.prefix, preference: r.preference, lifetimeSec: r.lifetimeSec });
  }
  return {
    type: Icmpv6Type.RouterAdvertisement,
    curHopLimit: c.curHopLimit,
    flags: { managed: false, otherConfig: false, homeAgent: false },
    preference: RouterPreference.Medium,
    routerLifetimeSec: c.routerLifetimeSec,
    reachableTimeMs: 0,
    retransTimerMs: 0,
    options,
  };
}

/**
 * SLAAC forms a 64-bit interface identifier (RFC 4862 §5.5.3 d, RFC 7421), so only a /64 gets
 * the A flag; a shorter or longer MNP is still announced on-link.
 */
function prefixInformation(p: Ipv6Prefix, c: GuestRaContent): NdOption {
  return {
    type: NdOptionType.PrefixInformation,
    prefix: p,
    onLink: true,
    autonomous: p.len === 64,
    routerAddress: false,
    validLifetimeSec: c.validLifetimeSec,
    preferredLifetimeSec: c.preferredLifetimeSec,
  };
}

/**
 * An unsolicited Neighbor Advertisement (RFC 4861 §7.2.6) for one of the gateway's addresses:
 * R=1 (keep us as the guest's router), S=0, and O=1 so that a guest whose cache holds any other
 * MAC for the gateway (say, from before roam6 managed it) takes ours. With the same MAC on every
 * host O=1 changes nothing (RFC 4861 §7.2.5: same address, state unchanged).
 */
export function gatewayNeighborAdvertisement(id: GuestLinkIdentity, target: Ipv6Address): NeighborAdvertisement {
  return {
    type: Icmpv6Type.NeighborAdvertisement,
    flags: { router: true, solicited: false, override: true },
    target,
    options: [{ type: NdOptionType.TargetLinkLayerAddress, address: id.mac }],
  };
}

/** Delay until the next unsolicited RA: uniform in [MinRtrAdvInterval, MaxRtrAdvInterval] (RFC 4861 §6.2.4). */
export function nextUnsolicitedDelayMs(t: GuestRaTiming, random: () => number): number {
  return Math.round(t.minIntervalMs + random() * (t.maxIntervalMs - t.minIntervalMs));
}

/** For logs: "2001:db8:100::/64, 2001:db8:200::/64". */
export function describePrefixes(prefixes: readonly Ipv6Prefix[]): string {
  return prefixes.map(formatPrefix).join(', ');
}
