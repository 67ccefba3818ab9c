/**
 * The CLI's Redis: `--redis URL`, else REDIS_URL. Unlike the daemons, the CLI never starts an
 * embedded server: an empty private Redis would hide the real state. `roam6 lab up` prints
 * the URL to export.
 */
import { connectRedis, type RedisHandle } from '../platform/redis/connection.js';
import { CliError } from './errors.js';

export async function cliRedis(flag: string | undefined): Promise<RedisHandle> {
  const url = flag ?? process.env.REDIS_URL;
  if (!url) throw new CliError('no Redis given: use --redis URL or set REDIS_URL (roam6 lab up prints it)');
  try {
    return await connectRedis({ url, name: 'roam6-cli', log: () => {}, connectTimeoutMs: 5000 });
  } catch (e) {
    throw new CliError(e instanceof Error ? e.message : String(e));
  }
}
