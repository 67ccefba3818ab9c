/**
 * Mobility Header codec (RFC 6275 §6.1, with the NEMO, PMIPv6 and RFC 4285 additions).
 *
 * PURE: bytes in, values out, and back. `decodeMobilityHeader` never throws; it returns a
 * WireError naming the reason and offset. `encodeMobilityHeader` lays options out with the
 * canonical padding (each option at its xn+y offset counted from the start of the MH; an
 * authentication option last, with no trailing padding) and throws WireError('unencodable')
 * only for a message no peer could read.
 */
import { ipv6FromBytes } from '../ipv6.js';
import { decodeFail, decodeOk, WireError, type DecodeResult } from '../errors.js';
import { writeMhChecksum, verifyMhChecksum, type ChecksumContext } from './checksum.js';
import {
  BA_FLAG_BITS,
  BA_FLAG_MASK,
  BU_FLAG_BITS,
  BU_FLAG_MASK,
  IPPROTO_NONE,
  MH_FIXED_LEN,
  MhOptionType,
  MhType,
  type BaFlags,
  type BuFlags,
} from './constants.js';
import type { DecodedMessage, MobilityMessage, MobilityOption, UnknownMessage } from './messages.js';
import { isUnknownMessage, isUnknownOption } from './messages.js';
import { alignmentPad, optionSpec, type OptionSpec } from './options.js';

/** Smallest possible MH: the 6-octet common header rounded up to 8. */
const MH_MIN_LEN = 8;
const COMMON_HEADER_LEN = 6;

export interface DecodeContext {
  /** When given, the checksum is verified against this pseudo-header ('bad-checksum' if wrong). */
  readonly checksum?: ChecksumContext;
}

export function decodeMobilityHeader(bytes: Uint8Array, ctx: DecodeContext = {}): DecodeResult<DecodedMessage> {
  try {
    return decodeUnchecked(bytes, ctx);
  } catch (e) {
    // Safety net: every path above is bounds-checked and the fuzz suite asserts this never
    // happens. If it ever does, the daemon still sees a WireError, not an exception.
    return decodeFail('bad-field', `decoder fault: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function decodeUnchecked(bytes: Uint8Array, ctx: DecodeContext): DecodeResult<DecodedMessage> {
  if (bytes.length < MH_MIN_LEN) return decodeFail('truncated', `${bytes.length} octets; a Mobility Header has at least 8`, 0);
  if (bytes[0] !== IPPROTO_NONE) return decodeFail('bad-payload-proto', `payload proto ${bytes[0]}, expected 59`, 0);
  if (bytes.length % 8 !== 0) return decodeFail('not-multiple-of-8', `${bytes.length} octets is not a multiple of 8`, 0);
  const total = (bytes[1]! + 1) * 8;
  if (bytes.length < total) return decodeFail('truncated', `header length says ${total} octets, got ${bytes.length}`, 1);
  if (bytes.length > total) return decodeFail('length-mismatch', `header length says ${total} octets, got ${bytes.length}`, 1);
  if (ctx.checksum && !verifyMhChecksum(bytes, ctx.checksum)) return decodeFail('bad-checksum', 'checksum does not verify', 4);

  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = bytes[2]!;
  const fixed = MH_FIXED_LEN[type as MhType];
  if (fixed === undefined) {
    const unknown: UnknownMessage = { type: 'unknown', code: type, data: bytes.slice(COMMON_HEADER_LEN, total) };
    return decodeOk(unknown);
  }
  const optStart = COMMON_HEADER_LEN + fixed;
  if (optStart > total) {
    return decodeFail('too-short-for-type', `type ${type} needs ${optStart} octets, header length gives ${total}`, 1);
  }
  const opts = decodeOptions(bytes, view, optStart, total);
  if (!opts.ok) return opts;
  const options = opts.value;

  switch (type as MhType) {
    case MhType.BindingRefreshRequest:
      return decodeOk({ type: MhType.BindingRefreshRequest, options });
    case MhType.BindingUpdate: {
      const word = view.getUint16(8);
      const other = word & ~BU_FLAG_MASK & 0xffff;
      return decodeOk({
        type: MhType.BindingUpdate,
        seq: view.getUint16(6),
        flags: decodeBuFlags(word),
        ...(other ? { otherFlagBits: other } : {}),
        lifetimeUnits: view.getUint16(10),
        options,
      });
    }
    case MhType.BindingAck: {
      const octet = bytes[7]!;
      const other = octet & ~BA_FLAG_MASK & 0xff;
      return decodeOk({
        type: MhType.BindingAck,
        status: bytes[6]!,
        flags: decodeBaFlags(octet),
        ...(other ? { otherFlagBits: other } : {}),
        seq: view.getUint16(8),
        lifetimeUnits: view.getUint16(10),
        options,
      });
    }
    case MhType.BindingError:
      return decodeOk({ type: MhType.BindingError, status: bytes[6]!, homeAddress: ipv6FromBytes(bytes, 8), options });
    default:
      return decodeFail('bad-field', `no decoder for type ${type}`, 2);
  }
}

function decodeBuFlags(word: number): BuFlags {
  return {
    ack: (word & BU_FLAG_BITS.ack) !== 0,
    home: (word & BU_FLAG_BITS.home) !== 0,
    linkLocal: (word & BU_FLAG_BITS.linkLocal) !== 0,
    key: (word & BU_FLAG_BITS.key) !== 0,
    map: (word & BU_FLAG_BITS.map) !== 0,
    router: (word & BU_FLAG_BITS.router) !== 0,
    proxy: (word & BU_FLAG_BITS.proxy) !== 0,
  };
}

function decodeBaFlags(octet: number): BaFlags {
  return {
    key: (octet & BA_FLAG_BITS.key) !== 0,
    router: (octet & BA_FLAG_BITS.router) !== 0,
    proxy: (octet & BA_FLAG_BITS.proxy) !== 0,
  };
}

function lengthAllowed(spec: OptionSpec, len: number): boolean {
  return typeof spec.length === 'number' ? len === spec.length : len >= spec.length[0] && len <= spec.length[1];
}

/**
 * Walk the option TLVs in [start, end). Unknown types are kept and skipped (RFC 6275 §6.2.1);
 * padding is dropped. Checks length, alignment, duplicates and "authentication comes last".
 */
function decodeOptions(bytes: Uint8Array, view: DataView, start: number, end: number): DecodeResult<MobilityOption[]> {
  const options: MobilityOption[] = [];
  let seen = 0; // bitmask of non-repeatable known types seen (all known types are < 32)
  let lastOnly: string | null = null;
  let off = start;
  while (off < end) {
    const type = bytes[off]!;
    if (type === MhOptionType.Pad1) {
      off += 1;
      continue;
    }
    if (off + 2 > end) return decodeFail('bad-option-length', `option ${type} header runs past the end`, off);
    const len = bytes[off + 1]!;
    const next = off + 2 + len;
    if (next > end) return decodeFail('bad-option-length', `option ${type} length ${len} runs past the end (${end})`, off);
    if (type === MhOptionType.PadN) {
      off = next;
      continue;
    }
    if (lastOnly) return decodeFail('auth-not-last', `option ${type} follows ${lastOnly}, which must be last`, off);

    const spec = optionSpec(type);
    if (!spec) {
      options.push({ type: 'unknown', code: type, data: bytes.slice(off + 2, next) });
      off = next;
      continue;
    }
    if (!lengthAllowed(spec, len)) return decodeFail('bad-option-length', `${spec.name} with length ${len}`, off);
    if (spec.align && off % spec.align.x !== spec.align.y) {
      return decodeFail('bad-alignment', `${spec.name} at offset ${off}, needs ${spec.align.x}n+${spec.align.y}`, off);
    }
    if (!spec.repeatable) {
      const bit = 1 << type;
      if (seen & bit) return decodeFail('duplicate-option', `${spec.name} appears twice`, off);
      seen |= bit;
    }
    const decoded = spec.decode(bytes.subarray(off + 2, next), view, off);
    if (typeof decoded === 'string') return decodeFail('bad-field', `${spec.name}: ${decoded}`, off);
    options.push(decoded);
    if (spec.mustBeLast) lastOnly = spec.name;
    off = next;
  }
  return decodeOk(options);
}

// ---------------------------------------------------------------------------------------------
// Encoding

export interface EncodeOptions {
  /** Fill the checksum for this pseudo-header. Without it the checksum field is zero (the
   * kernel fills it on a raw IPPROTO_MH socket with IPV6_CHECKSUM offset 4). */
  readonly checksum?: ChecksumContext;
  /**
   * Compute the authentication option's authenticator. Called after layout with the MH so
   * far (checksum field zero) and the number of octets covered (up to and including the SPI,
   * RFC 4285 §5.1). Must return exactly as many octets as the option's authenticator holds.
   */
  readonly authenticate?: (mh: Uint8Array, coveredLength: number) => Uint8Array;
}

interface Placed {
  readonly option: MobilityOption;
  readonly padBefore: number;
  readonly at: number;
  readonly bodyLength: number;
  readonly spec: OptionSpec | undefined;
}

function optionBodyLength(o: MobilityOption, spec: OptionSpec | undefined): number {
  if (isUnknownOption(o)) return o.data.length;
  return (spec as OptionSpec).bodyLength(o);
}

/** Lay out options from `start`; returns placements and the total (multiple of 8) length. */
function layoutOptions(options: readonly MobilityOption[], start: number): { placed: Placed[]; total: number } {
  const placed: Placed[] = [];
  let off = start;
  options.forEach((option, i) => {
    const code = isUnknownOption(option) ? option.code : option.type;
    if (code === MhOptionType.Pad1 || code === MhOptionType.PadN) {
      throw new WireError('unencodable', 'padding is computed by the encoder; do not pass Pad1/PadN');
    }
    const spec = isUnknownOption(option) ? undefined : optionSpec(option.type);
    if (!isUnknownOption(option) && !spec) throw new WireError('unencodable', `option type ${code} has no encoder`);
    const bodyLength = optionBodyLength(option, spec);
    if (bodyLength > 255) throw new WireError('unencodable', `${spec?.name ?? `option ${code}`} body of ${bodyLength} octets exceeds 255`);
    let pad: number;
    if (spec?.mustBeLast) {
      if (i !== options.length - 1) throw new WireError('unencodable', `${spec.name} must be the last option`);
      pad = lastOptionPad(off, 2 + bodyLength, spec);
    } else {
      pad = alignmentPad(off, spec?.align ?? null);
    }
    placed.push({ option, padBefore: pad, at: off + pad, bodyLength, spec });
    off += pad + 2 + bodyLength;
  });
  const total = Math.max(MH_MIN_LEN, off + ((8 - (off % 8)) % 8));
  return { placed, total };
}

/**
 * Padding before the last (authentication) option so that it meets its alignment and ends
 * exactly on an 8-octet boundary: no trailing padding (RFC 4285 §5, RFC 6275 §6.2.7).
 */
function lastOptionPad(off: number, optionLength: number, spec: OptionSpec): number {
  for (let pad = 0; pad < 8; pad++) {
    const at = off + pad;
    const aligned = !spec.align || at % spec.align.x === spec.align.y;
    if (aligned && (at + optionLength) % 8 === 0) return pad;
  }
  throw new WireError('unencodable', `${spec.name} of ${optionLength} octets cannot end on an 8-octet boundary at its alignment`);
}

function writePadding(out: Uint8Array, at: number, n: number): void {
  if (n === 0) return;
  if (n === 1) {
    out[at] = MhOptionType.Pad1;
    return;
  }
  out[at] = MhOptionType.PadN;
  out[at + 1] = n - 2; // body is already zero
}

export function encodeMobilityHeader(msg: MobilityMessage | UnknownMessage, opts: EncodeOptions = {}): Uint8Array {
  if (isUnknownMessage(msg)) return encodeUnknown(msg, opts);
  const fixed = MH_FIXED_LEN[msg.type];
  if (fixed === undefined) throw new WireError('unencodable', `message type ${String(msg.type)} has no encoder`);
  const optStart = COMMON_HEADER_LEN + fixed;
  const { placed, total } = layoutOptions(msg.options, optStart);
  if (total > 256 * 8) throw new WireError('unencodable', `message of ${total} octets exceeds the 2048-octet maximum`);

  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  out[0] = IPPROTO_NONE;
  out[1] = total / 8 - 1;
  out[2] = msg.type;
  writeFixed(msg, out, view);

  let cursor = optStart;
  let authCovered = -1;
  for (const p of placed) {
    writePadding(out, cursor, p.padBefore);
    out[p.at] = isUnknownOption(p.option) ? p.option.code : p.option.type;
    out[p.at + 1] = p.bodyLength;
    if (isUnknownOption(p.option)) out.set(p.option.data, p.at + 2);
    else p.spec!.encode(p.option, out, view, p.at + 2);
    if (p.option.type === MhOptionType.MobilityMessageAuthentication) authCovered = p.at + 7;
    cursor = p.at + 2 + p.bodyLength;
  }
  writePadding(out, cursor, total - cursor);

  if (opts.authenticate) {
    if (authCovered < 0) throw new WireError('unencodable', 'authenticate given but the message has no authentication option');
    const authLen = total - authCovered;
    const mac = opts.authenticate(out, authCovered);
    if (mac.length !== authLen) throw new WireError('unencodable', `authenticator is ${mac.length} octets, the option holds ${authLen}`);
    out.set(mac, authCovered);
  }
  if (opts.checksum) writeMhChecksum(out, opts.checksum);
  return out;
}

function writeFixed(msg: MobilityMessage, out: Uint8Array, view: DataView): void {
  switch (msg.type) {
    case MhType.BindingRefreshRequest:
      return;
    case MhType.BindingUpdate: {
      let word = msg.otherFlagBits ?? 0;
      for (const [name, bit] of Object.entries(BU_FLAG_BITS)) if (msg.flags[name as keyof BuFlags]) word |= bit;
      view.setUint16(6, msg.seq & 0xffff);
      view.setUint16(8, word & 0xffff);
      view.setUint16(10, msg.lifetimeUnits & 0xffff);
      return;
    }
    case MhType.BindingAck: {
      let octet = msg.otherFlagBits ?? 0;
      for (const [name, bit] of Object.entries(BA_FLAG_BITS)) if (msg.flags[name as keyof BaFlags]) octet |= bit;
      out[6] = msg.status & 0xff;
      out[7] = octet & 0xff;
      view.setUint16(8, msg.seq & 0xffff);
      view.setUint16(10, msg.lifetimeUnits & 0xffff);
      return;
    }
    case MhType.BindingError:
      out[6] = msg.status & 0xff;
      out.set(msg.homeAddress, 8);
      return;
  }
}

function encodeUnknown(msg: UnknownMessage, opts: EncodeOptions): Uint8Array {
  const total = COMMON_HEADER_LEN + msg.data.length;
  if (total % 8 !== 0 || total < MH_MIN_LEN || total > 2048) {
    throw new WireError('unencodable', `unknown message body of ${msg.data.length} octets does not make a valid length`);
  }
  const out = new Uint8Array(total);
  out[0] = IPPROTO_NONE;
  out[1] = total / 8 - 1;
  out[2] = msg.code;
  out.set(msg.data, COMMON_HEADER_LEN);
  if (opts.checksum) writeMhChecksum(out, opts.checksum);
  return out;
}
