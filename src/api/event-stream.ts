/**
 * `GET /api/v1/events`: the HA's binding events as Server-Sent Events.
 *
 * Each event is serialised once and written to every client (fan-out cost: one string, N
 * writes). Ids are `<boot>.<n>`: a client that reconnects with `Last-Event-ID` gets what it
 * missed from a ring of recent events, or a `reset` event (refetch your state) when its id is
 * from an earlier HA process or too old. Every client has a bounded buffer: when the bytes the
 * kernel has not taken yet pass `maxClientBytes`, the client is dropped; a slow reader never
 * makes the HA wait or grow without bound. A comment line every `heartbeatMs` keeps proxies
 * and idle connections honest.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export const EVENT_TYPES = ['created', 'updated', 'moved', 'deregistered', 'expired', 'revoked', 'rejected', 'held', 'released'] as const;
export type StreamEventType = (typeof EVENT_TYPES)[number];

export interface StreamEventData {
  readonly type: StreamEventType;
  readonly guest: string;
  readonly at: string;
  readonly [k: string]: unknown;
}

interface Entry {
  readonly n: number;
  readonly type: StreamEventType;
  readonly guest: string;
  readonly frame: string;
}

export interface ClientFilter {
  readonly types?: ReadonlySet<StreamEventType>;
  readonly guest?: string;
}

interface Client {
  readonly res: ServerResponse;
  readonly filter: ClientFilter;
}

export interface EventHubOptions {
  /** Events kept for Last-Event-ID replay. */
  readonly ringSize?: number;
  /** Unsent bytes a client may have queued before it is dropped. */
  readonly maxClientBytes?: number;
  readonly heartbeatMs?: number;
  /** `retry:` advice to clients, ms. */
  readonly retryMs?: number;
  readonly maxClients?: number;
}

export class EventHub {
  readonly boot = Date.now().toString(36);
  private n = 0;
  private readonly ring: Entry[] = [];
  private readonly clients = new Set<Client>();
  private readonly heartbeat: NodeJS.Timeout;
  private readonly o: Required<EventHubOptions>;
  /** Clients dropped for being too slow, since start. */
  droppedClients = 0;
  readonly published = Object.fromEntries(EVENT_TYPES.map((t) => [t, 0])) as Record<StreamEventType, number>;

  constructor(opts: EventHubOptions = {}) {
    this.o = { ringSize: 2048, maxClientBytes: 1 << 20, heartbeatMs: 15_000, retryMs: 2000, maxClients: 1000, ...opts };
    this.heartbeat = setInterval(() => this.broadcastRaw(': ping\n\n'), this.o.heartbeatMs);
    this.heartbeat.unref();
  }

  get clientCount(): number {
    return this.clients.size;
  }

  publish(data: StreamEventData): void {
    const n = ++this.n;
    this.published[data.type]++;
    const entry: Entry = { n, type: data.type, guest: data.guest, frame: `id: ${this.boot}.${n}\nevent: ${data.type}\ndata: ${JSON.stringify(data)}\n\n` };
    this.ring.push(entry);
    if (this.ring.length > this.o.ringSize) this.ring.splice(0, this.ring.length - this.o.ringSize);
    for (const c of this.clients) if (wants(c.filter, entry)) this.write(c, entry.frame);
  }

  /**
   * Take over a response and stream to it until the client goes away. `hello` is sent first
   * (no id) so a client knows the stream is live.
   */
  attach(req: IncomingMessage, res: ServerResponse, filter: ClientFilter, hello: Record<string, unknown>): boolean {
    if (this.clients.size >= this.o.maxClients) return false;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.socket?.setNoDelay(true);
    const client: Client = { res, filter };
    this.clients.add(client);
    const gone = () => this.clients.delete(client);
    res.on('close', gone);
    res.on('error', gone);
    res.write(`retry: ${this.o.retryMs}\nevent: hello\ndata: ${JSON.stringify({ ...hello, boot: this.boot })}\n\n`);

    const last = header(req, 'last-event-id');
    if (last) {
      const m = /^([0-9a-z]+)\.(\d+)$/.exec(last);
      const oldest = this.ring[0]?.n ?? this.n + 1;
      const lastN = m ? Number(m[2]) : NaN;
      if (!m || m[1] !== this.boot || lastN > this.n || lastN + 1 < oldest) {
        res.write(`event: reset\ndata: ${JSON.stringify({ reason: !m || m[1] !== this.boot ? 'the HA restarted' : 'events were lost', lastEventId: last })}\n\n`);
      } else {
        for (const e of this.ring) if (e.n > lastN && wants(filter, e)) this.write(client, e.frame);
      }
    }
    return true;
  }

  close(): void {
    clearInterval(this.heartbeat);
    for (const c of this.clients) c.res.end();
    this.clients.clear();
  }

  private broadcastRaw(text: string): void {
    for (const c of this.clients) this.write(c, text);
  }

  private write(c: Client, text: string): void {
    if (c.res.destroyed) {
      this.clients.delete(c);
      return;
    }
    if (c.res.writableLength > this.o.maxClientBytes) {
      // Too slow: drop it rather than buffer without bound. It may reconnect with Last-Event-ID.
      this.droppedClients++;
      this.clients.delete(c);
      c.res.destroy();
      return;
    }
    c.res.write(text);
  }
}

function wants(f: ClientFilter, e: Entry): boolean {
  return (f.types === undefined || f.types.has(e.type)) && (f.guest === undefined || f.guest === e.guest);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
