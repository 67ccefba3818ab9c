/** `roam6 guest add|list|show|remove`: enrol guests (MNPs, security association, host) in Redis. */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { AUTH_ALGORITHMS, type AuthAlgorithm } from '../../security/mn-ha-auth.js';
import { GuestRegistryError, RedisGuestRegistry, redactGuestRecord, type GuestRecord } from '../../platform/redis/guest-registry.js';
import { CliError } from '../errors.js';
import { cliRedis } from '../redis-cli-connection.js';
import { renderTable } from '../table.js';

async function withRegistry<T>(redisFlag: string | undefined, fn: (r: RedisGuestRegistry) => Promise<T>): Promise<T> {
  const handle = await cliRedis(redisFlag);
  try {
    return await fn(new RedisGuestRegistry(handle.client));
  } catch (e) {
    if (e instanceof GuestRegistryError) throw new CliError(e.message, 2);
    throw e;
  } finally {
    await handle.close();
  }
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function registerGuestCommands(program: Command): void {
  const guest = program.command('guest').description('enrol and inspect guests (stored in Redis)');

  guest
    .command('add')
    .description('enrol a guest, or replace its enrolment')
    .argument('<id>', 'Mobile Node Identifier (NAI), e.g. g1@tenant.example')
    .requiredOption('--mnp <prefix>', 'Mobile Network Prefix (repeat for more)', collect, [])
    .requiredOption('--spi <n>', 'Mobility SPI (256…4294967295)')
    .option('--key <hex>', 'MN-HA key as hex (16+ octets)')
    .option('--key-file <file>', 'read the key (hex text) from a file')
    .option('--generate-key', 'generate a random 32-octet key (kept only in Redis)')
    .option('--algorithm <alg>', `${Object.keys(AUTH_ALGORITHMS).join(' | ')}`, 'hmac-sha1-96')
    .option('--host <id>', 'the host that holds the guest now')
    .option('--no-mobile-router', 'refuse mobile-router operation (BA 140)')
    .option('--redis <url>', 'Redis URL (default REDIS_URL)')
    .action(async (id: string, o: { mnp: string[]; spi: string; key?: string; keyFile?: string; generateKey?: boolean; algorithm: string; host?: string; mobileRouter: boolean; redis?: string }) => {
      const sources = [o.key, o.keyFile, o.generateKey].filter((x) => x !== undefined).length;
      if (sources !== 1) throw new CliError('give exactly one of --key, --key-file, --generate-key', 2);
      const key = o.key ?? (o.keyFile ? readFileSync(o.keyFile, 'utf8').trim() : randomBytes(32).toString('hex'));
      if (!Object.hasOwn(AUTH_ALGORITHMS, o.algorithm)) throw new CliError(`--algorithm: one of ${Object.keys(AUTH_ALGORITHMS).join(', ')}`, 2);
      const spi = Number(o.spi);
      const record: GuestRecord = {
        id,
        mnps: o.mnp,
        sas: [{ spi, algorithm: o.algorithm as AuthAlgorithm, key }],
        mobileRouter: o.mobileRouter,
        ...(o.host ? { host: o.host } : {}),
      };
      const result = await withRegistry(o.redis, (r) => r.put(record));
      process.stdout.write(`${result} ${id}\n`);
    });

  guest
    .command('list')
    .description('list enrolled guests')
    .option('--json', 'print JSON (keys redacted)')
    .option('--redis <url>', 'Redis URL (default REDIS_URL)')
    .action(async (o: { json?: boolean; redis?: string }) => {
      const rows = await withRegistry(o.redis, async (r) => {
        const list = await r.list();
        return Promise.all(list.map(async (g) => ({ record: redactGuestRecord(g), state: await r.getState(g.id) })));
      });
      if (o.json) {
        process.stdout.write(`${JSON.stringify(rows.map((x) => ({ ...x.record, seq: x.state?.seq ?? null })), null, 2)}\n`);
        return;
      }
      process.stdout.write(
        `${renderTable(rows, [
          { header: 'GUEST', value: (x) => x.record.id, flexible: true },
          { header: 'MNPS', value: (x) => x.record.mnps.join(','), flexible: true },
          { header: 'SPIS', value: (x) => x.record.sas.map((s) => s.spi).join(',') },
          { header: 'HOST', value: (x) => x.record.host ?? '-' },
          { header: 'SEQ', value: (x) => (x.state?.seq === undefined ? '-' : String(x.state.seq)), align: 'right' },
        ])}\n${rows.length} guest(s)\n`,
      );
    });

  guest
    .command('show')
    .description('one guest: enrolment (keys redacted) and mobility state')
    .argument('<id>')
    .option('--redis <url>', 'Redis URL (default REDIS_URL)')
    .action(async (id: string, o: { redis?: string }) => {
      const out = await withRegistry(o.redis, async (r) => {
        const g = await r.get(id);
        if (!g) throw new CliError(`no guest ${id}`, 3);
        const s = await r.getState(id);
        return { ...redactGuestRecord(g), state: s ? { ...s, lastTimestamp: s.lastTimestamp?.toString() } : null };
      });
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    });

  guest
    .command('remove')
    .description('remove a guest enrolment and its state')
    .argument('<id>')
    .option('--redis <url>', 'Redis URL (default REDIS_URL)')
    .action(async (id: string, o: { redis?: string }) => {
      const removed = await withRegistry(o.redis, (r) => r.remove(id));
      if (!removed) throw new CliError(`no guest ${id}`, 3);
      process.stdout.write(`removed ${id}\n`);
    });
}
