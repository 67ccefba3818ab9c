/**
 * Errors the wire codecs return (decode) or throw (encode of an impossible message).
 *
 * PURE. Decoding never throws: it returns `{ ok: false, error: WireError }` naming the
 * reason and the byte offset where decoding stopped.
 */

export type WireErrorReason =
  /** Fewer bytes than the header or a field needs. */
  | 'truncated'
  /** Header Len says more (or less) than the bytes received. */
  | 'length-mismatch'
  /** A Mobility Header must be a multiple of 8 octets (RFC 6275 §6.1.1). */
  | 'not-multiple-of-8'
  /** Payload Proto is not 59 (RFC 6275 §6.1.1). */
  | 'bad-payload-proto'
  /** Header Len too small for the message's fixed part. */
  | 'too-short-for-type'
  /** An option's Length is wrong for its type, or runs past the header. */
  | 'bad-option-length'
  /** An option starts at an offset its xn+y alignment forbids (RFC 6275 §6.2.1). */
  | 'bad-alignment'
  /** An option that may appear once appears twice. */
  | 'duplicate-option'
  /** An authentication option is followed by another non-padding option (RFC 4285 §5, RFC 6275 §6.2.7). */
  | 'auth-not-last'
  /** A field holds a value its RFC forbids (e.g. prefix length > 128). */
  | 'bad-field'
  /** The checksum over the pseudo-header does not verify. */
  | 'bad-checksum'
  /** A message that cannot be encoded as given. */
  | 'unencodable'
  /** Hex or JSON input that is not a message at all (CLI layer). */
  | 'bad-input';

export class WireError extends Error {
  static override readonly name = 'WireError';
  readonly code = 'ROAM6_ERR_WIRE';

  constructor(
    readonly reason: WireErrorReason,
    readonly detail: string,
    /** Byte offset from the start of the decoded message (Mobility Header, ICMPv6 header) where the problem is. */
    readonly offset?: number,
  ) {
    super(offset === undefined ? `${reason}: ${detail}` : `${reason} at offset ${offset}: ${detail}`);
    this.name = 'WireError';
  }
}

export type DecodeResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: WireError };

export const decodeOk = <T>(value: T): DecodeResult<T> => ({ ok: true, value });
export const decodeFail = <T>(reason: WireErrorReason, detail: string, offset?: number): DecodeResult<T> => ({
  ok: false,
  error: new WireError(reason, detail, offset),
});
