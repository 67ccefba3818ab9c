/**
 * bench/handover-lib.ts: the hold counters bench:handover reads from the HA's /metrics. The text
 * comes from a real prom-client registry with the HA's metric names (src/api/metrics.ts), so a
 * parser that misses names with digits in them ("roam6_…") or labelled series fails here.
 */
import { Counter, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';

import { holdDelta, parseHoldCounters } from '../../../bench/handover-lib.js';

async function exposition(held: number, released: number, overflow: number): Promise<string> {
  const registers = [new Registry()];
  new Counter({ name: 'roam6_ha_handover_held_packets_total', help: 'h', registers }).inc(held);
  new Counter({ name: 'roam6_ha_handover_holds_released_total', help: 'h', registers }).inc(released);
  const drops = new Counter({ name: 'roam6_dataplane_drops_total', help: 'h', labelNames: ['reason'], registers });
  drops.inc({ reason: 'hold_overflow' }, overflow);
  drops.inc({ reason: 'ingress' }, 2);
  const pkts = new Counter({ name: 'roam6_dataplane_packets_total', help: 'h', labelNames: ['direction'], registers });
  pkts.inc({ direction: 'tx' }, 10);
  pkts.inc({ direction: 'rx' }, 7);
  return registers[0]!.metrics();
}

describe('parseHoldCounters', () => {
  it('reads the hold counters, drops by reason and packets by direction', async () => {
    const c = parseHoldCounters(await exposition(53, 3, 1));
    expect(c).toEqual({ heldPackets: 53, holdsReleased: 3, drops: { hold_overflow: 1, ingress: 2 }, packets: { tx: 10, rx: 7 } });
  });

  it('subtracts two readings, a reason missing before counting as 0', async () => {
    const a = parseHoldCounters('roam6_ha_handover_held_packets_total 5\nroam6_ha_handover_holds_released_total 1\n');
    const b = parseHoldCounters(await exposition(58, 2, 4));
    expect(holdDelta(a, b)).toEqual({ heldPackets: 53, holdsReleased: 1, drops: { hold_overflow: 4, ingress: 2 }, packets: { tx: 10, rx: 7 } });
  });
});
