/**
 * RedisBindingStore: the HA's binding cache persisted in one Redis hash (`keys.bindings`,
 * field = guest id, value = StoredBinding JSON).
 *
 * - writeBatch is one MULTI/EXEC: no other client sees half a batch, and a batch cut off by a
 *   lost connection or refused at queue time (OOM) is not applied at all. (Redis does not roll
 *   back a command that fails inside EXEC; every command here targets the one hash, so the only
 *   such failure, WRONGTYPE, fails them all alike.) Large batches are split into HSET/HDEL
 *   commands of at most `chunkSize` fields inside the same transaction, so no single command
 *   grows without bound.
 * - loadAll walks the hash with HSCAN (`scanCount` hint per call), so a million bindings are
 *   read as many small replies, iteratively (no recursion, no single giant reply). HSCAN may
 *   return a field twice while the hash is rehashed; a Map keeps the last copy.
 * - An entry that is not valid StoredBinding JSON is skipped and reported through
 *   `onCorrupt` (naming the field), so one bad entry cannot keep the HA from starting.
 */
import type { BindingStore, StoredBinding } from '../../ports/binding-store.js';
import type { RedisClient } from './connection.js';
import { redisKeys, type RedisKeys } from './keys.js';

export interface RedisBindingStoreOptions {
  /** Key names; default `redisKeys()` (prefix "roam6"). */
  readonly keys?: RedisKeys;
  /** Most fields per HSET/HDEL command inside one batch. Default 1000. */
  readonly chunkSize?: number;
  /** HSCAN COUNT hint. Default 1000. */
  readonly scanCount?: number;
  /** Called for each stored entry that cannot be decoded; default: one line on stderr. */
  readonly onCorrupt?: (guest: string, reason: string) => void;
}

/** A batch could not be written; the message names the hash key and the batch size. */
export class BindingStoreError extends Error {
  static override readonly name = 'BindingStoreError';
  readonly code = 'ROAM6_ERR_BINDING_STORE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BindingStoreError';
  }
}

export class RedisBindingStore implements BindingStore {
  private readonly key: string;
  private readonly chunkSize: number;
  private readonly scanCount: number;
  private readonly onCorrupt: (guest: string, reason: string) => void;

  constructor(
    private readonly redis: RedisClient,
    opts: RedisBindingStoreOptions = {},
  ) {
    this.key = (opts.keys ?? redisKeys()).bindings;
    this.chunkSize = positiveInt(opts.chunkSize ?? 1000, 'chunkSize');
    this.scanCount = positiveInt(opts.scanCount ?? 1000, 'scanCount');
    this.onCorrupt =
      opts.onCorrupt ??
      ((guest, reason) => process.stderr.write(`binding store ${this.key}: skipped entry ${JSON.stringify(guest)}: ${reason}\n`));
  }

  /**
   * Persist upserts and deletions in one MULTI/EXEC. Upserts are applied first, then deletions,
   * so a guest named in both ends up deleted. Within `upserts` the last entry for a guest wins.
   */
  async writeBatch(upserts: readonly StoredBinding[], deletes: readonly string[]): Promise<void> {
    if (upserts.length === 0 && deletes.length === 0) return;
    const tx = this.redis.multi();
    for (const chunk of chunks(upserts, this.chunkSize)) {
      tx.hset(this.key, ...chunk.flatMap((b) => [guestField(b), JSON.stringify(b)]));
    }
    for (const chunk of chunks(deletes, this.chunkSize)) tx.hdel(this.key, ...chunk);
    const replies = await tx.exec().catch((err: unknown) => {
      throw this.batchError(upserts.length, deletes.length, err);
    });
    const failed = replies?.find(([err]) => err !== null);
    if (replies === null) throw this.batchError(upserts.length, deletes.length, 'transaction aborted');
    if (failed) throw this.batchError(upserts.length, deletes.length, failed[0]);
  }

  /** Every stored binding (expired ones included), read in HSCAN steps. */
  async loadAll(): Promise<StoredBinding[]> {
    const byGuest = new Map<string, StoredBinding>();
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(this.key, cursor, 'COUNT', this.scanCount);
      for (let i = 0; i + 1 < flat.length; i += 2) {
        this.decodeInto(byGuest, flat[i] as string, flat[i + 1] as string);
      }
      cursor = next;
    } while (cursor !== '0');
    return [...byGuest.values()];
  }

  /** Number of stored bindings (HLEN). */
  async size(): Promise<number> {
    return this.redis.hlen(this.key);
  }

  private decodeInto(into: Map<string, StoredBinding>, guest: string, json: string): void {
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch (err) {
      this.onCorrupt(guest, `not JSON (${(err as Error).message})`);
      return;
    }
    const problem = storedBindingProblem(value, guest);
    if (problem) this.onCorrupt(guest, problem);
    else into.set(guest, value as StoredBinding);
  }

  private batchError(upserts: number, deletes: number, cause: unknown): BindingStoreError {
    const why = cause instanceof Error ? cause.message : String(cause);
    return new BindingStoreError(
      `binding store ${this.key}: batch of ${upserts} upserts and ${deletes} deletes not written: ${why}`,
      { cause },
    );
  }
}

function guestField(b: StoredBinding): string {
  if (typeof b.guest !== 'string' || b.guest === '') {
    throw new BindingStoreError('binding store: an upsert has no guest id');
  }
  return b.guest;
}

/** Why `value` is not a StoredBinding for `guest`, or undefined when it is one. */
export function storedBindingProblem(value: unknown, guest: string): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not an object';
  const v = value as Record<string, unknown>;
  if (v['guest'] !== guest) return `guest field ${JSON.stringify(v['guest'])} does not match the hash field`;
  for (const name of ['coa', 'haAddress'] as const) {
    if (typeof v[name] !== 'string') return `${name} is not a string`;
  }
  for (const name of ['seq', 'lifetimeSec', 'expiresAt', 'registeredAt', 'updatedAt'] as const) {
    if (typeof v[name] !== 'number' || !Number.isFinite(v[name])) return `${name} is not a number`;
  }
  for (const name of ['mnps', 'flags', 'history'] as const) {
    if (!Array.isArray(v[name])) return `${name} is not an array`;
  }
  if (v['lastTimestamp'] !== undefined && typeof v['lastTimestamp'] !== 'string') return 'lastTimestamp is not a string';
  return undefined;
}

function* chunks<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

function positiveInt(n: number, name: string): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`RedisBindingStore: ${name} must be a positive integer, got ${n}`);
  return n;
}
