/**
 * The host agent: one mobile-router proxy instance per guest this host holds, and the move
 * operations the orchestrator drives —
 *   prepare(guest)  build the guest link and routes before the guest arrives (no BU yet);
 *   activate(guest) register now, at one BU round trip;
 *   release(guest)  tear down the guest link and routes, with no de-registration.
 * Each is idempotent and safe to retry. Instances are supervised: one guest's failure is
 * recorded in its status and never touches another guest.
 */
import { formatIpv6, type Ipv6Address } from '../wire/ipv6.js';
import { MhOptionType, MhType, decodeMobilityHeader, findOption } from '../wire/mh/index.js';
import type { Clock } from '../ports/clock.js';
import type { HostDataplanePort } from '../ports/dataplane.js';
import type { GuestLinkPort, GuestRegistryPort, HostGuestRecord } from '../ports/host.js';
import type { MhSenderPort, MobilityStatePort } from '../ports/mobility.js';
import type { HypervisorHooks } from '../ports/hypervisor.js';
import { silentLogger, type Logger } from '../ports/log.js';
import { checkBindingAck } from './binding-update-builder.js';
import { KeyedQueue } from './keyed-queue.js';
import { MobileRouter, type Registration } from './mobile-router.js';

export interface HostAgentConfig {
  readonly hostId: string;
  readonly coa: Ipv6Address;
  readonly haAddress: Ipv6Address;
  readonly lifetimeSec: number;
  readonly initialTimeoutMs: number;
  readonly useTimestamp: boolean;
}

export interface HostAgentComponents {
  readonly registry: GuestRegistryPort;
  readonly state: MobilityStatePort;
  readonly links: GuestLinkPort;
  readonly dataplane: HostDataplanePort;
  readonly sender: MhSenderPort;
  readonly clock: Clock;
  readonly log?: Logger;
  /**
   * The hypervisor driver's optional hooks: `prepareIncoming` when a guest is about to arrive
   * (prepare with `arriving`), `discardGuest` on release.
   */
  readonly hypervisor?: HypervisorHooks;
}

export interface PrepareOptions {
  /** A migration to this host is about to start: let the hypervisor prepare the guest's landing place. */
  readonly arriving?: boolean;
}

export interface Prepared {
  readonly ifname: string;
  /** The hypervisor's incoming-migration URI (QEMU), for the source's migrate step. */
  readonly incoming?: string;
}

export type GuestPhase = 'prepared' | 'active' | 'failed';

/** What activate() reports: the registration plus when the guest was attached and registered. */
export interface Activation extends Registration {
  /** Epoch ms the guest's interface was attached on this host. */
  readonly attachedAt: number;
  /** Epoch ms the accepting BA arrived. */
  readonly registeredAt: number;
}

interface Held {
  readonly record: HostGuestRecord;
  readonly ifname: string;
  phase: GuestPhase;
  mr: MobileRouter | null;
  error: string | null;
  /** Epoch ms the guest's interface was first attached here (prepare, for an incoming QEMU). */
  attachedAt: number | null;
  /** The registration made when the hypervisor reported the guest resumed here, for activate() to return. */
  arrival: Activation | null;
}

/** How long a registration made on resume stands in for the orchestrator's activate step. */
const ARRIVAL_JOIN_MS = 60_000;
/**
 * At activate, how long to wait for the guest's link to carry packets after attaching its
 * interface (GuestLinkPort.attach waitUpMs): longer than a kernel busy with netlink takes to
 * bring a new bridge port up, shorter than the 1 s Neighbor Solicitation retry it saves.
 */
export const GUEST_LINK_UP_WAIT_MS = 1000;

export class GuestUnknownError extends Error {
  static override readonly name = 'GuestUnknownError';
  readonly code = 'ROAM6_ERR_GUEST_UNKNOWN';
  constructor(readonly guest: string) {
    super(`guest ${guest} is not enrolled (roam6 guest add)`);
    this.name = 'GuestUnknownError';
  }
}

export class HostAgent {
  private readonly held = new Map<string, Held>();
  private readonly bySpi = new Map<number, string>();
  private readonly queue = new KeyedQueue();
  private readonly log: Logger;

  constructor(readonly cfg: HostAgentConfig, private readonly c: HostAgentComponents) {
    this.log = c.log ?? silentLogger;
  }

  /**
   * Start the tunnel endpoint and adopt the guests the registry says this host holds — but
   * only those the hypervisor still runs here. An agent that died in the middle of a live
   * migration restarts with the registry naming it while the guest already runs on the
   * destination; registering the guest from here would pull its traffic back to a host that
   * no longer has it. Such a guest is left to the migration, which rolls forward.
   */
  async start(): Promise<{ adopted: string[]; failed: string[]; gone: string[] }> {
    await this.c.dataplane.start(this.cfg.coa, this.cfg.haAddress);
    const mine = await this.c.registry.heldBy(this.cfg.hostId);
    const adopted: string[] = [];
    const failed: string[] = [];
    const gone: string[] = [];
    await Promise.all(
      mine.map(async (g) => {
        try {
          if (this.c.hypervisor?.runsHere && !(await this.c.hypervisor.runsHere(g))) {
            gone.push(g);
            this.log.warn({ guest: g }, 'the registry says this host holds the guest, but it does not run here; not adopting it');
            return;
          }
          await this.prepare(g);
          await this.activate(g);
          adopted.push(g);
        } catch (e) {
          failed.push(g);
          this.log.error({ guest: g, err: String(e) }, 'could not adopt guest at start');
        }
      }),
    );
    this.log.info({ host: this.cfg.hostId, adopted: adopted.length, failed: failed.length, gone: gone.length }, 'host agent started');
    return { adopted, failed, gone };
  }

  /**
   * Build the guest's link and routes here, ahead of its arrival. No BU is sent. With
   * `arriving`, the hypervisor also prepares the incoming guest (QEMU `-incoming` and its TAP),
   * whose interface is attached to the guest link at once: make before break.
   */
  prepare(guest: string, opts: PrepareOptions = {}): Promise<Prepared> {
    return this.serialise(guest, async () => {
      const prepared = await this.prepareUnserialised(guest);
      const incoming =
        opts.arriving && this.c.hypervisor?.prepareIncoming
          ? await this.c.hypervisor.prepareIncoming(guest, { onResumed: (at) => this.onArrived(guest, at) })
          : null;
      if (!incoming) return prepared;
      const h = this.held.get(guest)!;
      if (await this.c.links.attach(guest)) h.attachedAt ??= this.c.clock.now();
      return { ...prepared, incoming: incoming.uri };
    });
  }

  /**
   * The guest runs here now: attach its interface, register at once, announce the router.
   * Resolves with the registration (elapsed time from BU to BA). When the hypervisor already
   * reported the guest's arrival and the agent registered it then, that registration is the
   * answer (no second BU).
   */
  activate(guest: string): Promise<Activation> {
    return this.serialise(guest, async () => {
      const h = this.held.get(guest);
      const a = h?.arrival;
      if (h && a) {
        h.arrival = null;
        if (h.phase === 'active' && this.c.clock.now() - a.registeredAt < ARRIVAL_JOIN_MS) return a;
      }
      return this.activateUnserialised(guest);
    });
  }

  /** The hypervisor says the guest resumed here: register now, ahead of the orchestrator. */
  private onArrived(guest: string, at: number): void {
    this.log.info({ guest, resumedAt: at }, 'guest resumed here; registering at once');
    void this.serialise(guest, async () => {
      const h = this.held.get(guest);
      if (!h) return; // released meanwhile
      try {
        const a = await this.activateUnserialised(guest);
        h.arrival = a;
      } catch (e) {
        this.log.warn({ guest, err: String(e) }, 'registration on resume failed; the activate step will retry');
      }
    });
  }

  private async activateUnserialised(guest: string): Promise<Activation> {
    let h = this.held.get(guest);
    if (!h) {
      await this.prepareUnserialised(guest);
      h = this.held.get(guest)!;
    }
    // The guest runs here now: wait (bounded) until its link carries packets before the BU
    // pulls its traffic, and the HA's held packets, onto it.
    const attached = await this.c.links.attach(guest, { waitUpMs: GUEST_LINK_UP_WAIT_MS });
    const attachedAt = h.attachedAt ?? this.c.clock.now();
    if (attached) h.attachedAt = attachedAt;
    if (!h.mr) h.mr = this.instance(h.record);
    try {
      const reg = await h.mr.register();
      const registeredAt = this.c.clock.now();
      h.phase = 'active';
      h.error = null;
      await this.c.registry.setHost(guest, this.cfg.hostId);
      await this.c.links.announce(guest).catch((e: unknown) => this.log.warn({ guest, err: String(e) }, 'router announcement failed'));
      this.log.info({ guest, seq: reg.seq, elapsedMs: reg.elapsedMs, attempts: reg.attempts }, 'guest registered');
      return { ...reg, attachedAt, registeredAt };
    } catch (e) {
      h.phase = 'failed';
      h.error = e instanceof Error ? e.message : String(e);
      throw e;
    }
  }

  /** The guest left: stop its instance (no de-registration) and remove its link and routes. */
  release(guest: string): Promise<void> {
    return this.serialise(guest, async () => {
      const h = this.held.get(guest);
      if (h?.mr) {
        h.mr.stop();
        for (const sa of h.record.sas) this.bySpi.delete(sa.spi);
      }
      this.held.delete(guest);
      if (this.c.hypervisor?.discardGuest) {
        // Best effort: a leftover QEMU must not block the release (and so the migration).
        await this.c.hypervisor.discardGuest(guest).catch((e: unknown) => this.log.error({ guest, err: String(e) }, 'hypervisor could not discard the guest here'));
      }
      await this.c.dataplane.removeGuest(guest);
      await this.c.links.remove(guest);
      this.log.info({ guest }, 'guest released');
    });
  }

  /** Mobility Header from the HA (BA, BRR, BE), as received on the CoA socket. */
  onMobilityHeader(bytes: Uint8Array, src: Ipv6Address): void {
    const r = decodeMobilityHeader(bytes);
    if (!r.ok) {
      this.log.debug({ src: formatIpv6(src), reason: r.error.message }, 'malformed mobility header dropped');
      return;
    }
    const msg = r.value;
    if (msg.type === MhType.BindingAck) {
      const spi = findOption(msg.options, MhOptionType.MobilityMessageAuthentication)?.spi;
      const guest = spi === undefined ? undefined : this.bySpi.get(spi);
      const h = guest === undefined ? undefined : this.held.get(guest);
      const sa = h?.record.sas.find((s) => s.spi === spi);
      if (!h?.mr || !sa) return;
      const check = checkBindingAck(bytes, sa, this.cfg.coa);
      if (!check.ok) {
        this.log.warn({ guest, src: formatIpv6(src), reason: check.reason }, 'binding ack ignored');
        return;
      }
      h.mr.onAck(check.ack);
    } else if (msg.type === MhType.BindingRefreshRequest) {
      const id = findOption(msg.options, MhOptionType.MobileNodeIdentifier);
      const guest = id ? new TextDecoder().decode(id.identifier) : undefined;
      if (guest !== undefined) this.held.get(guest)?.mr?.onRefreshRequest();
    } else if (msg.type === MhType.BindingError) {
      for (const h of this.held.values()) if (h.mr?.state === 'registering') h.mr.onBindingError(msg.status);
    }
  }

  /** Every guest held here with its phase and registration state. */
  status() {
    return [...this.held.entries()].map(([guest, h]) => ({
      guest,
      phase: h.phase,
      ifname: h.ifname,
      error: h.error,
      mr: h.mr?.status() ?? null,
    }));
  }

  /** Stop every instance; guests keep their bindings and their links (no de-registration). */
  stop(): void {
    for (const h of this.held.values()) h.mr?.stop();
  }

  // -------------------------------------------------------------------------------------------

  private async prepareUnserialised(guest: string): Promise<{ ifname: string }> {
    const record = await this.c.registry.get(guest);
    if (!record) throw new GuestUnknownError(guest);
    const ifname = await this.c.links.ensure(record);
    await this.c.dataplane.addGuest(guest, record.mnps, ifname);
    if (!this.held.has(guest)) this.held.set(guest, { record, ifname, phase: 'prepared', mr: null, error: null, attachedAt: null, arrival: null });
    this.log.info({ guest, ifname }, 'guest prepared');
    return { ifname };
  }

  private instance(record: HostGuestRecord): MobileRouter {
    const sa = record.sas[0];
    if (!sa) throw new Error(`guest ${record.id} has no security association`);
    for (const s of record.sas) this.bySpi.set(s.spi, record.id);
    return new MobileRouter(
      {
        guest: record.id,
        mnps: record.mnps,
        sa,
        coa: this.cfg.coa,
        haAddress: this.cfg.haAddress,
        lifetimeSec: this.cfg.lifetimeSec,
        initialTimeoutMs: this.cfg.initialTimeoutMs,
        useTimestamp: this.cfg.useTimestamp,
      },
      { state: this.c.state, sender: this.c.sender, clock: this.c.clock, log: this.log },
    );
  }

  private serialise<T>(guest: string, fn: () => Promise<T>): Promise<T> {
    return this.queue.run(guest, fn);
  }
}
