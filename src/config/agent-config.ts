/**
 * `roam6 agent --config FILE`: one hypervisor host's agent (JSON). Documented in
 * docs/configuration.md; a working example is deploy/examples/agent.json.
 */
import { z } from 'zod';
import { ConfigError, formatIssues, ipv6Address, listenAddress, logLevel, readJsonConfig } from './common.js';
import { hypervisorConfigSchema } from './hypervisor-config.js';

export const agentConfigSchema = z
  .object({
    hostId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'host ids are 1–63 of [A-Za-z0-9_.-]'),
    /** The host's care-of address (it must be assigned on this host). */
    coa: ipv6Address,
    haAddress: ipv6Address,
    dataplane: z
      .object({ backend: z.enum(['kernel', 'none']).default('kernel'), uplink: z.string().optional() })
      .strict()
      .default({ backend: 'kernel' }),
    redis: z.object({ url: z.string().optional() }).strict().default({}),
    /** Which hypervisor driver runs this host's guests (config/hypervisor-config.ts, docs/hypervisors.md). */
    hypervisor: hypervisorConfigSchema.default({ driver: 'netns', namespaces: {} }),
    api: z
      .object({ listen: listenAddress.default({ host: '127.0.0.1', port: 8447 }) })
      .strict()
      .default({ listen: { host: '127.0.0.1', port: 8447 } }),
    registration: z
      .object({
        lifetimeSec: z.number().int().min(4).max(262_140).default(400),
        /** First BU retransmission timeout (RFC 6275: 1000 ms); tens of ms in a lab. */
        initialTimeoutMs: z.number().int().min(10).max(32_000).default(1000),
        /** Send the RFC 4285 replay-protection timestamp (the HA may require it). */
        useTimestamp: z.boolean().default(true),
      })
      .strict()
      .default({ lifetimeSec: 400, initialTimeoutMs: 1000, useTimestamp: true }),
    routerAdvertisements: z
      .object({
        intervalMs: z.number().int().min(30).max(1_800_000).default(10_000),
        rdnss: z.array(ipv6Address).default([]),
      })
      .strict()
      .default({ intervalMs: 10_000, rdnss: [] }),
    /**
     * The HA's API, for make-before-break: as a guest pauses here, the agent asks the HA to hold
     * its packets until the new host's BU (docs/protocol.md, "Zero-loss handover"). Without it
     * migrations work, and packets in flight during the pause may be lost.
     */
    ha: z
      .object({
        api: z.string().regex(/^(https?:\/\/|unix:)/, 'an http:// URL or unix:/path'),
        token: z.string().min(16).optional(),
        tokenFile: z.string().optional(),
        holdMs: z.number().int().min(10).max(10_000).default(2000),
        holdPackets: z.number().int().min(1).max(65_536).default(4096),
        timeoutMs: z.number().int().min(10).max(5000).default(250),
      })
      .strict()
      .refine((h) => (h.token === undefined) !== (h.tokenFile === undefined), { message: 'give exactly one of token and tokenFile', path: ['token'] })
      .optional(),
    heartbeatMs: z.number().int().min(100).max(60_000).default(3000),
    /**
     * The step worker's job lock and stalled check (orchestrator/runtime.ts WorkerTiming): a step
     * whose agent died is taken up again about lockMs + 2 × stalledCheckMs after the agent is back.
     */
    queue: z
      .object({
        lockMs: z.number().int().min(1000).max(600_000).default(15_000),
        stalledCheckMs: z.number().int().min(500).max(600_000).default(5_000),
      })
      .strict()
      .refine((q) => q.stalledCheckMs <= q.lockMs, { message: 'stalledCheckMs must not exceed lockMs', path: ['stalledCheckMs'] })
      .default({ lockMs: 15_000, stalledCheckMs: 5_000 }),
    log: z.object({ level: logLevel }).strict().default({ level: 'info' }),
  })
  .strict();

export type AgentConfig = z.output<typeof agentConfigSchema>;

export function parseAgentConfig(raw: unknown, file = '(inline)'): AgentConfig {
  const r = agentConfigSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(formatIssues(file, r.error.issues));
  return r.data;
}

export function loadAgentConfig(file: string): AgentConfig {
  return parseAgentConfig(readJsonConfig(file), file);
}
