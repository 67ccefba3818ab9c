/**
 * The HA's API under abuse, over a real socket with a real Redis behind it: every write route
 * without a token and with bad ones, then oversized and malformed input (huge query strings and
 * headers, huge numbers, long ids, bodies over the limit, wrong content types, broken JSON,
 * extra fields, path traversal, NUL bytes). Each must get a 4xx whose message names the
 * problem — never a 5xx — nothing may change, and the server must keep answering.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostQueue, ORCHESTRATOR_QUEUE } from '../../src/orchestrator/jobs.js';
import { BODY_LIMIT } from '../../src/api/server.js';
import { hasRedisServer } from './redis-helpers.js';
import { COA, rawRequest, startApiUnderTest, type ApiUnderTest, type RawResponse } from './api-server.js';

const TOKEN = 'abuse-test-token-0123456789abcdef';
const JSON_HEADERS = ['Content-Type: application/json'];

describe.skipIf(!hasRedisServer)('the API refuses bad requests with a clear 4xx and keeps answering', () => {
  let t: ApiUnderTest;
  let guest: string;
  /** Every response of this file, to check that none was a 5xx. */
  const seen: { what: string; status: number }[] = [];

  beforeAll(async () => {
    t = await startApiUnderTest({ token: TOKEN, hostsAtStart: { 'host-a': COA['host-a'] } });
    await t.register(0, 'host-a', 1);
    guest = t.guests[0]!.id;
    // A job on host-a's queue for the dashboard's write routes to aim at.
    await t.orch.queue(hostQueue('host-a')).add('prepare', { guest, migration: 'mig.x.0' }, { jobId: 'mig.x.0.prepare' });
  });

  afterAll(async () => {
    await t?.close();
  });

  /** One request exactly as written (method, path, headers, body), over its own connection. */
  async function send(method: string, path: string, headers: string[] = [], body: string | Buffer = ''): Promise<RawResponse> {
    const r = await rawRequest(t.port, [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...headers].join('\r\n'), body);
    seen.push({ what: `${method} ${path.slice(0, 120)}`, status: r.status });
    return r;
  }
  const bearer = (token: string) => `Authorization: Bearer ${token}`;
  /** The message of an error body: ours ({error, message}) or bull-board's ({error: {key}, message?}). */
  const message = (r: RawResponse): string => {
    const j = r.json as { message?: unknown; error?: unknown } | undefined;
    if (!j) return r.body;
    const parts = [typeof j.message === 'string' ? j.message : '', typeof j.error === 'object' && j.error ? String((j.error as { key?: string }).key ?? '') : ''];
    return parts.filter(Boolean).join(' ');
  };
  async function expectState(): Promise<void> {
    expect(t.ha.cache.get(guest), 'the binding survives').toBeDefined();
    expect(await t.orch.queue(ORCHESTRATOR_QUEUE).count(), 'no migration was queued').toBe(0);
    expect(await t.orch.queue(hostQueue('host-a')).isPaused(), 'host-a is not paused').toBe(false);
    expect(await t.orch.queue(hostQueue('host-a')).getJobState('mig.x.0.prepare')).toBe('waiting');
  }

  const migrationBody = () => JSON.stringify({ guest, to: 'host-b' });
  /** Every write route, with a harmless valid request. */
  const writes = (): [string, string, string][] => [
    ['DELETE', `/api/v1/bindings/${encodeURIComponent(guest)}`, ''],
    ['POST', '/api/v1/migrations', migrationBody()],
    ['PUT', `/queues/api/queues/${hostQueue('host-a')}/mig.x.0.prepare/clean`, ''],
    ['PUT', `/queues/api/queues/${hostQueue('host-a')}/mig.x.0.prepare/promote`, ''],
    ['PUT', `/queues/api/queues/${hostQueue('host-a')}/retry/failed`, ''],
    ['PUT', `/queues/api/queues/${hostQueue('host-a')}/pause`, ''],
    ['PUT', `/queues/api/queues/${hostQueue('host-a')}/empty`, ''],
    ['PUT', `/queues/api/queues/${hostQueue('host-a')}/obliterate`, ''],
    ['PUT', '/queues/api/queues/pause', ''],
    ['POST', `/queues/api/queues/${hostQueue('host-a')}/add`, JSON.stringify({ name: 'migrate', data: { guest } })],
    ['PATCH', `/queues/api/queues/${hostQueue('host-a')}/mig.x.0.prepare/update-data`, JSON.stringify({ data: {} })],
  ];

  it('refuses every write without a token, or with a bad one, before reading the body', async () => {
    const bad: [string, string[], RegExp][] = [
      ['no header', [], /a bearer token is required/],
      ['empty header', ['Authorization: '], /a bearer token is required/],
      ['another scheme', [`Authorization: Basic ${Buffer.from(`roam6:${TOKEN}`).toString('base64')}`], /must be "Bearer <api\.token>"/],
      ['lower-case scheme', [`Authorization: bearer ${TOKEN}`], /must be "Bearer <api\.token>"/],
      ['wrong token', [bearer('wrong')], /bearer token is not valid/],
      ['wrong token of the same length', [bearer(TOKEN.slice(0, -1) + (TOKEN.endsWith('f') ? 'e' : 'f'))], /bearer token is not valid/],
      ['the token plus one character', [bearer(`${TOKEN}x`)], /bearer token is not valid/],
      ['a prefix of the token', [bearer(TOKEN.slice(0, 8))], /bearer token is not valid/],
      ['a very long token (8 KiB)', [bearer('A'.repeat(8192))], /bearer token is not valid/],
      ['the token with a NUL', [`Authorization: Bearer ${TOKEN}\u0000`], /./],
    ];
    for (const [method, path, body] of writes()) {
      for (const [what, headers, why] of bad) {
        const r = await send(method, path, [...headers, ...(body ? JSON_HEADERS : [])], body);
        const label = `${method} ${path} with ${what}`;
        if (what === 'the token with a NUL') {
          // Node's HTTP parser refuses a NUL in a header value: 400, connection closed.
          expect(r.status, label).toBe(400);
          continue;
        }
        expect(r.status, label).toBe(403);
        expect(r.headers['www-authenticate'], label).toBe('Bearer');
        expect(r.json, label).toMatchObject({ error: 'unauthorized' });
        expect(message(r), label).toMatch(why);
        expect(r.body, label).not.toContain(TOKEN); // never echoed
      }
    }
    // A token too big for any header: Node answers 431 before the API sees it.
    const huge = await send('DELETE', `/api/v1/bindings/${encodeURIComponent(guest)}`, [bearer('A'.repeat(70_000))]);
    expect(huge.status).toBe(431);
    // Unknown write paths need the token too (nothing to learn about routes without it).
    expect((await send('POST', '/api/v1/nothing-here', [])).status).toBe(403);
    // A body over the limit without the token: refused for the token, not read.
    const big = await send('POST', '/api/v1/migrations', JSON_HEADERS, Buffer.alloc(BODY_LIMIT * 4, 0x20));
    expect(big.status).toBe(403);
    await expectState();
  });

  it('answers oversized query strings, huge numbers and long ids with a 4xx naming them', async () => {
    const cases: [string, number, RegExp][] = [
      [`/api/v1/bindings?q=${'x'.repeat(12_000)}`, 400, /query parameter q: must NOT have more than 128 characters/],
      [`/api/v1/bindings?${Array.from({ length: 2000 }, (_, i) => `p${i}=1`).join('&')}`, 400, /unknown query parameter "p0"/],
      ['/api/v1/bindings?limit=99999999999999999999999999', 400, /query parameter limit: must be <= 1000/],
      ['/api/v1/bindings?limit=1e400', 400, /query parameter limit: must be a finite number/],
      ['/api/v1/bindings?offset=Infinity', 400, /query parameter offset: must be a finite number/],
      ['/api/v1/moves?within=-1e999', 400, /query parameter within: must be a finite number/],
      ['/api/v1/bindings?limit=-1', 400, /query parameter limit: must be >= 1/],
      ['/api/v1/bindings?limit=2.5', 400, /query parameter limit: must be integer/],
      ['/api/v1/bindings?limit=1&limit=2', 400, /query parameter limit: must be integer/],
      ['/api/v1/bindings?offset=99999999999', 400, /query parameter offset: must be <= 10000000/],
      ['/api/v1/bindings?expiringWithin=1e30', 400, /query parameter expiringWithin: must be <= 315360000/],
      ['/api/v1/moves?limit=100000', 400, /query parameter limit: must be <= 1000/],
      ['/api/v1/moves?within=-1', 400, /query parameter within: must be >= 0/],
      [`/api/v1/bindings/${'g'.repeat(254)}`, 400, /path parameter guest: must NOT have more than 253 characters/],
      [`/api/v1/bindings/${'g'.repeat(2000)}`, 414, /a path parameter is longer than 1024 characters/],
      [`/api/v1/migrations/${'m'.repeat(301)}`, 400, /path parameter id: must NOT have more than 300 characters/],
      [`/api/v1/events?guest=${'g'.repeat(300)}`, 400, /query parameter guest: must NOT have more than 253 characters/],
      ['/api/v1/events?types=moved,,moved', 400, /query parameter types: must be a comma-separated list/],
      ['/queues/api/queues?page=-5&activeQueue=host-a', 400, /INVALID_QUERY_PARAM/],
      ['/queues/api/queues?jobsPerPage=100000000000&activeQueue=host-a', 400, /query parameter jobsPerPage: must be <= 1000/],
      ['/queues/api/queues?jobsPerPage=abc&activeQueue=host-a', 400, /INVALID_QUERY_PARAM/],
      [`/queues/api/queues/${'q'.repeat(500)}/1`, 404, /QUEUE_NOT_FOUND/],
    ];
    for (const [path, status, why] of cases) {
      const r = await send('GET', path);
      expect(r.status, path.slice(0, 100)).toBe(status);
      expect(message(r), path.slice(0, 100)).toMatch(why);
    }
    // A long guest id that the schema allows (over the router's default of 100) is looked up.
    const long = await send('GET', `/api/v1/bindings/${'g'.repeat(200)}@roam6.test`);
    expect(long.status).toBe(404);
    expect(message(long)).toMatch(/no binding for guest g{200}@roam6\.test/);
    // A request line bigger than Node's header limit (16 KiB): 431, from Node's parser.
    expect((await send('GET', `/api/v1/bindings?q=${'x'.repeat(100_000)}`)).status).toBe(431);
    const longWrite = await send('DELETE', `/api/v1/bindings/${'g'.repeat(254)}`, [bearer(TOKEN)]);
    expect(longWrite.status).toBe(400);
    expect(message(longWrite)).toMatch(/path parameter guest: must NOT have more than 253 characters/);
  });

  it('answers bad bodies (too big, wrong type, broken JSON, extra fields, NUL) with a 4xx naming the problem', async () => {
    const auth = [bearer(TOKEN)];
    const json = [...auth, ...JSON_HEADERS];
    const plan = (n: number) => JSON.stringify({ plan: Array.from({ length: n }, (_, i) => ({ guest: `guest-${i}@roam6.test`, to: 'host-b' })) });
    const cases: [string, string, string[], string | Buffer, number, RegExp][] = [
      ['POST', '/api/v1/migrations', json, plan(3000), 413, new RegExp(`larger than the API's limit of ${BODY_LIMIT} bytes`)],
      ['POST', '/api/v1/migrations', json, Buffer.alloc(BODY_LIMIT + 1, 0x20), 413, /larger than the API's limit/],
      ['POST', '/api/v1/migrations', [...auth, 'Content-Type: text/plain'], migrationBody(), 415, /content type "text\/plain" is not supported: send application\/json/],
      ['POST', '/api/v1/migrations', [...auth, 'Content-Type: application/x-www-form-urlencoded'], 'guest=a&to=b', 415, /content type "application\/x-www-form-urlencoded" is not supported/],
      ['POST', '/api/v1/migrations', auth, '', 400, /the body must be a JSON object/],
      ['POST', '/api/v1/migrations', json, '{"guest": "a', 400, /not valid JSON/],
      ['POST', '/api/v1/migrations', json, '[1,2,3]', 400, /the body must be a JSON object/],
      ['POST', '/api/v1/migrations', json, '"host-b"', 400, /the body must be a JSON object/],
      ['POST', '/api/v1/migrations', json, '{"guest":"a","to":"b","priority":9}', 400, /unknown body field "priority"/],
      ['POST', '/api/v1/migrations', json, '{"guest":"a","to":"b","__proto__":{"x":1}}', 400, /"__proto__"/],
      ['POST', '/api/v1/migrations', json, '{"guest":"a","to":"b","constructor":{"prototype":{"x":1}}}', 400, /"constructor\.prototype"/],
      ['POST', '/api/v1/migrations', json, '{"plan":[{"guest":"a","to":"b","force":true}]}', 400, /unknown body field "plan\.0\.force"/],
      ['POST', '/api/v1/migrations', json, '{"plan":[{"guest":"a"}]}', 400, /body field plan\.0\.to: is required/],
      ['POST', '/api/v1/migrations', json, '{"plan":[]}', 400, /body field plan: must NOT have fewer than 1 items/],
      ['POST', '/api/v1/migrations', json, '{"plan":[{"guest":"a","to":"b"}],"guest":"c"}', 400, /body field guest: is not allowed here/],
      ['POST', '/api/v1/migrations', json, '{"guest":"a"}', 400, /body field to: is required/],
      ['POST', '/api/v1/migrations', json, '{"guest":"a","to":42}', 400, /body field to: must be string/],
      ['POST', '/api/v1/migrations', json, JSON.stringify({ guest: 'a\u0000b', to: 'host-b' }), 400, /body field guest: must not contain control characters/],
      ['POST', '/api/v1/migrations', json, JSON.stringify({ guest: 'a', to: 'host-b\n' }), 400, /body field to: must not contain control characters/],
      ['POST', '/api/v1/migrations', json, JSON.stringify({ guest: 'g'.repeat(255), to: 'host-b' }), 400, /body field guest: must NOT have more than 254 characters/],
      ['POST', '/api/v1/migrations', json, JSON.stringify({ guest: '../../../etc/passwd', to: '../../..' }), 202, /./],
      ['PUT', `/queues/api/queues/${hostQueue('host-a')}/mig.x.0.prepare/retry`, json, '{"broken', 400, /not valid JSON/],
      ['POST', `/queues/api/queues/${hostQueue('host-a')}/add`, json, Buffer.alloc(BODY_LIMIT + 1, 0x20), 413, /larger than|too large/i],
      ['POST', `/queues/api/queues/${hostQueue('host-a')}/add`, [...auth, 'Content-Type: text/plain'], 'x', 415, /content type "text\/plain" is not supported|Unsupported Media Type/],
      ['PUT', '/queues/api/queues/no-such-queue/1/retry', auth, '', 404, /QUEUE_NOT_FOUND/],
      ['PUT', `/queues/api/queues/${hostQueue('host-a')}/${'j'.repeat(500)}/retry`, auth, '', 404, /JOB_NOT_FOUND/],
      ['PUT', `/queues/api/queues/${hostQueue('host-a')}/retry/not-a-state`, auth, '', 400, /INVALID|STATUS/i],
    ];
    for (const [method, path, headers, body, status, why] of cases) {
      const r = await send(method, path, headers, body);
      const label = `${method} ${path.slice(0, 80)} ${String(body).slice(0, 60)}`;
      expect(r.status, `${label}: ${r.body.slice(0, 300)}`).toBe(status);
      expect(message(r) || r.body, label).toMatch(why);
    }
    // The path-traversal-looking guest was a valid (if odd) request: queued, for a guest nobody knows.
    const q = t.orch.queue(ORCHESTRATOR_QUEUE);
    expect((await q.getJobs(['waiting'])).map((j) => j.data.guest)).toEqual(['../../../etc/passwd']);
    await q.obliterate({ force: true });
  });

  it('serves no file outside its own, whatever the path says, and takes NUL bytes as data', async () => {
    const traversal = [
      '/../../../../etc/passwd',
      '/queues/static/../../../../../../etc/passwd',
      '/queues/static/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd',
      '/queues/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
      '/queues/static/%2e%2e/%2e%2e/%2e%2e/package.json',
      '/queues/static/....//....//....//etc/passwd',
      '/queues/static/%252e%252e/%252e%252e/etc/passwd',
      '/queues/static/..\\..\\..\\..\\etc\\passwd',
      '/queues/static/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd',
      '/app.js/../../../../etc/passwd',
      '/api/v1/bindings/..%2F..%2F..%2Fetc%2Fpasswd',
    ];
    for (const path of traversal) {
      const r = await send('GET', path);
      expect(r.status, path).toBeGreaterThanOrEqual(400);
      expect(r.status, path).toBeLessThan(500);
      expect(r.body, path).not.toMatch(/root:.*:0:0:/);
      expect(r.body, path).not.toContain('"name": "roam6"');
    }
    // The dashboard's page routes take a queue name as data: the page, never a file.
    const page = await send('GET', '/queues/queue/..%2F..%2F..%2F..%2Fetc%2Fpasswd');
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('<title>roam6 queues</title>');
    expect(page.body).not.toMatch(/root:.*:0:0:/);
    // NUL bytes, escaped: a 400 that says so (guest ids), or plain data (free-text search).
    const nulGuest = await send('GET', '/api/v1/bindings/a%00b');
    expect(nulGuest.status).toBe(400);
    expect(message(nulGuest)).toMatch(/path parameter guest: must not contain control characters/);
    const nulDelete = await send('DELETE', `/api/v1/bindings/${encodeURIComponent(guest)}%00`, [bearer(TOKEN)]);
    expect(nulDelete.status).toBe(400);
    expect(message(nulDelete)).toMatch(/must not contain control characters/);
    expect((await send('GET', '/api/v1/bindings?q=%00')).status).toBe(200);
    expect((await send('GET', '/api/v1/migrations/a%00b')).status).toBe(400);
    // Broken escapes in the path.
    const badEscape = await send('GET', '/api/v1/bindings/%E0%A4%A');
    expect(badEscape.status).toBe(400);
    expect(message(badEscape)).toMatch(/URL path is not valid/);
    // A raw NUL or a space in the request line: Node's parser answers 400.
    expect((await send('GET', '/api/v1/bindings/a\u0000b')).status).toBe(400);
    expect((await send('GET', '/api/v1/bin dings')).status).toBe(400);
  });

  it('never answered 5xx, still answers, and the token still works', async () => {
    const fivexx = seen.filter((s) => s.status >= 500);
    expect(fivexx).toEqual([]);
    expect(seen.length).toBeGreaterThan(150);
    const health = await fetch(`${t.base}/api/v1/health`);
    expect(health.status).toBe(200);
    expect(((await health.json()) as { ready: boolean }).ready).toBe(true);
    await expectState();
    const del = await send('DELETE', `/api/v1/bindings/${encodeURIComponent(guest)}`, [bearer(TOKEN)]);
    expect(del.status).toBe(204);
    expect(t.ha.cache.get(guest)).toBeUndefined();
  });
});
