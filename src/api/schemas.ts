/**
 * JSON schemas of the HA API: fastify validates every input against them (a bad parameter is a
 * 400 naming it), serialises responses with them, and @fastify/swagger turns them into the
 * OpenAPI document at /api/v1/openapi.json.
 */
import { SORT_KEYS } from './binding-query.js';
import { EVENT_TYPES } from './event-stream.js';

const nullable = (t: string) => ({ type: [t, 'null'] });
const isoTime = { type: 'string', format: 'date-time' } as const;

/** A pattern for ids and names: no C0 control characters (NUL, newline, …) and no DEL. */
export const NO_CONTROL_CHARS = '^[^\\u0000-\\u001f\\u007f]*$';

export const errorSchema = {
  type: 'object',
  properties: { error: { type: 'string' }, message: { type: 'string' } },
  required: ['error', 'message'],
} as const;

const handover = {
  type: 'object',
  properties: {
    from: { type: 'string', description: 'previous CoA' },
    to: { type: 'string', description: 'new CoA' },
    fromHost: nullable('string'),
    toHost: nullable('string'),
    at: isoTime,
    haMs: { ...nullable('number'), description: 'HA side: first BU from the new CoA received → BA accepting the move, ms' },
  },
} as const;

const migration = {
  type: ['object', 'null'],
  description: "the orchestrator's numbers for this move, when its outcome is still in Redis",
  properties: {
    fromHost: { type: 'string' },
    toHost: { type: 'string' },
    totalMs: { type: 'number' },
    pauseMs: { type: 'number', description: "the hypervisor's pause" },
    resumeToBaMs: { type: 'number', description: 'guest resumed on the destination → BA' },
    registrationMs: { type: 'number', description: "BU → BA at the destination's agent" },
    finishedAt: isoTime,
  },
} as const;

const dataplaneCounters = {
  type: ['object', 'null'],
  description: 'data-plane counters of this binding (the kernel backend reports zeros)',
  properties: {
    txPackets: { type: 'number' },
    txBytes: { type: 'number' },
    rxPackets: { type: 'number' },
    rxBytes: { type: 'number' },
    rxDropped: { type: 'number' },
  },
  additionalProperties: true,
} as const;

const bindingProperties = {
  guest: { type: 'string', description: 'Mobile Node Identifier (NAI)' },
  mnps: { type: 'array', items: { type: 'string' } },
  coa: { type: 'string' },
  host: { ...nullable('string'), description: 'host id holding the CoA, from the host heartbeats' },
  haAddress: { type: 'string' },
  seq: { type: 'integer' },
  flags: { type: 'array', items: { type: 'string' } },
  state: { type: 'string', enum: ['registered', 'expiring'], description: 'expiring: under 10% of the lifetime left (refreshes are failing)' },
  lifetimeSec: { type: 'integer' },
  lifetimeLeftSec: { type: 'integer' },
  expiresAt: isoTime,
  registeredAt: isoTime,
  updatedAt: isoTime,
  lastHandover: { ...handover, type: ['object', 'null'] },
} as const;

export const bindingSchema = {
  type: 'object',
  properties: bindingProperties,
} as const;

export const bindingDetailSchema = {
  type: 'object',
  properties: {
    ...bindingProperties,
    history: {
      type: 'array',
      description: 'CoA changes, oldest first (the last 16)',
      items: {
        type: 'object',
        properties: {
          ...handover.properties,
          durationMs: {
            ...nullable('number'),
            description: "handover duration: the orchestrator's resume → BA when known, else the HA-side time",
          },
          durationSource: { type: ['string', 'null'], enum: ['orchestrator', 'ha', null] },
          migration,
        },
      },
    },
    bus: {
      type: 'object',
      properties: { accepted: { type: 'integer' }, rejected: { type: 'integer' }, dropped: { type: 'integer' } },
    },
    lastRejection: {
      type: ['object', 'null'],
      properties: { status: { type: 'integer' }, statusText: { type: 'string' }, detail: nullable('string'), at: isoTime },
    },
    dataplane: dataplaneCounters,
  },
} as const;

const seconds = (what: string) => ({ type: 'integer', minimum: 0, maximum: 315_360_000, description: what });

export const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    host: { type: 'string', minLength: 1, maxLength: 63, description: 'host id (from the host heartbeats)' },
    coa: { type: 'string', maxLength: 64, description: 'care-of address' },
    prefix: { type: 'string', maxLength: 64, description: 'an address or prefix; the binding whose MNP covers it (longest match)' },
    q: { type: 'string', maxLength: 128, description: 'free text: guest id, CoA, host or MNP contains it' },
    state: { type: 'string', enum: ['registered', 'expiring'] },
    expiringWithin: seconds('lifetime ends within this many seconds'),
    movedWithin: seconds('the last CoA change was within this many seconds'),
    sort: { type: 'string', enum: [...SORT_KEYS], default: 'guest' },
    order: { type: 'string', enum: ['asc', 'desc'], default: 'asc' },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
    offset: { type: 'integer', minimum: 0, maximum: 10_000_000, default: 0 },
  },
} as const;

export const listResponse = {
  type: 'object',
  properties: {
    total: { type: 'integer', description: 'bindings matching the filters' },
    offset: { type: 'integer' },
    limit: { type: 'integer' },
    sort: { type: 'string' },
    order: { type: 'string' },
    bindings: { type: 'array', items: bindingSchema },
  },
} as const;

export const guestParams = {
  type: 'object',
  required: ['guest'],
  properties: { guest: { type: 'string', minLength: 1, maxLength: 253, pattern: NO_CONTROL_CHARS, description: 'guest id (NAI)' } },
} as const;

export const movesQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    within: { ...seconds('moves in the last this many seconds'), default: 3600 },
    guest: { type: 'string', minLength: 1, maxLength: 253 },
    host: { type: 'string', minLength: 1, maxLength: 63, description: 'moves from or to this host' },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
  },
} as const;

export const movesResponse = {
  type: 'object',
  properties: {
    total: { type: 'integer' },
    moves: {
      type: 'array',
      items: { type: 'object', properties: { guest: { type: 'string' }, ...handover.properties } },
    },
  },
} as const;

export const eventsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    types: {
      type: 'string',
      pattern: `^(${EVENT_TYPES.join('|')})(,(${EVENT_TYPES.join('|')}))*$`,
      description: `comma-separated event types (${EVENT_TYPES.join(', ')}); default all`,
    },
    guest: { type: 'string', minLength: 1, maxLength: 253, description: 'only this guest' },
  },
} as const;

export const hostsResponse = {
  type: 'object',
  properties: {
    source: { type: 'string', enum: ['redis', 'none'] },
    hosts: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          host: { type: 'string' },
          coa: nullable('string'),
          alive: { type: 'boolean' },
          lastSeen: { ...nullable('string'), format: 'date-time' },
          bindings: { type: 'integer' },
        },
      },
    },
  },
} as const;

const check = {
  type: 'object',
  properties: { ok: { type: 'boolean' }, detail: { type: 'string' }, latencyMs: { type: 'number' } },
  additionalProperties: true,
} as const;

export const healthResponse = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ok', 'degraded'], description: 'ok: live and ready; degraded: live, a dependency failing' },
    live: { type: 'boolean' },
    ready: { type: 'boolean' },
    uptimeSec: { type: 'integer' },
    bindings: { type: 'integer' },
    checks: { type: 'object', properties: { redis: check, dataplane: check, hosts: check }, additionalProperties: check },
    dataplane: { type: ['object', 'null'], additionalProperties: true },
    counters: { type: 'object', additionalProperties: true },
    events: { type: 'object', properties: { clients: { type: 'integer' }, droppedClients: { type: 'integer' } } },
  },
} as const;

export const holdBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    nextCoa: { type: 'string', maxLength: 64, description: 'the CoA the guest moves to' },
    maxMs: { type: 'integer', minimum: 10, maximum: 10_000, description: 'hold at most this long (default 2000)' },
    maxPackets: { type: 'integer', minimum: 1, maximum: 65_536, description: 'hold at most this many packets (default 4096)' },
  },
} as const;

export const holdResponse = {
  type: 'object',
  required: ['held'],
  properties: {
    held: { type: 'boolean' },
    coa: { type: 'string', description: 'the CoA the packets would have gone to' },
    until: { type: 'integer', description: 'epoch ms the hold ends by itself' },
    reason: { type: 'string', enum: ['unsupported', 'no-binding'] },
  },
} as const;
