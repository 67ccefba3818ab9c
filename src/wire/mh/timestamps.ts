/**
 * The two 64-bit timestamp formats, which must not be mixed up (protocol-notes §1.10).
 *
 * PURE: conversions only; the caller passes the time in.
 * - RFC 4285 §6 MESG-ID (option 10): NTP, seconds since 1900 in the upper 32 bits, fraction below.
 * - RFC 5213 §8.8 Timestamp (option 27): seconds since 1970 in the upper 48 bits, 1/65536 s below.
 */

/** Seconds between 1900-01-01 and 1970-01-01. */
export const NTP_UNIX_OFFSET_SEC = 2_208_988_800n;

export function ntpFromUnixMs(ms: number): bigint {
  const whole = BigInt(Math.floor(ms / 1000));
  const fracMs = ms - Math.floor(ms / 1000) * 1000;
  const frac = BigInt(Math.floor((fracMs / 1000) * 2 ** 32));
  return ((whole + NTP_UNIX_OFFSET_SEC) << 32n) | frac;
}

export function unixMsFromNtp(ntp: bigint): number {
  const sec = Number((ntp >> 32n) - NTP_UNIX_OFFSET_SEC);
  const frac = Number(ntp & 0xffffffffn) / 2 ** 32;
  return (sec + frac) * 1000;
}

export function pmipTimestampFromUnixMs(ms: number): bigint {
  const whole = BigInt(Math.floor(ms / 1000));
  const frac = BigInt(Math.floor(((ms % 1000) / 1000) * 65536));
  return (whole << 16n) | frac;
}

export function unixMsFromPmipTimestamp(ts: bigint): number {
  return Number(ts >> 16n) * 1000 + (Number(ts & 0xffffn) / 65536) * 1000;
}
