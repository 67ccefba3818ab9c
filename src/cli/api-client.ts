/**
 * A small client for the HA's HTTP API, with errors a person can act on. The base is an
 * http:// URL or `unix:/path/to/ha.sock` (the API can listen on a unix socket).
 */
import { request } from 'node:http';
import { CliError } from './errors.js';

export const DEFAULT_API = 'http://127.0.0.1:8446';

export function apiBase(flag: string | undefined): string {
  return (flag ?? process.env.ROAM6_API ?? DEFAULT_API).replace(/\/+$/, '');
}

export interface ApiResponse {
  readonly status: number;
  readonly body: unknown;
}

/** One HTTP request to the API; resolves with status and parsed JSON body (or null). */
export function apiRequest(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: unknown, timeoutMs = 10_000): Promise<ApiResponse> {
  const unix = base.startsWith('unix:') ? base.slice(5) : null;
  const url = unix ? new URL(`http://localhost${path}`) : new URL(`${base}${path}`);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        ...(unix ? { socketPath: unix } : { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port || 80 }),
        path: url.pathname + url.search,
        method,
        headers: { accept: 'application/json', ...(payload ? { 'content-type': 'application/json' } : {}), ...headers },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = null;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {
            parsed = text;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

export async function apiGet<T>(base: string, path: string): Promise<T> {
  let res: ApiResponse;
  try {
    res = await apiRequest(base, 'GET', path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new CliError(`cannot reach the HA API at ${base} (${code}); is 'roam6 ha' running? (--api URL or ROAM6_API)`);
  }
  const body = res.body as { message?: string } | null;
  if (res.status >= 400) throw new CliError(`${res.status}: ${body?.message ?? 'request failed'}`, res.status === 404 ? 3 : 1);
  return res.body as T;
}
