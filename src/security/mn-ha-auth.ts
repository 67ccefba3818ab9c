/**
 * RFC 4285 §5.1 MN-HA authentication (Mobility Message Authentication option, subtype 1).
 *
 *   Authenticator = First(N, HMAC(key, CoA | HoA | MH-Data))
 *
 * MH-Data is the Mobility Header from its first octet up to and including the option's SPI
 * field, with the Checksum field zero and Header Len already final. HMAC-SHA1-96 is the
 * RFC's algorithm; HMAC-SHA256-128 is offered as a stronger choice per security association
 * (a roam6 extension: both ends must agree on it, the wire format is unchanged).
 */
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { AuthSubtype, MhOptionType } from '../wire/mh/constants.js';
import type { AuthenticationOption } from '../wire/mh/messages.js';

export type AuthAlgorithm = 'hmac-sha1-96' | 'hmac-sha256-128';

export const AUTH_ALGORITHMS: Readonly<Record<AuthAlgorithm, { readonly hash: string; readonly macLength: number }>> = {
  'hmac-sha1-96': { hash: 'sha1', macLength: 12 },
  'hmac-sha256-128': { hash: 'sha256', macLength: 16 },
};

export interface SecurityAssociation {
  /** Mobility SPI; 0–255 are reserved (RFC 4285 §5). */
  readonly spi: number;
  readonly algorithm: AuthAlgorithm;
  readonly key: Uint8Array;
}

/** An authentication option with a zero authenticator of the right size, ready for encode. */
export function authOptionFor(sa: SecurityAssociation): AuthenticationOption {
  return {
    type: MhOptionType.MobilityMessageAuthentication,
    subtype: AuthSubtype.MnHa,
    spi: sa.spi,
    authenticator: new Uint8Array(AUTH_ALGORITHMS[sa.algorithm].macLength),
  };
}

/** Compute the authenticator over CoA | HoA | MH[0, coveredLength) with the checksum zeroed. */
export function mnHaAuthenticator(
  sa: SecurityAssociation,
  coa: Uint8Array,
  hoa: Uint8Array,
  mh: Uint8Array,
  coveredLength: number,
): Uint8Array {
  const alg = AUTH_ALGORITHMS[sa.algorithm];
  const hmac = createHmac(alg.hash, keyObject(sa.key));
  hmac.update(coa);
  hmac.update(hoa);
  hmac.update(mh.subarray(0, 4));
  hmac.update(ZERO_CHECKSUM);
  hmac.update(mh.subarray(6, coveredLength));
  return new Uint8Array(hmac.digest().subarray(0, alg.macLength));
}

const ZERO_CHECKSUM = new Uint8Array(2);

/** Imported HMAC keys, per key buffer: importing a raw key on every message showed in profiles. */
const KEYS = new WeakMap<Uint8Array, KeyObject>();

function keyObject(key: Uint8Array): KeyObject {
  let k = KEYS.get(key);
  if (!k) {
    k = createSecretKey(key);
    KEYS.set(key, k);
  }
  return k;
}

/** Constant-time check of a received authentication option against the SA. */
export function verifyMnHa(
  sa: SecurityAssociation,
  coa: Uint8Array,
  hoa: Uint8Array,
  mh: Uint8Array,
  option: AuthenticationOption,
): boolean {
  if (option.coveredLength === undefined) return false;
  const expected = mnHaAuthenticator(sa, coa, hoa, mh, option.coveredLength);
  if (expected.length !== option.authenticator.length) return false;
  return timingSafeEqual(expected, option.authenticator);
}
