/**
 * `roam6 ha`: the Home Agent daemon's composition root. Start in dependency order
 * (log → config → Redis → guests → store → data plane → binding cache → MH sockets → API),
 * stop in reverse. The data plane keeps forwarding across a restart unless asked to tear
 * down: a restarted HA restores its bindings and takes the routes back over.
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { formatIpv6, formatPrefix } from '../wire/ipv6.js';
import { HomeAgent, DEFAULT_HA_RUNTIME } from '../core/home-agent.js';
import type { HaDataplanePort } from '../ports/dataplane.js';
import type { BindingStore } from '../ports/binding-store.js';
import type { GuestDirectory } from '../ports/guest-directory.js';
import { loadHaConfig, guestsFromConfig, type HaConfig } from '../config/ha-config.js';
import { describeListen } from '../config/common.js';
import { startApi } from '../api/server.js';
import { createLogger } from '../util/log.js';
import { systemClock } from '../platform/system-clock.js';
import { FakeHaDataplane } from '../platform/fake/dataplane.js';
import { KernelHaDataplane } from '../platform/linux/kernel-dataplane.js';
import { UserspaceHaDataplane } from '../platform/linux/userspace-dataplane.js';
import { connectRedis, type RedisHandle } from '../platform/redis/connection.js';
import { RedisBindingStore } from '../platform/redis/binding-store.js';
import { RedisHostRegistry } from '../platform/redis/host-registry.js';
import { MigrationOutcomes } from '../orchestrator/outcomes.js';
import { guestDirectoryFor } from './guest-directories.js';
import { listenMh } from './mh-listener.js';
import { Orchestration } from '../orchestrator/runtime.js';

export interface HaDaemon {
  readonly config: HaConfig;
  readonly ha: HomeAgent;
  readonly api: FastifyInstance;
  /** Stop everything; with `teardown`, also remove the data plane's kernel state. */
  stop(opts?: { teardown?: boolean }): Promise<void>;
}

export async function startHaDaemon(configFile: string): Promise<HaDaemon> {
  const config = loadHaConfig(configFile);
  const log = createLogger('roam6-ha', process.env.ROAM6_LOG_LEVEL ?? config.log.level);
  const stack: (() => Promise<void> | void)[] = [];
  const unwind = async () => {
    for (const f of stack.reverse()) await Promise.resolve().then(f).catch((e: unknown) => log.error({ err: String(e) }, 'shutdown step failed'));
    stack.length = 0;
  };

  try {
    let redis: RedisHandle | undefined;
    if (config.redis.enabled) {
      redis = await connectRedis({ url: config.redis.url, name: 'roam6-ha', log: (line) => log.info({}, line) });
      stack.push(() => redis!.close());
      log.info({ redis: redis.url, embedded: !!redis.embedded }, 'redis connected');
    }
    const guests: GuestDirectory & { close?: () => Promise<void> } = await guestDirectoryFor(guestsFromConfig(config), redis, log);
    if (guests.close) stack.push(() => guests.close!());
    const store: BindingStore | undefined = redis ? new RedisBindingStore(redis.client) : undefined;

    const dataplane = makeDataplane(config);
    let teardown = false;
    stack.push(async () => {
      if (teardown) await dataplane.stop();
    });

    const ha = new HomeAgent(
      {
        policy: {
          servedPrefixes: config.servedPrefixes,
          maxLifetimeSec: config.maxLifetimeSec,
          requireTimestamp: config.replayProtection.requireTimestamp,
          timestampWindowMs: config.replayProtection.windowMs,
          refreshAdviceRatio: 0.8,
        },
        ...DEFAULT_HA_RUNTIME,
        rateLimit: { ratePerSec: config.rateLimit.perSec, burst: config.rateLimit.burst },
      },
      { guests, dataplane, ...(store ? { store } : {}), clock: systemClock, log },
    );
    const restored = await ha.start();
    stack.push(() => ha.stop());
    // Rejections are logged by the HomeAgent itself (one line per BU, with src and seq).

    for (const addr of config.addresses) {
      const listener = listenMh(
        addr,
        (msg, rinfo, reply) => {
          ha.handle(msg, rinfo.address, rinfo.localAddress)
            .then((r) => {
              if (r) reply(r.mh, r.to);
            })
            .catch((e: unknown) => log.error({ err: String(e), src: formatIpv6(rinfo.address) }, 'binding update handling failed'));
        },
        log,
        (err) => {
          log.error({ err: err.message, address: formatIpv6(addr) }, 'mobility header socket lost for good; exiting');
          process.exit(70);
        },
      );
      stack.push(() => listener.close());
      log.info({ address: formatIpv6(addr) }, 'listening for mobility headers');
    }

    const token = config.api.token ?? (config.api.tokenFile ? readFileSync(config.api.tokenFile, 'utf8').trim() : undefined);
    // Operator views: CoA → host from the heartbeats, handover numbers from finished migrations.
    const outcomes = redis ? new MigrationOutcomes(redis.client) : undefined;
    if (outcomes) stack.push(() => outcomes.close());
    const orchestration = redis ? new Orchestration(redis) : undefined;
    if (orchestration) stack.push(() => orchestration.close());
    const api = await startApi(
      { listen: config.api.listen, ...(token ? { token } : {}), readNetworks: config.api.readNetworks, startedAt: Date.now() },
      {
        ha,
        dataplane,
        clock: systemClock,
        ...(redis ? { hosts: new RedisHostRegistry(redis.client), redisPing: () => redis!.client.ping() } : {}),
        ...(outcomes ? { migrations: outcomes } : {}),
        ...(orchestration ? { orchestration } : {}),
      },
    );
    stack.push(() => api.close());
    log.info(
      {
        api: describeListen(config.api.listen),
        addresses: config.addresses.map(formatIpv6),
        served: config.servedPrefixes.map(formatPrefix),
        dataplane: config.dataplane.backend,
        guests: [...guests.all()].length,
        ...restored,
      },
      'home agent ready',
    );

    return {
      config,
      ha,
      api,
      async stop(opts = {}) {
        teardown = !!opts.teardown;
        await unwind();
      },
    };
  } catch (e) {
    await unwind();
    throw e;
  }
}

function makeDataplane(config: HaConfig): HaDataplanePort {
  switch (config.dataplane.backend) {
    case 'kernel':
      return new KernelHaDataplane({
        haAddress: config.addresses[0]!,
        ...(config.dataplane.device ? { uplink: config.dataplane.device } : {}),
        homeAggregates: config.servedPrefixes,
      });
    case 'none':
      return new FakeHaDataplane(false);
    case 'userspace':
      return new UserspaceHaDataplane({ haAddress: config.addresses[0]!, homeAggregates: config.servedPrefixes });
  }
}
