/**
 * Guests enrolled in Redis (`roam6 guest add|list|show|remove`), their per-guest mobility state
 * (which moves with the guest from host to host), and the HA's in-memory view of them.
 *
 * Storage (names in keys.ts, all in hash-tag group `{g}`):
 *   guests            id → enrollment JSON {v: 1, id, mnps, sas, mobileRouter}
 *   guest-spi         SPI → id        (secondary index: SPI lookup and uniqueness are O(1))
 *   guest-mnp         MNP → id        (secondary index: an MNP belongs to one guest)
 *   guest-state:<id>  seq, lastTimestamp, host
 *   guest-version     counter, +1 per enrollment change
 *   guest-changes     channel, JSON {op: "put"|"remove", id, version} after each enrollment change
 *
 * Every step that touches more than one field is one Lua script (contracts in SCRIPTS below, in
 * the BullMQ `<name>-<numKeys>` style), so two hosts or two operators can never interleave.
 *
 * Key material is secret: no error or log line built here contains a key, and
 * {@link redactGuestRecord} is the way to print a record. Security associations handed to the
 * HA carry their key as a non-enumerable property, so JSON.stringify / util.inspect / pino
 * serialisers do not print it.
 */
import { createHash } from 'node:crypto';
import type { GuestDirectory, GuestPolicy } from '../../ports/guest-directory.js';
import { AUTH_ALGORITHMS, type AuthAlgorithm, type SecurityAssociation } from '../../security/mn-ha-auth.js';
import { formatPrefix, parsePrefix, tryParsePrefix } from '../../wire/ipv6.js';
import type { RedisClient } from './connection.js';
import { redisKeys, type RedisKeys } from './keys.js';

// ---------------------------------------------------------------------------------------------
// Records and validation

/** One MN-HA security association as enrolled. */
export interface GuestSaRecord {
  /** Mobility SPI, 256..2^32−1 (0–255 are reserved, RFC 4285 §5). Unique across all guests. */
  readonly spi: number;
  readonly algorithm: AuthAlgorithm;
  /** Shared key, hex (16–128 bytes). Secret. */
  readonly key: string;
}

/** A guest as enrolled in Redis. */
export interface GuestRecord {
  /** Mobile Node Identifier (NAI), e.g. "g1@example.net". */
  readonly id: string;
  /** Mobile Network Prefixes, "addr/len" with host bits zero; stored in canonical form. */
  readonly mnps: readonly string[];
  /** One or more SAs (two during a key rollover). */
  readonly sas: readonly GuestSaRecord[];
  /** Mobile-router operation allowed (RFC 3963 §6.6). */
  readonly mobileRouter: boolean;
  /** Host id currently holding the guest (mobility state; see setHost). */
  readonly host?: string;
}

/** Mobility state that moves with the guest. Absent fields were never set. */
export interface GuestMobilityState {
  /** Last sequence number handed out (or learned from a BA status 135). */
  readonly seq?: number;
  /** Last accepted RFC 4285 replay-protection timestamp (64-bit). */
  readonly lastTimestamp?: bigint;
  readonly host?: string;
}

/** What the change channel carries. `version` is the guest-version counter after the change. */
export interface GuestChange {
  readonly op: 'put' | 'remove';
  readonly id: string;
  readonly version: number;
}

/** Base class for registry failures; messages name the guest and never contain key material. */
export class GuestRegistryError extends Error {
  static override readonly name: string = 'GuestRegistryError';
  readonly code: string = 'ROAM6_ERR_GUEST_REGISTRY';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A record failed validation. */
export class GuestRecordError extends GuestRegistryError {
  static override readonly name = 'GuestRecordError';
  override readonly code = 'ROAM6_ERR_GUEST_RECORD';
}

export class GuestNotFoundError extends GuestRegistryError {
  static override readonly name = 'GuestNotFoundError';
  override readonly code = 'ROAM6_ERR_GUEST_NOT_FOUND';
  constructor(readonly guest: string) {
    super(`guest ${JSON.stringify(guest)} is not enrolled`);
  }
}

/** The SPI is already used by another guest; nothing was changed. */
export class DuplicateSpiError extends GuestRegistryError {
  static override readonly name = 'DuplicateSpiError';
  override readonly code = 'ROAM6_ERR_DUPLICATE_SPI';
  constructor(readonly spi: number, readonly guest: string, readonly owner: string) {
    super(`SPI ${spi} of guest ${JSON.stringify(guest)} is already used by guest ${JSON.stringify(owner)}`);
  }
}

/** The MNP is already enrolled for another guest; nothing was changed. */
export class DuplicateMnpError extends GuestRegistryError {
  static override readonly name = 'DuplicateMnpError';
  override readonly code = 'ROAM6_ERR_DUPLICATE_MNP';
  constructor(readonly mnp: string, readonly guest: string, readonly owner: string) {
    super(`MNP ${mnp} of guest ${JSON.stringify(guest)} is already enrolled for guest ${JSON.stringify(owner)}`);
  }
}

const MIN_SPI = 256;
const MAX_SPI = 0xffff_ffff;
const MIN_KEY_BYTES = 16;
const MAX_KEY_BYTES = 128;
const MAX_SAS = 4;
/** RFC 4283: the MN-ID option carries at most 255 octets after its subtype. */
const MAX_ID_BYTES = 254;
const NAME_PATTERN = /^[^\s\p{Cc}]+$/u;

/** Check an id or host name: 1..254 UTF-8 bytes, no white space or control characters. */
function checkName(what: string, value: unknown): string {
  if (typeof value !== 'string' || !NAME_PATTERN.test(value) || Buffer.byteLength(value) > MAX_ID_BYTES) {
    throw new GuestRecordError(
      `${what} ${JSON.stringify(value)} is invalid: use 1–${MAX_ID_BYTES} bytes without white space or control characters`,
    );
  }
  return value;
}

/** Validate a guest id (NAI). Returns it unchanged. */
export function validateGuestId(id: unknown): string {
  return checkName('guest id', id);
}

/**
 * Validate a record and return its canonical copy (prefixes in RFC 5952 form, hex in lower
 * case, unknown properties dropped). Throws GuestRecordError naming the guest and the field.
 */
export function validateGuestRecord(input: GuestRecord): GuestRecord {
  const id = validateGuestId(input.id);
  const where = `guest ${JSON.stringify(id)}`;
  const mnps = validateMnps(where, input.mnps);
  const sas = validateSas(where, input.sas);
  if (typeof input.mobileRouter !== 'boolean') throw new GuestRecordError(`${where}: mobileRouter must be true or false`);
  const host = input.host === undefined ? undefined : checkName(`${where}: host`, input.host);
  return { id, mnps, sas, mobileRouter: input.mobileRouter, ...(host !== undefined ? { host } : {}) };
}

function validateMnps(where: string, mnps: unknown): string[] {
  if (!Array.isArray(mnps) || mnps.length === 0) throw new GuestRecordError(`${where}: needs at least one MNP`);
  const out: string[] = [];
  mnps.forEach((text: unknown, i) => {
    const prefix = typeof text === 'string' ? tryParsePrefix(text) : null;
    if (!prefix) {
      throw new GuestRecordError(`${where}: mnps[${i}] ${JSON.stringify(text)} is not an IPv6 prefix (addr/len, host bits zero)`);
    }
    const canonical = formatPrefix(prefix);
    if (out.includes(canonical)) throw new GuestRecordError(`${where}: MNP ${canonical} is listed twice`);
    out.push(canonical);
  });
  return out;
}

function validateSas(where: string, sas: unknown): GuestSaRecord[] {
  if (!Array.isArray(sas) || sas.length === 0 || sas.length > MAX_SAS) {
    throw new GuestRecordError(`${where}: needs 1–${MAX_SAS} security associations`);
  }
  const out: GuestSaRecord[] = [];
  sas.forEach((sa: Partial<GuestSaRecord> | null | undefined, i) => {
    const spi = sa?.spi;
    if (typeof spi !== 'number' || !Number.isInteger(spi) || spi < MIN_SPI || spi > MAX_SPI) {
      throw new GuestRecordError(`${where}: sas[${i}] SPI ${JSON.stringify(spi)} must be an integer ${MIN_SPI}–${MAX_SPI} (0–255 are reserved)`);
    }
    if (out.some((s) => s.spi === spi)) throw new GuestRecordError(`${where}: SPI ${spi} is listed twice`);
    const algorithm = sa?.algorithm;
    if (typeof algorithm !== 'string' || !Object.hasOwn(AUTH_ALGORITHMS, algorithm)) {
      throw new GuestRecordError(`${where}: SPI ${spi} algorithm ${JSON.stringify(algorithm)} is not one of ${Object.keys(AUTH_ALGORITHMS).join(', ')}`);
    }
    const key = sa?.key;
    if (typeof key !== 'string' || !/^(?:[0-9a-fA-F]{2})+$/.test(key) || key.length / 2 < MIN_KEY_BYTES || key.length / 2 > MAX_KEY_BYTES) {
      // Never echo the key.
      throw new GuestRecordError(`${where}: SPI ${spi} key must be ${MIN_KEY_BYTES}–${MAX_KEY_BYTES} bytes of hex`);
    }
    out.push({ spi, algorithm: algorithm as AuthAlgorithm, key: key.toLowerCase() });
  });
  return out;
}

/** A copy safe to print or log: every key replaced by "<redacted>". */
export function redactGuestRecord(record: GuestRecord): GuestRecord {
  return { ...record, sas: record.sas.map((sa) => ({ ...sa, key: '<redacted>' })) };
}

/** The HA's view of a record. SA keys are non-enumerable (not printed by JSON or inspect). */
export function guestPolicyFromRecord(record: GuestRecord): GuestPolicy {
  return {
    id: record.id,
    mnps: record.mnps.map((m) => parsePrefix(m)),
    sas: record.sas.map(securityAssociation),
    mobileRouter: record.mobileRouter,
  };
}

function securityAssociation(sa: GuestSaRecord): SecurityAssociation {
  const out = { spi: sa.spi, algorithm: sa.algorithm } as { spi: number; algorithm: AuthAlgorithm; key: Uint8Array };
  Object.defineProperty(out, 'key', { value: new Uint8Array(Buffer.from(sa.key, 'hex')), enumerable: false });
  return out;
}

/** Enrollment as stored: the record without the host (that is mobility state). */
function encodeEnrollment(r: GuestRecord): string {
  return JSON.stringify({ v: 1, id: r.id, mnps: r.mnps, sas: r.sas, mobileRouter: r.mobileRouter });
}

function decodeEnrollment(id: string, json: string, host: string | undefined): GuestRecord {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new GuestRegistryError(`stored enrollment of guest ${JSON.stringify(id)} is not JSON`);
  }
  const v = (typeof value === 'object' && value !== null ? value : {}) as GuestRecord;
  try {
    return validateGuestRecord({ ...v, id, ...(host ? { host } : {}) });
  } catch (err) {
    throw new GuestRegistryError(`stored enrollment of guest ${JSON.stringify(id)} is invalid: ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Lua scripts: the atomic steps. Each header is the contract; the TS caller is the method of
// RedisGuestRegistry with the same name.

interface LuaScript {
  readonly name: string;
  readonly numKeys: number;
  readonly lua: string;
  readonly sha: string;
}

function script(name: string, numKeys: number, lua: string): LuaScript {
  return { name, numKeys, lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/** Lua: SPIs and MNPs of a stored enrollment (shared by put and remove). */
const LUA_OLD_INDEX_ENTRIES = `
local function index_entries(json)
  local rec = cjson.decode(json)
  local spis = {}
  for _, sa in ipairs(rec.sas) do spis[#spis + 1] = string.format('%d', sa.spi) end
  return spis, rec.mnps
end
`;

const SCRIPTS = {
  put: script('guestPut-5', 5, `--[[ Enroll or replace one guest; keep the SPI and MNP indexes exact.
  Input:  KEYS[1] guests hash, KEYS[2] SPI index hash, KEYS[3] MNP index hash, KEYS[4] the guest's state hash,
          KEYS[5] guest-version counter
          ARGV[1] guest id, ARGV[2] enrollment JSON, ARGV[3] change channel, ARGV[4] host ('' = leave as is)
          ARGV[5] n = number of SPIs, ARGV[6 .. 5+n] SPIs (decimal), ARGV[6+n ..] MNPs (canonical)
  Output: 1 created, 0 replaced
          {-2, spi, owner} an SPI belongs to another guest (nothing changed)
          {-3, mnp, owner} an MNP belongs to another guest (nothing changed)
  After a change: INCR KEYS[5], then publish {"op":"put","id":ARGV[1],"version":<new counter>} on ARGV[3]. ]]
${LUA_OLD_INDEX_ENTRIES}
local id = ARGV[1]
local n = tonumber(ARGV[5])
for i = 6, 5 + n do
  local owner = redis.call('HGET', KEYS[2], ARGV[i])
  if owner and owner ~= id then return {-2, ARGV[i], owner} end
end
for i = 6 + n, #ARGV do
  local owner = redis.call('HGET', KEYS[3], ARGV[i])
  if owner and owner ~= id then return {-3, ARGV[i], owner} end
end
local old = redis.call('HGET', KEYS[1], id)
if old then
  local spis, mnps = index_entries(old)
  for _, spi in ipairs(spis) do redis.call('HDEL', KEYS[2], spi) end
  for _, mnp in ipairs(mnps) do redis.call('HDEL', KEYS[3], mnp) end
end
redis.call('HSET', KEYS[1], id, ARGV[2])
for i = 6, 5 + n do redis.call('HSET', KEYS[2], ARGV[i], id) end
for i = 6 + n, #ARGV do redis.call('HSET', KEYS[3], ARGV[i], id) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[4], 'host', ARGV[4]) end
local version = redis.call('INCR', KEYS[5])
redis.call('PUBLISH', ARGV[3], cjson.encode({op = 'put', id = id, version = version}))
if old then return 0 end
return 1
`),

  remove: script('guestRemove-5', 5, `--[[ Remove one guest: enrollment, its index entries and its mobility state.
  Input:  KEYS[1] guests hash, KEYS[2] SPI index hash, KEYS[3] MNP index hash, KEYS[4] the guest's state hash,
          KEYS[5] guest-version counter
          ARGV[1] guest id, ARGV[2] change channel
  Output: 1 removed, 0 not enrolled
  After a removal: INCR KEYS[5], then publish {"op":"remove","id":ARGV[1],"version":<new counter>} on ARGV[2]. ]]
${LUA_OLD_INDEX_ENTRIES}
local id = ARGV[1]
local old = redis.call('HGET', KEYS[1], id)
if not old then return 0 end
local spis, mnps = index_entries(old)
for _, spi in ipairs(spis) do
  if redis.call('HGET', KEYS[2], spi) == id then redis.call('HDEL', KEYS[2], spi) end
end
for _, mnp in ipairs(mnps) do
  if redis.call('HGET', KEYS[3], mnp) == id then redis.call('HDEL', KEYS[3], mnp) end
end
redis.call('HDEL', KEYS[1], id)
redis.call('DEL', KEYS[4])
local version = redis.call('INCR', KEYS[5])
redis.call('PUBLISH', ARGV[2], cjson.encode({op = 'remove', id = id, version = version}))
return 1
`),

  nextSequence: script('guestNextSequence-2', 2, `--[[ Hand out the guest's next BU sequence number (RFC 6275 §9.5.1, modulo 2^16).
  Input:  KEYS[1] the guest's state hash, KEYS[2] guests hash
          ARGV[1] guest id
  Output: the new number 0..65535 (stored as field 'seq'; the first call returns 1, 65535 is followed by 0)
          -1 guest not enrolled ]]
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return -1 end
local last = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local nxt = (last + 1) % 65536
redis.call('HSET', KEYS[1], 'seq', nxt)
return nxt
`),

  setSequence: script('guestSetSequence-2', 2, `--[[ Move the guest's last sequence number forward to ARGV[2], never backward.
  "Forward" is serial arithmetic modulo 2^16: (new - current) mod 2^16 in [1, 32767] (UMIP MIP6_SEQ_GT).
  Input:  KEYS[1] the guest's state hash, KEYS[2] guests hash
          ARGV[1] guest id, ARGV[2] sequence number 0..65535
  Output: 1 stored (or first value), 0 not newer than the stored one (unchanged), -1 guest not enrolled ]]
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return -1 end
local new = tonumber(ARGV[2])
local cur = redis.call('HGET', KEYS[1], 'seq')
if cur then
  local d = (new - tonumber(cur)) % 65536
  if d < 1 or d > 32767 then return 0 end
end
redis.call('HSET', KEYS[1], 'seq', new)
return 1
`),

  advanceTimestamp: script('guestAdvanceTimestamp-2', 2, `--[[ Store the replay-protection timestamp if it is greater than the stored one.
  Timestamps are 64-bit, beyond Lua's exact numbers, so they travel as canonical decimal text
  (no leading zeros) and compare by length, then lexically.
  Input:  KEYS[1] the guest's state hash, KEYS[2] guests hash
          ARGV[1] guest id, ARGV[2] timestamp, canonical decimal
  Output: 1 stored, 0 not greater (unchanged), -1 guest not enrolled ]]
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return -1 end
local new = ARGV[2]
local cur = redis.call('HGET', KEYS[1], 'lastTimestamp')
if cur and (#new < #cur or (#new == #cur and new <= cur)) then return 0 end
redis.call('HSET', KEYS[1], 'lastTimestamp', new)
return 1
`),

  setHost: script('guestSetHost-2', 2, `--[[ Record which host holds the guest now.
  Input:  KEYS[1] the guest's state hash, KEYS[2] guests hash
          ARGV[1] guest id, ARGV[2] host id ('' = none)
  Output: 1 done, -1 guest not enrolled ]]
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return -1 end
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], 'host') else redis.call('HSET', KEYS[1], 'host', ARGV[2]) end
return 1
`),
} as const;

/** Script return value for "guest not enrolled" (BullMQ-style negative codes). */
const NOT_ENROLLED = -1;
const DUPLICATE_SPI = -2;
const DUPLICATE_MNP = -3;

/** EVALSHA, loading the script with EVAL when the server does not have it cached (restart, failover). */
async function runScript(redis: RedisClient, s: LuaScript, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
  try {
    return await redis.evalsha(s.sha, s.numKeys, ...keys, ...args);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return redis.eval(s.lua, s.numKeys, ...keys, ...args);
  }
}

// ---------------------------------------------------------------------------------------------
// The registry

export interface RedisGuestRegistryOptions {
  /** Key names; default `redisKeys()` (prefix "roam6"). */
  readonly keys?: RedisKeys;
  /** HSCAN COUNT hint for list/scan. Default 500. */
  readonly scanCount?: number;
  /** Called for a stored enrollment that does not decode (list/scan skip it). Default: stderr. */
  readonly onCorrupt?: (id: string, reason: string) => void;
}

/** CRUD for enrolled guests plus their mobility state. All methods are safe to call concurrently from many hosts. */
export class RedisGuestRegistry {
  readonly keys: RedisKeys;
  private readonly scanCount: number;
  private readonly onCorrupt: (id: string, reason: string) => void;

  constructor(
    readonly redis: RedisClient,
    opts: RedisGuestRegistryOptions = {},
  ) {
    this.keys = opts.keys ?? redisKeys();
    this.scanCount = opts.scanCount ?? 500;
    this.onCorrupt = opts.onCorrupt ?? ((id, reason) => process.stderr.write(`guest registry: skipped guest ${JSON.stringify(id)}: ${reason}\n`));
  }

  /**
   * Enroll or replace a guest (validated first). Rejects with DuplicateSpiError /
   * DuplicateMnpError when another guest owns one of its SPIs or MNPs. `host`, if given, is
   * stored as mobility state; if absent the stored host is left as it is.
   */
  async put(record: GuestRecord): Promise<'created' | 'updated'> {
    const r = validateGuestRecord(record);
    const k = this.keys;
    const spis = r.sas.map((sa) => String(sa.spi));
    const reply = await runScript(
      this.redis,
      SCRIPTS.put,
      [k.guests, k.guestSpiIndex, k.guestMnpIndex, k.guestState(r.id), k.guestVersion],
      [r.id, encodeEnrollment(r), k.guestChanges, r.host ?? '', spis.length, ...spis, ...r.mnps],
    );
    if (reply === 1) return 'created';
    if (reply === 0) return 'updated';
    if (Array.isArray(reply) && reply[0] === DUPLICATE_SPI) throw new DuplicateSpiError(Number(reply[1]), r.id, String(reply[2]));
    if (Array.isArray(reply) && reply[0] === DUPLICATE_MNP) throw new DuplicateMnpError(String(reply[1]), r.id, String(reply[2]));
    throw new GuestRegistryError(`put guest ${JSON.stringify(r.id)}: unexpected script reply ${JSON.stringify(reply)}`);
  }

  /** The enrolled guest with its current host, or undefined. */
  async get(id: string): Promise<GuestRecord | undefined> {
    validateGuestId(id);
    const replies = await this.redis.multi().hget(this.keys.guests, id).hget(this.keys.guestState(id), 'host').exec();
    const [json, host] = repliesOrThrow(replies, `get guest ${JSON.stringify(id)}`);
    if (typeof json !== 'string') return undefined;
    return decodeEnrollment(id, json, typeof host === 'string' ? host : undefined);
  }

  /** Every enrolled guest with its current host, sorted by id. Corrupt entries are skipped and reported. */
  async list(): Promise<GuestRecord[]> {
    const byId = new Map<string, GuestRecord>(); // HSCAN may repeat a field during a rehash
    for await (const batch of this.scan()) {
      const pipe = this.redis.pipeline();
      for (const r of batch) pipe.hget(this.keys.guestState(r.id), 'host');
      const hosts = repliesOrThrow(await pipe.exec(), 'list guests');
      batch.forEach((r, i) => {
        const host = hosts[i];
        byId.set(r.id, typeof host === 'string' ? { ...r, host } : r);
      });
    }
    return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Enrollments (without host) in HSCAN-sized batches; what the HA loads. Corrupt entries are skipped and reported. */
  async *scan(): AsyncGenerator<GuestRecord[]> {
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(this.keys.guests, cursor, 'COUNT', this.scanCount);
      const batch: GuestRecord[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const id = flat[i] as string;
        try {
          batch.push(decodeEnrollment(id, flat[i + 1] as string, undefined));
        } catch (err) {
          this.onCorrupt(id, (err as Error).message);
        }
      }
      if (batch.length > 0) yield batch;
      cursor = next;
    } while (cursor !== '0');
  }

  /** Remove a guest with its index entries and mobility state. False when it was not enrolled. */
  async remove(id: string): Promise<boolean> {
    validateGuestId(id);
    const k = this.keys;
    const keys = [k.guests, k.guestSpiIndex, k.guestMnpIndex, k.guestState(id), k.guestVersion];
    const reply = await runScript(this.redis, SCRIPTS.remove, keys, [id, k.guestChanges]);
    return reply === 1;
  }

  /** The enrollment change counter (0 before the first change). */
  async version(): Promise<number> {
    return Number((await this.redis.get(this.keys.guestVersion)) ?? 0);
  }

  /** The guest id that owns this SPI (one HGET on the index), or undefined. */
  async guestIdForSpi(spi: number): Promise<string | undefined> {
    const id = await this.redis.hget(this.keys.guestSpiIndex, String(spi));
    return id ?? undefined;
  }

  /**
   * The next BU sequence number for this guest, atomically: two hosts calling at once always
   * get different numbers. 1 on first use; wraps 65535 → 0.
   */
  async nextSequence(id: string): Promise<number> {
    const reply = await this.stateScript(SCRIPTS.nextSequence, id, []);
    if (typeof reply !== 'number' || reply < 0 || reply > 0xffff) {
      throw new GuestRegistryError(`next sequence of guest ${JSON.stringify(id)}: unexpected script reply ${JSON.stringify(reply)}`);
    }
    return reply;
  }

  /**
   * Raise the last used sequence number to `seq` (e.g. the HA's last accepted number from a BA
   * with status 135), so the next nextSequence() returns seq + 1. Never moves backward in 2^16
   * serial arithmetic. Returns true when the stored number changed.
   */
  async setSequence(id: string, seq: number): Promise<boolean> {
    if (!Number.isInteger(seq) || seq < 0 || seq > 0xffff) {
      throw new RangeError(`sequence number for guest ${JSON.stringify(id)} must be 0–65535, got ${seq}`);
    }
    return (await this.stateScript(SCRIPTS.setSequence, id, [seq])) === 1;
  }

  /** Store the replay-protection timestamp if it is greater than the stored one. Returns true when stored. */
  async advanceReplayTimestamp(id: string, timestamp: bigint): Promise<boolean> {
    if (timestamp < 0n || timestamp > 0xffff_ffff_ffff_ffffn) {
      throw new RangeError(`replay timestamp for guest ${JSON.stringify(id)} must fit 64 bits unsigned`);
    }
    return (await this.stateScript(SCRIPTS.advanceTimestamp, id, [timestamp.toString()])) === 1;
  }

  /** Record the host that holds the guest now (undefined: none). */
  async setHost(id: string, host: string | undefined): Promise<void> {
    const value = host === undefined ? '' : checkName(`guest ${JSON.stringify(id)}: host`, host);
    await this.stateScript(SCRIPTS.setHost, id, [value]);
  }

  /** The guest's mobility state, or undefined when the guest is not enrolled. */
  async getState(id: string): Promise<GuestMobilityState | undefined> {
    validateGuestId(id);
    const replies = await this.redis.multi().hexists(this.keys.guests, id).hgetall(this.keys.guestState(id)).exec();
    const [enrolled, fields] = repliesOrThrow(replies, `get state of guest ${JSON.stringify(id)}`);
    if (enrolled !== 1) return undefined;
    return decodeState((fields ?? {}) as Record<string, string>);
  }

  private async stateScript(s: LuaScript, id: string, args: readonly (string | number)[]): Promise<unknown> {
    validateGuestId(id);
    const reply = await runScript(this.redis, s, [this.keys.guestState(id), this.keys.guests], [id, ...args]);
    if (reply === NOT_ENROLLED) throw new GuestNotFoundError(id);
    return reply;
  }
}

/** The values of a MULTI/pipeline reply; throws the first command error, naming the step. */
function repliesOrThrow(replies: [Error | null, unknown][] | null, what: string): unknown[] {
  if (replies === null) throw new GuestRegistryError(`${what}: transaction aborted`);
  const failed = replies.find(([err]) => err !== null);
  if (failed?.[0]) throw new GuestRegistryError(`${what}: ${failed[0].message}`, { cause: failed[0] });
  return replies.map(([, value]) => value);
}

function decodeState(fields: Readonly<Record<string, string>>): GuestMobilityState {
  const seq = fields['seq'];
  const ts = fields['lastTimestamp'];
  const host = fields['host'];
  return {
    ...(seq !== undefined ? { seq: Number(seq) } : {}),
    ...(ts !== undefined ? { lastTimestamp: BigInt(ts) } : {}),
    ...(host !== undefined ? { host } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// The HA's in-memory directory

export interface RedisGuestDirectoryOptions {
  /**
   * Called after a guest was added, changed (policy) or removed (undefined) once the directory
   * has started; not for the guests of the initial load.
   */
  readonly onChange?: (id: string, guest: GuestPolicy | undefined) => void;
  /** Where reload failures are reported (the old view is kept). Default: stderr. */
  readonly onError?: (message: string) => void;
  /**
   * How often to compare the guest-version counter with what notifications delivered. A
   * mismatch seen on two checks in a row triggers a full reload. Default 5000 ms; 0 disables.
   */
  readonly resyncIntervalMs?: number;
}

interface DirectoryEntry {
  readonly policy: GuestPolicy;
  /** The enrollment JSON, to tell a real change from a no-op on full reloads. */
  readonly fingerprint: string;
}

/**
 * GuestDirectory over the registry: every guest in memory (Maps by id and by SPI), kept fresh
 * by the change channel on a connection of its own. Lookups are synchronous.
 *
 * Reloads run one at a time in arrival order, so the view converges on what Redis holds.
 * Missed notifications are caught three ways: a full reload after the subscriber reconnects
 * (standalone Redis), a gap in the notification version numbers, and a periodic check of the
 * guest-version counter (the only way on Cluster, whose subscriber reconnects silently).
 */
export class RedisGuestDirectory implements GuestDirectory {
  private byIdMap = new Map<string, DirectoryEntry>();
  private bySpiMap = new Map<number, { readonly guest: GuestPolicy; readonly sa: SecurityAssociation }>();
  private subscriber: RedisClient | undefined;
  private chain: Promise<void> = Promise.resolve();
  /** Highest guest-version known to be reflected in the view. */
  private seenVersion = 0;
  /** Counter value a resync check found ahead of seenVersion (reload if still ahead next time). */
  private suspectVersion: number | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private readonly onChange: (id: string, guest: GuestPolicy | undefined) => void;
  private readonly onError: (message: string) => void;
  private readonly resyncIntervalMs: number;

  constructor(
    private readonly registry: RedisGuestRegistry,
    private readonly connections: { duplicate(): RedisClient },
    opts: RedisGuestDirectoryOptions = {},
  ) {
    this.onChange = opts.onChange ?? (() => undefined);
    this.onError = opts.onError ?? ((m) => process.stderr.write(`guest directory: ${m}\n`));
    this.resyncIntervalMs = opts.resyncIntervalMs ?? 5_000;
  }

  /** Subscribe to changes, then load every guest. Resolves when the first load is complete. */
  async start(): Promise<void> {
    const sub = this.connections.duplicate();
    this.subscriber = sub;
    const channel = this.registry.keys.guestChanges;
    sub.on('message', (ch: string, message: string) => {
      if (ch === channel) this.onMessage(message);
    });
    // The first load is queued ahead of every notification but reads only once the
    // subscription is live, so no change can fall between the two.
    let subscribed = (): void => undefined;
    const live = new Promise<void>((resolve) => (subscribed = resolve));
    const initial = this.enqueue(async () => {
      await live;
      await this.reloadAll(false);
    }, 'initial load', true);
    try {
      await sub.subscribe(channel);
    } catch (err) {
      initial.catch(() => undefined);
      throw err;
    } finally {
      subscribed();
    }
    // Registered after the first subscription, so every later 'ready' is a reconnect:
    // notifications sent meanwhile are lost. Subscribe again (its reply proves the
    // subscription is live) before reading everything.
    sub.on('ready', () => {
      this.enqueue(async () => {
        await sub.subscribe(channel);
        await this.reloadAll();
      }, 'reload after reconnect');
    });
    await initial;
    if (this.resyncIntervalMs > 0) {
      this.resyncTimer = setInterval(() => this.enqueue(() => this.resyncCheck(), 'resync check'), this.resyncIntervalMs);
      this.resyncTimer.unref();
    }
  }

  /** Stop listening. Lookups keep answering from the last view. */
  async stop(): Promise<void> {
    clearInterval(this.resyncTimer);
    this.resyncTimer = undefined;
    const sub = this.subscriber;
    this.subscriber = undefined;
    if (sub) {
      sub.removeAllListeners('message');
      sub.removeAllListeners('ready');
      sub.disconnect();
    }
    await this.chain;
  }

  bySpi(spi: number): { readonly guest: GuestPolicy; readonly sa: SecurityAssociation } | undefined {
    return this.bySpiMap.get(spi);
  }

  byId(id: string): GuestPolicy | undefined {
    return this.byIdMap.get(id)?.policy;
  }

  *all(): Iterable<GuestPolicy> {
    for (const e of this.byIdMap.values()) yield e.policy;
  }

  get size(): number {
    return this.byIdMap.size;
  }

  /** Resolves when every reload queued so far has run (tests, orderly shutdown). */
  idle(): Promise<void> {
    return this.chain;
  }

  private onMessage(message: string): void {
    let change: Partial<GuestChange>;
    try {
      change = JSON.parse(message) as Partial<GuestChange>;
    } catch {
      this.onError(`ignored malformed change notification ${JSON.stringify(message.slice(0, 200))}`);
      return;
    }
    const { id, version } = change;
    if (typeof id !== 'string' || typeof version !== 'number') return;
    this.enqueue(async () => {
      const gap = version > this.seenVersion + 1;
      await this.reloadOne(id);
      this.seenVersion = Math.max(this.seenVersion, version);
      if (gap) await this.reloadAll();
    }, `reload of guest ${JSON.stringify(id)}`);
  }

  /** Run `task` after every earlier one; failures are reported (or rethrown when `rethrow`). */
  private enqueue(task: () => Promise<void>, what: string, rethrow = false): Promise<void> {
    const run = this.chain.then(task);
    this.chain = run.catch((err: unknown) => {
      if (!rethrow) this.onError(`${what} failed: ${(err as Error).message}`);
    });
    return rethrow ? run : this.chain;
  }

  /** Reload all when the counter was ahead of the view on this check and the previous one. */
  private async resyncCheck(): Promise<void> {
    const current = await this.registry.version();
    if (current <= this.seenVersion) {
      this.suspectVersion = undefined;
    } else if (this.suspectVersion !== undefined && this.seenVersion < this.suspectVersion) {
      this.suspectVersion = undefined;
      await this.reloadAll();
    } else {
      this.suspectVersion = current;
    }
  }

  private async reloadOne(id: string): Promise<void> {
    let record: GuestRecord | undefined;
    try {
      record = await this.registry.get(id);
    } catch (err) {
      // A corrupt entry removes the guest from the view rather than keeping a stale policy.
      this.onError((err as Error).message);
      record = undefined;
    }
    const old = this.byIdMap.get(id);
    if (old) this.unindex(id, old.policy);
    if (record) {
      const entry = { policy: guestPolicyFromRecord(record), fingerprint: encodeEnrollment(record) };
      this.index(entry);
      if (old?.fingerprint !== entry.fingerprint) this.onChange(id, entry.policy);
    } else if (old) {
      this.onChange(id, undefined);
    }
  }

  /** Read the counter first: every change after it is either in the scan or notified later. */
  private async reloadAll(notify = true): Promise<void> {
    const version = await this.registry.version();
    const fresh = new Map<string, DirectoryEntry>();
    for await (const batch of this.registry.scan()) {
      for (const r of batch) fresh.set(r.id, { policy: guestPolicyFromRecord(r), fingerprint: encodeEnrollment(r) });
    }
    const old = this.byIdMap;
    this.byIdMap = new Map();
    this.bySpiMap = new Map();
    for (const entry of fresh.values()) this.index(entry);
    this.seenVersion = Math.max(this.seenVersion, version);
    if (!notify) return;
    for (const [id, entry] of fresh) {
      if (old.get(id)?.fingerprint !== entry.fingerprint) this.onChange(id, entry.policy);
    }
    for (const id of old.keys()) if (!fresh.has(id)) this.onChange(id, undefined);
  }

  private index(entry: DirectoryEntry): void {
    this.byIdMap.set(entry.policy.id, entry);
    for (const sa of entry.policy.sas) this.bySpiMap.set(sa.spi, { guest: entry.policy, sa });
  }

  private unindex(id: string, policy: GuestPolicy): void {
    this.byIdMap.delete(id);
    for (const sa of policy.sas) {
      if (this.bySpiMap.get(sa.spi)?.guest.id === id) this.bySpiMap.delete(sa.spi);
    }
  }
}
