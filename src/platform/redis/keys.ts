/**
 * Every Redis key and pub/sub channel roam6 uses, in one place (BullMQ `queue-keys.ts` spirit).
 *
 * Layout: `<prefix>:{<group>}:<name>[:<id>]`. The `{group}` part is a Redis Cluster hash tag:
 * only the text between the first `{` and `}` picks the slot, so every key of one group lives
 * in one slot and multi-key MULTI/Lua steps over a group work on Cluster as on one server.
 * Keys of different groups are never touched by one atomic step.
 *
 * | group | key                         | type   | fields / value                                   | written by                         | read by                  |
 * |-------|-----------------------------|--------|--------------------------------------------------|------------------------------------|--------------------------|
 * | b     | `bindings`                  | hash   | guest id → StoredBinding JSON                    | HA (RedisBindingStore.writeBatch)  | HA on start (loadAll)    |
 * | g     | `guests`                    | hash   | guest id → enrollment JSON (mnps, sas, flags)    | `roam6 guest add/remove` (registry)| HA, agents, CLI          |
 * | g     | `guest-spi`                 | hash   | SPI (decimal) → guest id                         | registry put/remove scripts        | registry (SPI uniqueness), lookups |
 * | g     | `guest-mnp`                 | hash   | MNP "addr/len" (canonical) → guest id            | registry put/remove scripts        | registry (MNP uniqueness)|
 * | g     | `guest-state:<id>`          | hash   | seq, lastTimestamp, host                         | host agents (MR), orchestrator     | host agents, CLI         |
 * | g     | `guest-version`             | string | counter, +1 per enrollment change                | registry put/remove scripts        | RedisGuestDirectory (gap check) |
 * | g     | `guest-changes` (channel)   | pubsub | JSON {op: "put"\|"remove", id, version}          | registry put/remove scripts        | RedisGuestDirectory (HA) |
 * | h     | `hosts`                     | zset   | host id → last heartbeat (epoch ms)              | host agents (heartbeat)            | orchestrator, CLI        |
 * | h     | `host:<id>`                 | string | JSON {coa, haAddress, guests, at}, expires (PX)  | host agents (heartbeat)            | orchestrator, CLI        |
 *
 * The guest keys share one slot on purpose: enrollment, the SPI/MNP indexes and the mobility
 * state are changed together atomically (remove deletes all of them in one script). The cost is
 * that a Cluster does not spread guest data over shards; bindings (the big, hot data) and the
 * queues are separate groups. PUBLISH is not slot-bound; the channel name only follows the
 * same pattern for readability.
 *
 * Guest ids go into key names verbatim. They are NAIs validated by the registry (no white
 * space, no control characters); a `{` inside an id cannot move the key to another slot because
 * only the first `{...}` of a key is the hash tag.
 */

/** Default for every key and channel prefix. */
export const DEFAULT_KEY_PREFIX = 'roam6';

/** What a prefix may contain: no braces (they are ours, for hash tags), no white space. */
const PREFIX_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

/** All roam6 Redis names under one prefix. Build with {@link redisKeys}. */
export interface RedisKeys {
  readonly prefix: string;
  /** Hash: guest id → StoredBinding JSON. Group `{b}`. */
  readonly bindings: string;
  /** Hash: guest id → enrollment JSON. Group `{g}`. */
  readonly guests: string;
  /** Hash: SPI (decimal text) → guest id. Secondary index, kept by the registry scripts. */
  readonly guestSpiIndex: string;
  /** Hash: canonical MNP text → guest id. Secondary index, kept by the registry scripts. */
  readonly guestMnpIndex: string;
  /** String counter: +1 per enrollment change; lets a directory notice missed notifications. */
  readonly guestVersion: string;
  /** Channel: JSON {op, id, version} after every enrollment change. */
  readonly guestChanges: string;
  /** Hash per guest: mobility state that moves with the guest (seq, lastTimestamp, host). */
  guestState(id: string): string;
  /** Sorted set: host id → epoch ms of its last heartbeat. Group `{h}`. */
  readonly hosts: string;
  /** String per host: heartbeat JSON with a TTL; gone = the agent is not alive. Group `{h}`. */
  host(id: string): string;
  /**
   * BullMQ `prefix` option for every roam6 queue. Hash-tagged as a whole (`{roam6:q}`), so all
   * queue keys share one slot, which BullMQ's multi-queue scripts (flows) need on Cluster.
   */
  readonly queuePrefix: string;
  /**
   * Queue names (BullMQ appends `:<queue>:<type>` to `queuePrefix`). Reserved for the
   * orchestrator: add `orchestrator` and `host(id)` here when it lands.
   */
  readonly queues: Readonly<Record<string, never>>;
}

/** Error for a prefix that would break key layout or hash tagging. */
export class RedisKeyPrefixError extends TypeError {
  static override readonly name = 'RedisKeyPrefixError';
  readonly code = 'ROAM6_ERR_REDIS_PREFIX';
  constructor(prefix: string) {
    super(`invalid Redis key prefix ${JSON.stringify(prefix)}: use 1–64 of [A-Za-z0-9_.:-], starting alphanumeric`);
    this.name = 'RedisKeyPrefixError';
  }
}

/**
 * Key and channel names under `prefix` (default "roam6"). Two deployments sharing one Redis
 * must use different prefixes.
 */
export function redisKeys(prefix: string = DEFAULT_KEY_PREFIX): RedisKeys {
  if (!PREFIX_PATTERN.test(prefix)) throw new RedisKeyPrefixError(prefix);
  const b = `${prefix}:{b}`;
  const g = `${prefix}:{g}`;
  const h = `${prefix}:{h}`;
  return Object.freeze({
    prefix,
    bindings: `${b}:bindings`,
    guests: `${g}:guests`,
    guestSpiIndex: `${g}:guest-spi`,
    guestMnpIndex: `${g}:guest-mnp`,
    guestVersion: `${g}:guest-version`,
    guestChanges: `${g}:guest-changes`,
    guestState: (id: string) => `${g}:guest-state:${id}`,
    hosts: `${h}:hosts`,
    host: (id: string) => `${h}:host:${id}`,
    queuePrefix: `{${prefix}:q}`,
    queues: Object.freeze({}),
  });
}
