/**
 * A small Server-Sent Events client for the HA's /api/v1/events, over http:// or a unix socket
 * (`unix:/path`). Reconnects with Last-Event-ID after a drop, honouring the server's `retry:`.
 */
import { request, type ClientRequest } from 'node:http';

export interface SseEvent {
  readonly id: string | undefined;
  readonly event: string;
  readonly data: string;
}

export interface SseHandlers {
  onEvent(e: SseEvent): void;
  /** Connection state changes, for a status line. */
  onState?(state: 'open' | 'closed' | 'error', detail?: string): void;
}

export interface SseConnection {
  close(): void;
}

export function connectEvents(base: string, path: string, h: SseHandlers): SseConnection {
  const unix = base.startsWith('unix:') ? base.slice(5) : null;
  let lastId: string | undefined;
  let retryMs = 2000;
  let closed = false;
  let req: ClientRequest | null = null;
  let timer: NodeJS.Timeout | undefined;

  const open = () => {
    if (closed) return;
    const url = unix ? new URL(`http://localhost${path}`) : new URL(`${base}${path}`);
    req = request(
      {
        ...(unix ? { socketPath: unix } : { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port || 80 }),
        path: url.pathname + url.search,
        headers: { accept: 'text/event-stream', ...(lastId ? { 'last-event-id': lastId } : {}) },
      },
      (res) => {
        if (res.statusCode !== 200) {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => {
            let msg = body;
            try {
              msg = (JSON.parse(body) as { message?: string }).message ?? body;
            } catch {
              /* not JSON */
            }
            h.onState?.('error', `HTTP ${res.statusCode}: ${msg}`);
            again();
          });
          return;
        }
        h.onState?.('open');
        res.setEncoding('utf8');
        let buf = '';
        res.on('data', (chunk: string) => {
          buf += chunk;
          let k: number;
          while ((k = buf.indexOf('\n\n')) >= 0) {
            const frame = buf.slice(0, k);
            buf = buf.slice(k + 2);
            let id: string | undefined;
            let event = 'message';
            const data: string[] = [];
            for (const line of frame.split('\n')) {
              if (line.startsWith(':')) continue;
              const i = line.indexOf(':');
              const field = i < 0 ? line : line.slice(0, i);
              const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
              if (field === 'id') id = value;
              else if (field === 'event') event = value;
              else if (field === 'data') data.push(value);
              else if (field === 'retry' && /^\d+$/.test(value)) retryMs = Number(value);
            }
            if (id !== undefined) lastId = id;
            if (data.length) h.onEvent({ id, event, data: data.join('\n') });
          }
        });
        res.on('end', () => {
          h.onState?.('closed');
          again();
        });
        res.on('error', () => again());
      },
    );
    req.on('error', (e: NodeJS.ErrnoException) => {
      h.onState?.('error', e.code ?? e.message);
      again();
    });
    req.end();
  };
  const again = () => {
    if (closed || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      open();
    }, retryMs);
  };
  open();
  return {
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      req?.destroy();
    },
  };
}
