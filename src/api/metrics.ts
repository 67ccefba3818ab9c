/**
 * `GET /metrics` (Prometheus text format) for the HA, with prom-client on a private registry.
 * Totals are read from the HomeAgent's counters and the data plane at scrape time (nothing on
 * the BU path changes); the handover histogram is fed from `moved` events.
 *
 *   roam6_ha_bindings{state}                      registered | expiring
 *   roam6_ha_bu_received_total                    Mobility Headers received
 *   roam6_ha_binding_acks_total{status,reason}    BAs sent, by status code (0 accepted, 135 …)
 *   roam6_ha_bu_dropped_total{reason}             BUs dropped without an answer
 *   roam6_ha_mh_malformed_total{reason}           undecodable Mobility Headers
 *   roam6_ha_binding_errors_total, roam6_ha_bindings_expired_total, roam6_ha_store_write_failures_total
 *   roam6_ha_events_total{type}                   binding events (as on /events)
 *   roam6_ha_handover_duration_seconds            HA side: first BU from the new CoA → BA (histogram)
 *   roam6_dataplane_bindings, roam6_dataplane_up
 *   roam6_dataplane_packets_total{direction}, roam6_dataplane_bytes_total{direction}   tx = HA → host
 *   roam6_dataplane_drops_total{reason}
 *   roam6_api_sse_clients, roam6_api_sse_dropped_clients_total
 *   process_* and nodejs_*                        prom-client's default process metrics
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { HomeAgent } from '../core/home-agent.js';
import type { HaDataplanePort } from '../ports/dataplane.js';
import type { Clock } from '../ports/clock.js';
import { isExpiring, baStatusText } from './binding-view.js';
import type { EventHub } from './event-stream.js';

export const HANDOVER_BUCKETS_SEC = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** snake_case for a camelCase stats field: dropsNoBinding → no_binding. */
const reasonOf = (field: string) => field.replace(/^drops/, '').replace(/^[A-Z]/, (c) => c.toLowerCase()).replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

export interface HaMetrics {
  readonly registry: Registry;
  observeHandover(ms: number): void;
  /** A handover hold ended at the new CoA, with this many packets delivered from the buffer. */
  observeHoldRelease(packets: number): void;
}

export function createHaMetrics(c: { ha: HomeAgent; dataplane: HaDataplanePort; clock: Clock; events: EventHub }): HaMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const { ha } = c;

  new Gauge({
    name: 'roam6_ha_bindings',
    help: 'Bindings in the cache, by state (expiring: under 10% of the lifetime left, refreshes are failing)',
    labelNames: ['state'],
    registers,
    collect() {
      const now = c.clock.now();
      let expiring = 0;
      for (const b of ha.cache.values()) if (isExpiring(b, now)) expiring++;
      this.set({ state: 'registered' }, ha.cache.size - expiring);
      this.set({ state: 'expiring' }, expiring);
    },
  });
  new Counter({
    name: 'roam6_ha_bu_received_total',
    help: 'Mobility Header messages received',
    registers,
    collect() {
      this.reset();
      this.inc(ha.counters.received);
    },
  });
  new Counter({
    name: 'roam6_ha_binding_acks_total',
    help: 'Binding Acknowledgements sent, by status code (0 accepted; 128 and up rejected)',
    labelNames: ['status', 'reason'],
    registers,
    collect() {
      this.reset();
      for (const [status, n] of Object.entries(ha.counters.acks)) this.inc({ status, reason: baStatusText(Number(status)) }, n);
    },
  });
  new Counter({
    name: 'roam6_ha_bu_dropped_total',
    help: 'Binding Updates dropped without an answer, by reason',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(ha.counters.dropped)) if (n) this.inc({ reason }, n);
    },
  });
  new Counter({
    name: 'roam6_ha_mh_malformed_total',
    help: 'Mobility Headers that did not decode, by reason',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(ha.counters.malformed)) if (n) this.inc({ reason }, n);
    },
  });
  const simple = (name: string, help: string, get: () => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(get());
      },
    });
  simple('roam6_ha_binding_errors_total', 'Binding Error messages sent', () => ha.counters.bindingErrors);
  simple('roam6_ha_bindings_expired_total', 'Bindings removed because their lifetime ran out', () => ha.counters.expired);
  simple('roam6_ha_store_write_failures_total', 'Failed batched writes of bindings to the store (retried)', () => ha.counters.persistFailures);
  new Counter({
    name: 'roam6_ha_events_total',
    help: 'Binding events, by type',
    labelNames: ['type'],
    registers,
    collect() {
      this.reset();
      for (const [type, n] of Object.entries(c.events.published)) this.inc({ type }, n);
    },
  });
  const handover = new Histogram({
    name: 'roam6_ha_handover_duration_seconds',
    help: 'HA side of a handover: first authenticated BU from the new care-of address received to the BA accepting the move',
    buckets: HANDOVER_BUCKETS_SEC,
    registers,
  });
  const holds = new Counter({ name: 'roam6_ha_handover_holds_released_total', help: 'Handover holds released to the new care-of address: by its BU, or ahead of it when the source reports the guest left (POST …/hold/switch)', registers });
  const heldPackets = new Counter({
    name: 'roam6_ha_handover_held_packets_total',
    help: 'Packets held during handovers and delivered, in order, to the new care-of address (overflow: roam6_dataplane_drops_total{reason="hold_overflow"})',
    registers,
  });

  // Data plane: totals from stats() when the backend keeps them, else the sum of per-binding counters.
  let dp: { stats: Record<string, unknown>; tx: number[]; rx: number[]; ok: boolean } | null = null;
  let dpAt = 0;
  const dataplane = async () => {
    if (dp && Date.now() - dpAt < 250) return dp; // one scrape reads it once
    let stats: Record<string, unknown> = {};
    let ok = true;
    try {
      stats = { ...(await c.dataplane.stats()) };
    } catch {
      ok = false;
    }
    const num = (k: string) => (typeof stats[k] === 'number' ? (stats[k] as number) : undefined);
    let tx = [num('txPackets'), num('txBytes')];
    let rx = [num('rxPackets'), num('rxBytes')];
    if (ok && tx.some((v) => v === undefined)) {
      let txp = 0;
      let txb = 0;
      let rxp = 0;
      let rxb = 0;
      for (const b of ha.cache.values()) {
        const k = await c.dataplane.counters(b.guest).catch(() => null);
        if (!k) continue;
        txp += k.txPackets;
        txb += k.txBytes;
        rxp += k.rxPackets;
        rxb += k.rxBytes;
      }
      tx = [txp, txb];
      rx = [rxp, rxb];
    }
    dp = { stats, tx: tx.map((v) => v ?? 0), rx: rx.map((v) => v ?? 0), ok: ok && stats['running'] !== false };
    dpAt = Date.now();
    return dp;
  };
  new Gauge({
    name: 'roam6_dataplane_up',
    help: '1 when the data plane answers and runs',
    registers,
    async collect() {
      this.set((await dataplane()).ok ? 1 : 0);
    },
  });
  new Gauge({
    name: 'roam6_dataplane_bindings',
    help: 'Bindings installed in the data plane',
    registers,
    async collect() {
      const b = (await dataplane()).stats['bindings'];
      this.set(typeof b === 'number' ? b : 0);
    },
  });
  new Counter({
    name: 'roam6_dataplane_packets_total',
    help: 'Tunnelled packets: tx = encapsulated toward a host, rx = decapsulated from a host',
    labelNames: ['direction'],
    registers,
    async collect() {
      const d = await dataplane();
      this.reset();
      this.inc({ direction: 'tx' }, d.tx[0]!);
      this.inc({ direction: 'rx' }, d.rx[0]!);
    },
  });
  new Counter({
    name: 'roam6_dataplane_bytes_total',
    help: 'Tunnelled bytes (inner packets): tx = toward a host, rx = from a host',
    labelNames: ['direction'],
    registers,
    async collect() {
      const d = await dataplane();
      this.reset();
      this.inc({ direction: 'tx' }, d.tx[1]!);
      this.inc({ direction: 'rx' }, d.rx[1]!);
    },
  });
  new Counter({
    name: 'roam6_dataplane_drops_total',
    help: 'Packets the data plane dropped, by reason (no_binding, ingress: RFC 3963 §9 checks, hold_overflow: handover buffer, …)',
    labelNames: ['reason'],
    registers,
    async collect() {
      const d = await dataplane();
      this.reset();
      for (const [k, v] of Object.entries(d.stats)) if (k.startsWith('drops') && typeof v === 'number') this.inc({ reason: reasonOf(k) }, v);
    },
  });
  new Gauge({
    name: 'roam6_api_sse_clients',
    help: 'Clients connected to /api/v1/events',
    registers,
    collect() {
      this.set(c.events.clientCount);
    },
  });
  new Counter({
    name: 'roam6_api_sse_dropped_clients_total',
    help: 'Event-stream clients dropped because they read too slowly',
    registers,
    collect() {
      this.reset();
      this.inc(c.events.droppedClients);
    },
  });

  return {
    registry,
    observeHandover(ms: number) {
      handover.observe(ms / 1000);
    },
    observeHoldRelease(packets: number) {
      holds.inc();
      heldPackets.inc(packets);
    },
  };
}
