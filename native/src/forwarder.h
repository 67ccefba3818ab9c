/*
 * The userspace HA forwarding engine: TUN <-> raw IPv6-in-IPv6 (protocol 41), on its own
 * thread, with a longest-prefix-match binding table, RFC 3963 §9 ingress checks, per-binding
 * counters and per-binding hold/release buffers.
 *
 *   egress   TUN read (an inner packet the kernel routed to an MNP)
 *            -> drop link-local / multicast / unspecified-source noise (counted as filtered)
 *            -> longer than `mtu`: drop, answer ICMPv6 Packet Too Big (rate-limited) to the source
 *            -> LPM on the inner destination -> binding (none: dropped, counted)
 *            -> binding held: queue it; else sendmmsg() on the proto-41 socket to the CoA
 *               (the kernel prepends the outer header, source = the bound HA address)
 *   ingress  recvmmsg() on the proto-41 socket (buffer = inner packet, name = outer source)
 *            -> LPM on the inner source -> binding; outer source must be its CoA
 *               (else dropped, counted: per binding and globally)
 *            -> an unfinished offload checksum (see finish_offload_checksum) is completed
 *            -> write() to the TUN; the kernel forwards the inner packet
 *
 * Threading. One forwarding thread polls the TUN, the raw socket and an eventfd (wake-ups
 * for release/stop), busy-draining both packet fds in batches while they have packets.
 * Shared state (the LPM table, bindings, counters, hold queues) is guarded by one mutex that
 * the thread takes once per batch, for the table lookups and counter updates only: reads,
 * sends and writes happen outside it. The JS thread takes it for each table change. A table
 * that must grow is rebuilt outside the lock and swapped in under it (lpm.h), so a change
 * never stalls forwarding for longer than a few pointer writes.
 *
 * Plain C below the "JS bindings" line only. The thread never calls N-API.
 */
#ifndef ROAM6_FORWARDER_H
#define ROAM6_FORWARDER_H

#include <netinet/in.h>
#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bindings are numbered by the caller, densely from 0 (ids are array indices). */
#define FWD_MAX_BINDING_ID ((1u << 24) - 1)

/* Global counters, in the order stats() reports them. */
enum fwd_stat {
  FWD_STAT_BINDINGS,
  FWD_STAT_PREFIXES,
  FWD_STAT_TX_PACKETS,       /* encapsulated and handed to the raw socket */
  FWD_STAT_TX_BYTES,         /* inner bytes */
  FWD_STAT_RX_PACKETS,       /* decapsulated, passed the ingress checks, written to the TUN */
  FWD_STAT_RX_BYTES,
  FWD_STAT_DROPS_NO_BINDING, /* egress: no prefix matches the inner destination */
  FWD_STAT_DROPS_INGRESS,    /* ingress: inner source in no MNP, or outer source not its CoA */
  FWD_STAT_DROPS_HOLD,       /* dropped from / refused by a hold buffer (full, expired with
                                drop policy, binding removed) */
  FWD_STAT_DROPS_FILTERED,   /* egress noise: multicast or link-local dst, link-local or :: src */
  FWD_STAT_DROPS_MALFORMED,  /* not IPv6, shorter than its header says, or truncated */
  FWD_STAT_DROPS_TOO_BIG,    /* egress packets longer than mtu */
  FWD_STAT_PTB_SENT,         /* ICMPv6 Packet Too Big messages sent */
  FWD_STAT_SEND_ERRORS,      /* sendmmsg / TUN write failures (packet lost) */
  FWD_STAT_HELD_PACKETS,     /* in hold buffers now */
  FWD_STAT_HELD_BYTES,
  FWD_STAT_HOLD_EXPIRED,     /* packets sent because their hold timed out (flush policy) */
  FWD_STAT_CSUM_COMPLETED,   /* ingress UDP/TCP checksums left unfinished by an offloading
                                sender (veth, virtio) and completed here */
  FWD_STAT_BATCHES,          /* locked batch phases (tx + rx); packets / batches = batching */
  FWD_STAT_LOCK_WAITS,       /* batch phases that found the table locked (by a JS-side change) */
  FWD_STAT_LOCK_WAIT_NS,     /* total time the thread waited for it */
  FWD_STAT_RUNNING,          /* 1 while the forwarding thread runs */
  FWD_STAT_ERRNO,            /* errno that stopped the thread, else 0 */
  FWD_STAT_ERR_SYSCALL,      /* enum fwd_syscall of that failure */
  FWD_STAT_COUNT
};

enum fwd_syscall { FWD_SYSCALL_NONE, FWD_SYSCALL_READ, FWD_SYSCALL_RECVMMSG, FWD_SYSCALL_POLL };

/* Per-binding counters, in the order counters() reports them. */
enum fwd_counter {
  FWD_CTR_TX_PACKETS,
  FWD_CTR_TX_BYTES,
  FWD_CTR_RX_PACKETS,
  FWD_CTR_RX_BYTES,
  FWD_CTR_RX_DROPPED,   /* ingress check failures with an inner source in this binding's MNPs */
  FWD_CTR_HELD,         /* packets in the hold buffer now */
  FWD_CTR_HOLD_DROPPED,
  FWD_CTR_HOLD_EXPIRED,
  FWD_CTR_HOLDING,      /* 1 while held */
  FWD_CTR_COUNT
};

struct fwd_config {
  int tun_fd;               /* -1 with raw_fd -1: table only, no thread (tests, benchmarks) */
  int raw_fd;               /* protocol-41 raw socket bound to the HA address */
  int icmp_fd;              /* ICMPv6 raw socket bound to the HA address, for PTB; -1: none */
  uint32_t mtu;             /* largest inner packet sent into the tunnel */
  uint32_t tun_mtu;         /* MTU of the TUN device (sizes the read buffers) */
  uint32_t ptb_per_second;  /* PTB token bucket: refill rate ... */
  uint32_t ptb_burst;       /* ... and depth */
  uint64_t max_held_bytes;  /* all hold buffers together */
  uint32_t batch;           /* packets per read/send batch, 1..256 */
};

struct fwd_prefix {
  struct in6_addr addr;
  uint8_t len;
};

struct forwarder;

/* Allocate, take ownership of the fds and start the thread (unless table-only). Returns 0 or
 * -errno with *failed_step naming the call; on failure nothing is owned (the fds stay open
 * for the caller). */
int fwd_create(const struct fwd_config *cfg, struct forwarder **out, const char **failed_step);

/* Stop the thread and hand the fds back to the caller (they stay open). */
void fwd_disown_fds(struct forwarder *f);

/* Stop the thread and close the fds. Idempotent; the table stays readable. */
void fwd_shutdown(struct forwarder *f);

/* fwd_shutdown, then free everything. */
void fwd_free(struct forwarder *f);

/* Install or update binding `id`: its CoA and its complete prefix list (host bits are
 * ignored, duplicates collapse). A prefix held by another binding moves to this one. Held
 * packets and counters survive. Returns 0 or -ENOMEM (nothing changed). */
int fwd_set(struct forwarder *f, uint32_t id, const struct in6_addr *coa, const struct fwd_prefix *prefixes, size_t n);

/* Remove binding `id` and every prefix it owns; held packets are dropped. 0 or -ENOENT. */
int fwd_remove(struct forwarder *f, uint32_t id);

/* Buffer the binding's egress packets instead of sending them, up to max_packets and for at
 * most max_ms from now. When the time is up the buffer is sent to the binding's CoA at that
 * moment (drop_on_expiry false) or dropped. Calling it again while held updates the bounds and
 * restarts the timer. With next_coa, tunnelled packets from that address pass the ingress check
 * too until the hold ends or the binding moves there (the guest's first packets from its new
 * host, before the BA). 0 or -ENOENT. */
int fwd_hold(struct forwarder *f, uint32_t id, uint32_t max_packets, uint32_t max_ms, bool drop_on_expiry,
             const struct in6_addr *next_coa);

/* End the hold: the forwarding thread sends every buffered packet, in order, to the binding's
 * current CoA before any later packet of that binding. Returns the number of packets buffered
 * at the call (0 if not held), or -ENOENT. */
int64_t fwd_release(struct forwarder *f, uint32_t id);

int fwd_counters(struct forwarder *f, uint32_t id, uint64_t out[FWD_CTR_COUNT]);
void fwd_stats(struct forwarder *f, uint64_t out[FWD_STAT_COUNT]);

/* Test hooks: the binding id for a destination (-1: none), and the mean time of one lookup
 * over `rounds` passes over `n` addresses, in nanoseconds. */
int64_t fwd_lookup(struct forwarder *f, const struct in6_addr *addr);
double fwd_bench_lookup(struct forwarder *f, const struct in6_addr *addrs, size_t n, uint32_t rounds, uint64_t *hits);

/* JS: class Forwarder (see src/platform/linux/native.ts). */
napi_status forwarder_register(napi_env env, napi_value exports);

#endif /* ROAM6_FORWARDER_H */
