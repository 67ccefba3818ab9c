/**
 * The HA's guest directory: guests from the config file, over guests enrolled in Redis
 * (`roam6 guest add`) when Redis is enabled. Config wins on a conflict.
 */
import type { GuestDirectory, GuestPolicy } from '../ports/guest-directory.js';
import type { Logger } from '../ports/log.js';
import { CompositeGuestDirectory, MemoryGuestDirectory } from '../platform/memory-guest-directory.js';
import type { RedisHandle } from '../platform/redis/connection.js';
import { RedisGuestDirectory, RedisGuestRegistry } from '../platform/redis/guest-registry.js';

export async function guestDirectoryFor(
  configGuests: readonly GuestPolicy[],
  redis: RedisHandle | undefined,
  log: Logger,
): Promise<GuestDirectory & { close?: () => Promise<void> }> {
  const fromConfig = new MemoryGuestDirectory(configGuests);
  if (!redis) return fromConfig;
  const enrolled = new RedisGuestDirectory(new RedisGuestRegistry(redis.client), redis, {
    onChange: (id, guest) => log.info({ guest: id, removed: guest === undefined }, 'guest enrollment changed'),
    onError: (message) => log.warn({}, `guest directory: ${message}`),
  });
  await enrolled.start();
  const composite = new CompositeGuestDirectory(fromConfig, enrolled);
  return Object.assign(composite, { close: () => enrolled.stop() });
}
