/**
 * `roam6 agent`: one hypervisor host's composition root. Start in dependency order
 * (log → config → Redis → data plane → guest links → MH socket → agent (adopts its guests) →
 * queue worker → heartbeat → API), stop in reverse. Stopping leaves every guest's binding,
 * link and routes in place: a restarted agent adopts and re-registers them.
 */
import type { FastifyInstance } from 'fastify';
import type { Worker } from 'bullmq';
import { formatIpv6 } from '../wire/ipv6.js';
import { HostAgent } from '../core/host-agent.js';
import type { GuestLinkPort } from '../ports/host.js';
import type { HostDataplanePort } from '../ports/dataplane.js';
import { loadAgentConfig, type AgentConfig } from '../config/agent-config.js';
import { describeListen } from '../config/common.js';
import { startAgentApi } from '../api/agent-api.js';
import { createLogger } from '../util/log.js';
import { systemClock } from '../platform/system-clock.js';
import { FakeHostDataplane } from '../platform/fake/dataplane.js';
import { FakeGuestLinks } from '../platform/fake/guest-links.js';
import { KernelHostDataplane } from '../platform/linux/kernel-dataplane.js';
import { LinuxGuestLinks } from '../platform/linux/guest-links.js';
import { createHypervisorDriver } from './hypervisors.js';
import { connectRedis } from '../platform/redis/connection.js';
import { RedisGuestRegistry } from '../platform/redis/guest-registry.js';
import { RedisAgentState } from '../platform/redis/agent-state.js';
import { RedisHostRegistry } from '../platform/redis/host-registry.js';
import { Orchestration } from '../orchestrator/runtime.js';
import { listenMh } from './mh-listener.js';
import { failpoints } from '../util/failpoints.js';
import { HaApiHandover } from '../platform/ha-api/handover.js';
import { readFileSync } from 'node:fs';

export interface AgentDaemon {
  readonly config: AgentConfig;
  readonly agent: HostAgent;
  readonly api: FastifyInstance;
  stop(): Promise<void>;
}

export async function startAgentDaemon(configFile: string): Promise<AgentDaemon> {
  const config = loadAgentConfig(configFile);
  const log = createLogger(`roam6-agent`, process.env.ROAM6_LOG_LEVEL ?? config.log.level);
  const stack: (() => Promise<void> | void)[] = [];
  const unwind = async () => {
    for (const f of stack.reverse()) await Promise.resolve().then(f).catch((e: unknown) => log.error({ err: String(e) }, 'shutdown step failed'));
    stack.length = 0;
  };

  try {
    const redis = await connectRedis({ url: config.redis.url, name: `roam6-agent-${config.hostId}`, log: (line) => log.info({}, line) });
    stack.push(() => redis.close());
    if (redis.embedded) log.warn({}, 'no REDIS_URL: using a private embedded Redis; the HA and other hosts cannot see this state');
    const state = new RedisAgentState(new RedisGuestRegistry(redis.client));

    const driver = createHypervisorDriver(config.hypervisor, log);
    stack.push(() => driver.close());
    await driver.removeLeftovers?.().catch((e: unknown) => log.warn({ err: String(e) }, 'hypervisor leftovers not cleaned'));
    const kernel = config.dataplane.backend === 'kernel';
    const dataplane: HostDataplanePort = kernel ? new KernelHostDataplane(config.dataplane.uplink ? { uplink: config.dataplane.uplink } : {}) : new FakeHostDataplane();
    // Released bridges are deleted in the background (guest-links.ts, docs/guest-link.md).
    const linuxLinks = kernel
      ? new LinuxGuestLinks({ guestInterface: (g) => driver.guestInterface(g), ra: { timing: raTiming(config.routerAdvertisements.intervalMs) }, log, deferRemoval: {} })
      : null;
    const links: GuestLinkPort & { close?: () => void } = linuxLinks ?? new FakeGuestLinks();
    if (links.close) stack.push(() => links.close!());

    let agent: HostAgent | null = null;
    const mh = listenMh(
      config.coa,
      (msg, rinfo) => agent?.onMobilityHeader(msg, rinfo.address),
      log,
      (err) => {
        log.error({ err: err.message, coa: formatIpv6(config.coa) }, 'mobility header socket lost for good; exiting');
        process.exit(70);
      },
    );
    stack.push(() => mh.close());

    agent = new HostAgent(
      {
        hostId: config.hostId,
        coa: config.coa,
        haAddress: config.haAddress,
        lifetimeSec: config.registration.lifetimeSec,
        initialTimeoutMs: config.registration.initialTimeoutMs,
        useTimestamp: config.registration.useTimestamp,
      },
      { registry: state, state, links, dataplane, sender: mh, clock: systemClock, log, hypervisor: driver },
    );
    const a = agent;
    stack.push(() => a.stop());
    const adopted = await a.start();
    // After adoption: bridges of guests held here are taken back by then; the rest are leftovers.
    await linuxLinks?.start().catch((e: unknown) => log.warn({ err: String(e) }, 'could not look for guest bridges left marked for removal'));

    const orchestration = new Orchestration(redis);
    stack.push(() => orchestration.close());
    const handover = config.ha
      ? new HaApiHandover({
          api: config.ha.api,
          token: config.ha.token ?? readFileSync(config.ha.tokenFile!, 'utf8').trim(),
          maxMs: config.ha.holdMs,
          maxPackets: config.ha.holdPackets,
          timeoutMs: config.ha.timeoutMs,
        })
      : undefined;
    if (!handover) log.warn({}, 'no ha.api configured: the HA will not hold packets during migrations (make before break is off)');
    const worker: Worker = orchestration.startHostWorker(config.hostId, a, driver, {
      log,
      ...(handover ? { handover } : {}),
      timing: config.queue,
      failpoint: failpoints(process.env.ROAM6_FAILPOINTS, (name) => log.warn({ failpoint: name }, 'failpoint reached: SIGKILL')),
    });
    stack.push(() => worker.close());

    const hosts = new RedisHostRegistry(redis.client);
    const beat = () =>
      hosts
        .beat(
          { host: config.hostId, coa: formatIpv6(config.coa), haAddress: formatIpv6(config.haAddress), guests: a.status().length, at: Date.now(), api: describeListen(config.api.listen) },
          config.heartbeatMs * 3,
        )
        .catch((e: unknown) => log.warn({ err: String(e) }, 'heartbeat failed (Redis unreachable?)'));
    await beat();
    const hb = setInterval(() => void beat(), config.heartbeatMs);
    hb.unref();
    stack.push(() => clearInterval(hb));

    const api = await startAgentApi(config.api.listen, a, Date.now());
    stack.push(() => api.close());
    log.info(
      { host: config.hostId, coa: formatIpv6(config.coa), ha: formatIpv6(config.haAddress), api: describeListen(config.api.listen), redis: redis.url, ...adopted },
      'host agent ready',
    );
    return { config, agent: a, api, stop: unwind };
  } catch (e) {
    await unwind();
    throw e;
  }
}

/** RA timing from one interval: unsolicited RAs between 1/3 of it and it (RFC 4861 §6.2.1 shape). */
function raTiming(maxMs: number) {
  return { minIntervalMs: Math.max(30, Math.round(maxMs / 3)), maxIntervalMs: maxMs };
}
