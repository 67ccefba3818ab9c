/**
 * Redis with a password and TLS, for real: a redis-server listening only on a TLS port
 * (plain TCP off), `requirepass`, certificates made here with openssl (a throwaway CA, a server
 * certificate for 127.0.0.1 / ::1 / localhost, a client certificate, and a second CA nobody
 * trusts). roam6 connects with `rediss://` and ROAM6_REDIS_TLS_* exactly as an operator would;
 * BullMQ runs a job over it; a wrong password, an unknown CA, a wrong server name and a missing
 * client certificate each fail with a clear error that never contains the password.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisConnectError, TLS_ENV, connectRedis } from '../../src/platform/redis/connection.js';
import { findRedisServer } from '../../src/platform/redis/embedded.js';
import { freeLoopbackPort, hasRedisServer, RedisLab } from './redis-helpers.js';

const PASSWORD = 'tls-test-pw-6c1f0b2e9d';

/** Why this suite cannot run here, or null. Probes redis-server for TLS support without starting a server. */
function skipReason(): string | null {
  if (!hasRedisServer) return 'redis-server not installed';
  if (spawnSync('openssl', ['version'], { encoding: 'utf8' }).status !== 0) return 'openssl not installed (apt-get install openssl)';
  // A TLS build rejects the missing certificate files; a build without TLS does not know the directive.
  const bin = findRedisServer() ?? 'redis-server';
  const probe = spawnSync(bin, ['--port', '0', '--save', '', '--tls-port', '1', '--tls-cert-file', '/nonexistent', '--tls-key-file', '/nonexistent'], { encoding: 'utf8', timeout: 5000 });
  const out = `${probe.stdout}${probe.stderr}`;
  if (/Bad directive|wrong number of arguments/i.test(out)) return `${bin} was built without TLS support (${out.trim().split('\n').at(-1)})`;
  return null;
}
const reason = skipReason();
if (reason) console.warn(`[roam6 tests] Redis TLS tests skipped: ${reason}`);

function openssl(dir: string, args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
}

/** A CA, and leaf certificates signed by it (EC P-256, valid for a day). */
function makePki(dir: string): void {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const ca of ['ca', 'other-ca']) {
    openssl(dir, ['req', '-x509', ...ec, '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '1', '-subj', `/CN=roam6 test ${ca}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  }
  const leaf = (name: string, ext: string) => {
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(dir, ['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
    openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', '-extfile', `${name}.ext`]);
  };
  leaf('server', 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  leaf('server-dns-only', 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  leaf('client', 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n');
}

describe.skipIf(reason !== null)('Redis over TLS with a password (real redis-server, real certificates)', () => {
  const lab = new RedisLab();
  let dir = ''; // made in beforeAll, so a skipped suite leaves nothing behind
  const file = (name: string) => join(dir, name);
  let port = 0; // TLS only: server-auth
  let mtlsPort = 0; // TLS with client certificates required
  let dnsOnlyPort = 0; // a certificate for "localhost" only, no IP address
  const logs: string[] = [];
  const log = (line: string) => logs.push(line);
  const env = (extra: Record<string, string> = {}) => ({ [TLS_ENV.ca]: file('ca.crt'), ...extra });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'roam6-tls-'));
    makePki(dir);
    const tls = (p: number, authClients: 'no' | 'yes', cert = 'server') => [
      'bind 127.0.0.1',
      `tls-port ${p}`,
      `tls-cert-file ${file(`${cert}.crt`)}`,
      `tls-key-file ${file(`${cert}.key`)}`,
      `tls-ca-cert-file ${file('ca.crt')}`,
      `tls-auth-clients ${authClients}`,
    ];
    port = await freeLoopbackPort();
    await lab.server({ password: PASSWORD, extraConfig: tls(port, 'no') });
    mtlsPort = await freeLoopbackPort();
    await lab.server({ password: PASSWORD, extraConfig: tls(mtlsPort, 'yes') });
    dnsOnlyPort = await freeLoopbackPort();
    await lab.server({ password: PASSWORD, extraConfig: tls(dnsOnlyPort, 'no', 'server-dns-only') });
  });

  afterAll(async () => {
    await lab.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const url = (p = port, pw = PASSWORD, host = '127.0.0.1') => `rediss://:${encodeURIComponent(pw)}@${host}:${p}`;

  /** Connect and return the error, asserting it is a RedisConnectError without the password in it. */
  async function refused(u: string, e: NodeJS.ProcessEnv, timeoutMs = 5000): Promise<{ message: string; ms: number }> {
    const t0 = performance.now();
    const err = await lab.connect({ url: u, name: 'roam6-tls-test', env: e, log, connectTimeoutMs: timeoutMs }).then(
      () => null,
      (x: unknown) => x,
    );
    const ms = performance.now() - t0;
    expect(err).toBeInstanceOf(RedisConnectError);
    const message = (err as Error).message;
    expect(message).not.toContain(PASSWORD);
    expect(message).not.toContain(encodeURIComponent(PASSWORD));
    if (u.includes('@')) expect(message).toContain('rediss://:***@');
    return { message, ms };
  }

  it('connects with the right CA and password, and BullMQ runs a job over it', async () => {
    const h = await lab.connect({ url: url(), name: 'roam6-tls-test', env: env(), log });
    expect(h.url).toBe(`rediss://:***@127.0.0.1:${port}`);
    expect(await h.client.ping()).toBe('PONG');
    // The server sees this connection on its TLS port (and has no plain TCP port at all).
    const info = await h.client.config('GET', 'port');
    expect(info).toEqual(['port', '0']);
    expect(String(await h.client.client('INFO'))).toMatch(new RegExp(`laddr=127\\.0\\.0\\.1:${port}`));

    const q = new Queue('tls-smoke', { connection: h.client });
    const events = new QueueEvents('tls-smoke', { connection: h.duplicate() });
    const worker = new Worker('tls-smoke', async (job) => ({ doubled: (job.data as { n: number }).n * 2, over: 'tls' }), { connection: h.duplicate() });
    try {
      await events.waitUntilReady();
      const job = await q.add('double', { n: 21 });
      expect(await job.waitUntilFinished(events, 10_000)).toEqual({ doubled: 42, over: 'tls' });
      expect(await q.getJobState(job.id!)).toBe('completed');
    } finally {
      await worker.close();
      await events.close();
      await q.close();
    }
  });

  it('a plain redis:// connection to the TLS port does not get through', async () => {
    const r = await lab.connect({ url: `redis://:${PASSWORD}@127.0.0.1:${port}`, name: 'roam6-tls-test', env: {}, log, connectTimeoutMs: 1500 }).then(
      () => 'connected',
      (e: unknown) => (e as Error).message,
    );
    expect(r).not.toBe('connected');
    expect(r).not.toContain(PASSWORD);
  });

  it('a wrong password fails at once, says authentication failed, and shows no password', async () => {
    const { message, ms } = await refused(url(port, 'not-the-password-31337'), env());
    expect(message).toMatch(/authentication failed: WRONGPASS/);
    expect(message).not.toContain('not-the-password-31337');
    expect(ms).toBeLessThan(4000); // not the connect timeout
    // No password either: NOAUTH.
    const none = await refused(`rediss://127.0.0.1:${port}`, env());
    expect(none.message).toMatch(/authentication failed: NOAUTH|not ready.*NOAUTH/);
  });

  it('an unknown CA fails at once with the reason and what to set', async () => {
    // A CA that did not sign the server's certificate, and Node's default store.
    for (const e of [env({ [TLS_ENV.ca]: file('other-ca.crt') }), {}]) {
      const { message, ms } = await refused(url(), e);
      expect(message).toMatch(/TLS: server certificate not accepted: .*(self-signed certificate in certificate chain|unable to (get local issuer|verify))/i);
      expect(message).toContain(TLS_ENV.ca);
      expect(ms).toBeLessThan(4000);
    }
  });

  it('a server name the certificate does not carry fails at once, naming the mismatch', async () => {
    const { message } = await refused(url(), env({ [TLS_ENV.servername]: 'redis.example.net' }));
    expect(message).toMatch(/TLS: server certificate not accepted: .*redis\.example\.net.*ERR_TLS_CERT_ALTNAME_INVALID/);
    // By default the URL's host is checked: an IP literal against the certificate's IP
    // addresses, a name against its DNS names.
    const ok = await lab.connect({ url: url(port, PASSWORD, 'localhost'), name: 'roam6-tls-test', env: env(), log });
    expect(await ok.client.ping()).toBe('PONG');
    const ip = await refused(url(dnsOnlyPort), env());
    expect(ip.message).toMatch(/IP: 127\.0\.0\.1 is not in the cert's list.*ERR_TLS_CERT_ALTNAME_INVALID/);
    const byName = await lab.connect({ url: url(dnsOnlyPort, PASSWORD, 'localhost'), name: 'roam6-tls-test', env: env(), log });
    expect(await byName.client.ping()).toBe('PONG');
  });

  it('a server that requires client certificates takes ROAM6_REDIS_TLS_CERT/KEY and refuses without them', async () => {
    const withCert = await lab.connect({ url: url(mtlsPort), name: 'roam6-tls-test', env: env({ [TLS_ENV.cert]: file('client.crt'), [TLS_ENV.key]: file('client.key') }), log });
    expect(await withCert.client.ping()).toBe('PONG');
    const { message } = await refused(url(mtlsPort), env(), 1500);
    expect(message).toMatch(/not ready within 1500 ms/);
  });

  it('never logged the password', () => {
    for (const line of logs) expect(line).not.toContain(PASSWORD);
  });
});
