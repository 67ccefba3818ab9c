/* The userspace HA forwarding engine. See forwarder.h. */
#include "forwarder.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "js.h"
#include "lpm.h"

#define IPV6_HDR_LEN 40
#define IPPROTO_ICMPV6_NH 58
#define ICMP6_PACKET_TOO_BIG_TYPE 2
/* RFC 4443 §2.4(c): an ICMPv6 error carries as much of the invoking packet as fits in the
 * minimum IPv6 MTU. */
#define IPV6_MIN_MTU 1280
#define PTB_MAX_INVOKING (IPV6_MIN_MTU - IPV6_HDR_LEN - 8)
#define INGRESS_SLOT 65536u
#define MAX_BATCH 256u

/* ---- plain C ---------------------------------------------------------------------- */

struct held_packet {
  struct held_packet *next;
  uint32_t len;
  uint8_t data[];
};

struct fwd_binding {
  uint32_t id;
  struct in6_addr coa;
  /* While a hold lasts, ingress from this address (the CoA the guest is moving to) is accepted
   * too: the guest's first packets at its new host arrive before the BA moves `coa`. */
  bool has_next_coa;
  struct in6_addr next_coa;
  struct fwd_prefix *prefixes; /* sorted, unique, masked; owned */
  size_t nprefixes;
  uint64_t ctr[FWD_CTR_COUNT];
  /* Hold state (under the lock). */
  bool holding;
  bool release_pending;
  bool drop_on_expiry;
  uint32_t hold_max;
  uint64_t hold_deadline_ns;
  struct held_packet *held_head, *held_tail;
  struct fwd_binding *hold_prev, *hold_next; /* list of held bindings */
};

/* A held queue taken off its binding, to be sent by the forwarding thread. */
struct flush {
  struct in6_addr coa;
  struct held_packet *head;
};

struct forwarder {
  struct fwd_config cfg;

  /* ---- shared: guarded by `lock` ---- */
  pthread_mutex_t lock;
  struct lpm lpm;
  struct fwd_binding *holding;   /* held bindings (doubly linked) */
  uint64_t stats[FWD_STAT_COUNT];

  /* ---- lock-free hints for the thread ---- */
  atomic_bool stop;
  atomic_bool pending;             /* a release was requested */
  atomic_uint_fast64_t next_deadline; /* earliest hold deadline, UINT64_MAX when none */

  /* ---- JS thread only ---- */
  struct fwd_binding **by_id;
  uint32_t by_id_cap;
  bool shut_down;

  /* ---- forwarding thread only ---- */
  pthread_t thread;
  bool thread_started;
  int wake_fd;
  uint64_t delta[FWD_STAT_COUNT];  /* counted outside the lock, folded in at the next batch */
  uint32_t egress_slot;
  uint8_t *egress_buf;             /* batch x egress_slot */
  uint8_t *ingress_buf;            /* batch x INGRESS_SLOT */
  uint32_t *len;
  uint8_t *verdict;
  struct mmsghdr *msgs;
  struct iovec *iov;
  struct sockaddr_in6 *names;
  struct flush *flushes;
  size_t flush_cap;
  double ptb_tokens;
  uint64_t ptb_last_ns;
  uint8_t ptb_buf[8 + PTB_MAX_INVOKING];
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint16_t load_be16(const uint8_t *p) {
  return (uint16_t)(p[0] << 8 | p[1]);
}

static inline bool is_link_local(const uint8_t *a) {
  return a[0] == 0xfe && (a[1] & 0xc0) == 0x80;
}

static inline bool is_unspecified(const uint8_t *a) {
  static const uint8_t zero[16];
  return memcmp(a, zero, 16) == 0;
}

/* Valid IPv6 header, and the buffer holds everything its payload length announces. */
static inline bool ipv6_ok(const uint8_t *p, size_t len) {
  return len >= IPV6_HDR_LEN && (p[0] >> 4) == 6 && IPV6_HDR_LEN + (size_t)load_be16(p + 4) <= len;
}

static uint64_t sum_words(const uint8_t *p, size_t n, uint64_t sum) {
  size_t i = 0;
  for (; i + 1 < n; i += 2) sum += (uint64_t)(p[i] << 8 | p[i + 1]);
  if (i < n) sum += (uint64_t)p[i] << 8;
  return sum;
}

static uint16_t fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)sum;
}

/*
 * A sender that offloads checksums (CHECKSUM_PARTIAL) leaves only the pseudo-header sum in the
 * UDP/TCP checksum field and counts on the NIC to finish it. Over veth or virtio the packet can
 * reach us that way (the kernel tracks it in skb metadata a raw socket does not see), and the
 * kernel trusts it when it is received locally; once written to the TUN it would fail the
 * receiver's check. So when the field holds exactly the pseudo-header sum, finish the checksum
 * over the transport bytes, as skb_checksum_help() would. Finishing is an identity on a packet
 * whose checksum is already right, so the test cannot break a good packet. Only UDP and TCP
 * directly after the IPv6 header (the offload cases); costs a 40-byte sum per such packet.
 */
static bool finish_offload_checksum(uint8_t *p, size_t len) {
  const uint8_t nh = p[6];
  const size_t plen = load_be16(p + 4);
  const size_t off = nh == 17 ? 6 : 16;
  uint8_t *l4 = p + IPV6_HDR_LEN;
  uint16_t check;

  if ((nh != 17 && nh != 6) || plen < off + 2 || IPV6_HDR_LEN + plen > len) return false;
  if (load_be16(l4 + off) != fold(sum_words(p + 8, 32, plen + nh))) return false;
  check = (uint16_t)~fold(sum_words(l4, plen, 0));
  if (nh == 17 && check == 0) check = 0xffff; /* UDP: 0 means "no checksum" */
  l4[off] = (uint8_t)(check >> 8);
  l4[off + 1] = (uint8_t)check;
  return true;
}

static void wake(struct forwarder *f) {
  uint64_t one = 1;
  if (f->wake_fd >= 0 && write(f->wake_fd, &one, sizeof one) < 0) {
    /* EAGAIN: the counter is already non-zero, so the thread wakes anyway. */
  }
}

static void free_chain(struct held_packet *p) {
  while (p != NULL) {
    struct held_packet *next = p->next;
    free(p);
    p = next;
  }
}

/* ---- hold lists (lock held) ---- */

static void hold_link(struct forwarder *f, struct fwd_binding *b) {
  b->hold_prev = NULL;
  b->hold_next = f->holding;
  if (f->holding != NULL) f->holding->hold_prev = b;
  f->holding = b;
}

static void hold_unlink(struct forwarder *f, struct fwd_binding *b) {
  if (b->hold_prev != NULL) b->hold_prev->hold_next = b->hold_next;
  else f->holding = b->hold_next;
  if (b->hold_next != NULL) b->hold_next->hold_prev = b->hold_prev;
  b->hold_prev = b->hold_next = NULL;
}

/* Take the binding's queue off it (returning the chain) and end the hold. */
static struct held_packet *hold_end(struct forwarder *f, struct fwd_binding *b, uint64_t *bytes) {
  struct held_packet *chain = b->held_head;
  uint64_t n = 0;
  for (struct held_packet *p = chain; p != NULL; p = p->next) n += p->len;
  f->stats[FWD_STAT_HELD_PACKETS] -= b->ctr[FWD_CTR_HELD];
  f->stats[FWD_STAT_HELD_BYTES] -= n;
  b->ctr[FWD_CTR_HELD] = 0;
  b->ctr[FWD_CTR_HOLDING] = 0;
  b->held_head = b->held_tail = NULL;
  b->holding = false;
  b->has_next_coa = false;
  b->release_pending = false;
  hold_unlink(f, b);
  *bytes = n;
  return chain;
}

static void hold_enqueue(struct forwarder *f, struct fwd_binding *b, const uint8_t *data, uint32_t len) {
  struct held_packet *p = NULL;
  if (b->ctr[FWD_CTR_HELD] < b->hold_max &&
      f->stats[FWD_STAT_HELD_BYTES] + len <= f->cfg.max_held_bytes)
    p = malloc(sizeof *p + len);
  if (p == NULL) {
    b->ctr[FWD_CTR_HOLD_DROPPED]++;
    f->stats[FWD_STAT_DROPS_HOLD]++;
    return;
  }
  p->next = NULL;
  p->len = len;
  memcpy(p->data, data, len);
  if (b->held_tail != NULL) b->held_tail->next = p;
  else b->held_head = p;
  b->held_tail = p;
  b->ctr[FWD_CTR_HELD]++;
  f->stats[FWD_STAT_HELD_PACKETS]++;
  f->stats[FWD_STAT_HELD_BYTES] += len;
}

static uint64_t earliest_deadline(const struct forwarder *f) {
  uint64_t d = UINT64_MAX;
  for (const struct fwd_binding *b = f->holding; b != NULL; b = b->hold_next)
    if (b->hold_deadline_ns < d) d = b->hold_deadline_ns;
  return d;
}

/* ---- forwarding thread ---- */

static void fold_deltas(struct forwarder *f) {
  for (int i = 0; i < FWD_STAT_COUNT; i++) {
    f->stats[i] += f->delta[i];
    f->delta[i] = 0;
  }
}

static bool has_deltas(const struct forwarder *f) {
  for (int i = 0; i < FWD_STAT_COUNT; i++)
    if (f->delta[i] != 0) return true;
  return false;
}

/* The thread's way into the lock: free almost always; when a table change holds it, the wait
 * is counted, so that the cost of updates to forwarding can be measured. */
static void lock_for_batch(struct forwarder *f) {
  uint64_t t0;
  if (pthread_mutex_trylock(&f->lock) == 0) return;
  t0 = now_ns();
  pthread_mutex_lock(&f->lock);
  f->stats[FWD_STAT_LOCK_WAITS]++;
  f->stats[FWD_STAT_LOCK_WAIT_NS] += now_ns() - t0;
}

static void record_error(struct forwarder *f, int err, enum fwd_syscall sc) {
  pthread_mutex_lock(&f->lock);
  f->stats[FWD_STAT_ERRNO] = (uint64_t)err;
  f->stats[FWD_STAT_ERR_SYSCALL] = sc;
  pthread_mutex_unlock(&f->lock);
}

/* sendmmsg() the first n prepared messages; a message that fails is counted and skipped. */
static void send_prepared(struct forwarder *f, unsigned n) {
  unsigned done = 0;
  while (done < n) {
    int r = sendmmsg(f->cfg.raw_fd, f->msgs + done, n - done, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      f->delta[FWD_STAT_SEND_ERRORS]++;
      done++;
    } else {
      done += (unsigned)r;
    }
  }
}

static void prepare_msg(struct forwarder *f, unsigned k, const struct in6_addr *dst, void *data, size_t len) {
  f->names[k].sin6_family = AF_INET6;
  f->names[k].sin6_port = 0;
  f->names[k].sin6_flowinfo = 0;
  f->names[k].sin6_scope_id = 0;
  f->names[k].sin6_addr = *dst;
  f->iov[k].iov_base = data;
  f->iov[k].iov_len = len;
  memset(&f->msgs[k].msg_hdr, 0, sizeof f->msgs[k].msg_hdr);
  f->msgs[k].msg_hdr.msg_name = &f->names[k];
  f->msgs[k].msg_hdr.msg_namelen = sizeof f->names[k];
  f->msgs[k].msg_hdr.msg_iov = &f->iov[k];
  f->msgs[k].msg_hdr.msg_iovlen = 1;
}

/* Send one held chain, in order, to `coa`, in batches; frees it. */
static void send_chain(struct forwarder *f, const struct in6_addr *coa, struct held_packet *p) {
  while (p != NULL) {
    struct held_packet *first = p;
    unsigned k = 0;
    for (; p != NULL && k < f->cfg.batch; p = p->next) prepare_msg(f, k++, coa, p->data, p->len);
    send_prepared(f, k);
    while (first != p) {
      struct held_packet *next = first->next;
      free(first);
      first = next;
    }
  }
}

/* Releases and expiries: take the due queues off their bindings under the lock, then send
 * them (outside it) before this thread touches any newer packet, which keeps the order. */
static void service_holds(struct forwarder *f, uint64_t now) {
  size_t nflush = 0;

  atomic_store_explicit(&f->pending, false, memory_order_relaxed);
  lock_for_batch(f);
  fold_deltas(f);
  for (struct fwd_binding *b = f->holding, *next; b != NULL; b = next) {
    const bool released = b->release_pending;
    const bool expired = !released && now >= b->hold_deadline_ns;
    const uint64_t npk = b->ctr[FWD_CTR_HELD];
    struct held_packet *chain;
    uint64_t bytes;

    next = b->hold_next;
    if (!released && !expired) continue;
    chain = hold_end(f, b, &bytes);
    if (chain == NULL) continue;
    if (expired && b->drop_on_expiry) {
      b->ctr[FWD_CTR_HOLD_DROPPED] += npk;
      f->stats[FWD_STAT_DROPS_HOLD] += npk;
      free_chain(chain);
      continue;
    }
    if (nflush == f->flush_cap) {
      size_t cap = f->flush_cap == 0 ? 16 : f->flush_cap * 2;
      struct flush *grown = realloc(f->flushes, cap * sizeof *grown);
      if (grown == NULL) { /* out of memory: these packets are lost, and counted */
        f->stats[FWD_STAT_SEND_ERRORS] += npk;
        free_chain(chain);
        continue;
      }
      f->flushes = grown;
      f->flush_cap = cap;
    }
    b->ctr[FWD_CTR_TX_PACKETS] += npk;
    b->ctr[FWD_CTR_TX_BYTES] += bytes;
    f->stats[FWD_STAT_TX_PACKETS] += npk;
    f->stats[FWD_STAT_TX_BYTES] += bytes;
    if (expired) {
      b->ctr[FWD_CTR_HOLD_EXPIRED] += npk;
      f->stats[FWD_STAT_HOLD_EXPIRED] += npk;
    }
    f->flushes[nflush].coa = b->coa;
    f->flushes[nflush].head = chain;
    nflush++;
  }
  atomic_store_explicit(&f->next_deadline, earliest_deadline(f), memory_order_relaxed);
  pthread_mutex_unlock(&f->lock);

  for (size_t i = 0; i < nflush; i++) send_chain(f, &f->flushes[i].coa, f->flushes[i].head);
}

/* ICMPv6 Packet Too Big (RFC 4443 §3.2) for an oversize egress packet, to its source, from
 * the address the ICMPv6 socket is bound to (the HA). Token-bucket rate limited. The kernel
 * builds the IPv6 header and fills the ICMPv6 checksum. This is the one message the addon
 * builds itself: it has to happen on the packet path. */
static void send_ptb(struct forwarder *f, const uint8_t *p, size_t len) {
  const size_t copy = len < PTB_MAX_INVOKING ? len : PTB_MAX_INVOKING;
  const uint64_t now = now_ns();
  struct sockaddr_in6 to;

  if (f->cfg.icmp_fd < 0 || p[8] == 0xff) return;
  /* Never answer an ICMPv6 error message with another (RFC 4443 §2.4(e)). */
  if (p[6] == IPPROTO_ICMPV6_NH && len > IPV6_HDR_LEN && p[IPV6_HDR_LEN] < 128) return;

  f->ptb_tokens += (double)(now - f->ptb_last_ns) * 1e-9 * f->cfg.ptb_per_second;
  f->ptb_last_ns = now;
  if (f->ptb_tokens > f->cfg.ptb_burst) f->ptb_tokens = f->cfg.ptb_burst;
  if (f->ptb_tokens < 1.0) return;
  f->ptb_tokens -= 1.0;

  f->ptb_buf[0] = ICMP6_PACKET_TOO_BIG_TYPE;
  f->ptb_buf[1] = 0;
  f->ptb_buf[2] = f->ptb_buf[3] = 0; /* checksum: filled by the kernel */
  f->ptb_buf[4] = (uint8_t)(f->cfg.mtu >> 24);
  f->ptb_buf[5] = (uint8_t)(f->cfg.mtu >> 16);
  f->ptb_buf[6] = (uint8_t)(f->cfg.mtu >> 8);
  f->ptb_buf[7] = (uint8_t)f->cfg.mtu;
  memcpy(f->ptb_buf + 8, p, copy);

  memset(&to, 0, sizeof to);
  to.sin6_family = AF_INET6;
  memcpy(&to.sin6_addr, p + 8, sizeof to.sin6_addr);
  if (sendto(f->cfg.icmp_fd, f->ptb_buf, 8 + copy, 0, (const struct sockaddr *)&to, sizeof to) >= 0)
    f->delta[FWD_STAT_PTB_SENT]++;
  else
    f->delta[FWD_STAT_SEND_ERRORS]++;
}

/* Decide what the lock-free checks can: true = look it up. */
static bool egress_candidate(struct forwarder *f, const uint8_t *p, size_t len) {
  const uint8_t *src = p + 8, *dst = p + 24;
  if (len < IPV6_HDR_LEN || (p[0] >> 4) != 6) {
    f->delta[FWD_STAT_DROPS_MALFORMED]++;
    return false;
  }
  /* What the kernel itself sends out of the TUN: MLD, RS, ND (multicast or link-local). */
  if (dst[0] == 0xff || is_link_local(dst) || is_link_local(src) || is_unspecified(src)) {
    f->delta[FWD_STAT_DROPS_FILTERED]++;
    return false;
  }
  if (len > f->cfg.mtu) {
    f->delta[FWD_STAT_DROPS_TOO_BIG]++;
    send_ptb(f, p, len);
    return false;
  }
  if (!ipv6_ok(p, len)) {
    f->delta[FWD_STAT_DROPS_MALFORMED]++;
    return false;
  }
  return true;
}

/* TUN -> proto 41. Returns packets read (0: none queued) or -1 when the thread must stop. */
static int egress_batch(struct forwarder *f) {
  unsigned n = 0, m = 0;

  while (n < f->cfg.batch) {
    uint8_t *buf = f->egress_buf + (size_t)n * f->egress_slot;
    ssize_t r = read(f->cfg.tun_fd, buf, f->egress_slot);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      record_error(f, errno, FWD_SYSCALL_READ);
      return -1;
    }
    f->len[n] = (uint32_t)r;
    f->verdict[n] = egress_candidate(f, buf, (size_t)r);
    n++;
  }
  if (n == 0) return 0;

  lock_for_batch(f);
  fold_deltas(f);
  f->stats[FWD_STAT_BATCHES]++;
  for (unsigned i = 0; i < n; i++) {
    uint8_t *buf = f->egress_buf + (size_t)i * f->egress_slot;
    const uint32_t len = f->len[i];
    struct fwd_binding *b;
    struct in6_addr dst;

    if (!f->verdict[i]) continue;
    memcpy(&dst, buf + 24, sizeof dst);
    b = lpm_lookup(&f->lpm, &dst);
    if (b == NULL) {
      f->stats[FWD_STAT_DROPS_NO_BINDING]++;
    } else if (b->holding) {
      hold_enqueue(f, b, buf, len);
    } else {
      b->ctr[FWD_CTR_TX_PACKETS]++;
      b->ctr[FWD_CTR_TX_BYTES] += len;
      f->stats[FWD_STAT_TX_PACKETS]++;
      f->stats[FWD_STAT_TX_BYTES] += len;
      prepare_msg(f, m++, &b->coa, buf, len);
    }
  }
  pthread_mutex_unlock(&f->lock);

  if (m > 0) send_prepared(f, m);
  return (int)n;
}

/* proto 41 -> TUN, with the RFC 3963 §9 checks. Returns packets received or -1 (stop). */
static int ingress_batch(struct forwarder *f) {
  unsigned n;
  int r;

  for (unsigned i = 0; i < f->cfg.batch; i++) {
    f->iov[i].iov_base = f->ingress_buf + (size_t)i * INGRESS_SLOT;
    f->iov[i].iov_len = INGRESS_SLOT;
    memset(&f->msgs[i].msg_hdr, 0, sizeof f->msgs[i].msg_hdr);
    f->msgs[i].msg_hdr.msg_name = &f->names[i];
    f->msgs[i].msg_hdr.msg_namelen = sizeof f->names[i];
    f->msgs[i].msg_hdr.msg_iov = &f->iov[i];
    f->msgs[i].msg_hdr.msg_iovlen = 1;
  }
  do r = recvmmsg(f->cfg.raw_fd, f->msgs, f->cfg.batch, MSG_DONTWAIT, NULL);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN) return 0;
    record_error(f, errno, FWD_SYSCALL_RECVMMSG);
    return -1;
  }
  n = (unsigned)r;
  if (n == 0) return 0;

  for (unsigned i = 0; i < n; i++) {
    const bool ok = !(f->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) &&
                    ipv6_ok(f->iov[i].iov_base, f->msgs[i].msg_len);
    if (!ok) f->delta[FWD_STAT_DROPS_MALFORMED]++;
    f->verdict[i] = ok;
  }

  lock_for_batch(f);
  fold_deltas(f);
  f->stats[FWD_STAT_BATCHES]++;
  for (unsigned i = 0; i < n; i++) {
    const uint8_t *buf = f->iov[i].iov_base;
    const uint32_t len = f->msgs[i].msg_len;
    struct fwd_binding *b;
    struct in6_addr src;

    if (!f->verdict[i]) continue;
    memcpy(&src, buf + 8, sizeof src);
    b = lpm_lookup(&f->lpm, &src);
    if (b == NULL || (memcmp(&b->coa, &f->names[i].sin6_addr, sizeof b->coa) != 0 &&
                      !(b->has_next_coa && memcmp(&b->next_coa, &f->names[i].sin6_addr, sizeof b->next_coa) == 0))) {
      /* Inner source in no MNP, or tunnelled from somewhere other than its CoA. */
      if (b != NULL) b->ctr[FWD_CTR_RX_DROPPED]++;
      f->stats[FWD_STAT_DROPS_INGRESS]++;
      f->verdict[i] = false;
      continue;
    }
    b->ctr[FWD_CTR_RX_PACKETS]++;
    b->ctr[FWD_CTR_RX_BYTES] += len;
    f->stats[FWD_STAT_RX_PACKETS]++;
    f->stats[FWD_STAT_RX_BYTES] += len;
  }
  pthread_mutex_unlock(&f->lock);

  for (unsigned i = 0; i < n; i++) {
    ssize_t w;
    if (!f->verdict[i]) continue;
    if (finish_offload_checksum(f->iov[i].iov_base, f->msgs[i].msg_len)) f->delta[FWD_STAT_CSUM_COMPLETED]++;
    do w = write(f->cfg.tun_fd, f->iov[i].iov_base, f->msgs[i].msg_len);
    while (w < 0 && errno == EINTR);
    if (w < 0) f->delta[FWD_STAT_SEND_ERRORS]++;
  }
  return (int)n;
}

static int poll_timeout(const struct forwarder *f) {
  const uint64_t deadline = atomic_load_explicit(&f->next_deadline, memory_order_relaxed);
  uint64_t now, ms;
  if (deadline == UINT64_MAX) return -1;
  now = now_ns();
  if (now >= deadline) return 0;
  ms = (deadline - now + 999999) / 1000000;
  return ms > INT_MAX ? INT_MAX : (int)ms;
}

static void *thread_main(void *arg) {
  struct forwarder *f = arg;

  struct pollfd pfd[3] = {
    { .fd = f->cfg.tun_fd, .events = POLLIN },
    { .fd = f->cfg.raw_fd, .events = POLLIN },
    { .fd = f->wake_fd, .events = POLLIN },
  };

  /* Which fds to read: both while either is busy (a full batch), so neither direction starves
   * the other; after a poll, only those it reported, which saves a syscall that would only
   * return EAGAIN when packets trickle in one at a time. */
  bool try_tun = true, try_raw = true;

  while (!atomic_load_explicit(&f->stop, memory_order_acquire)) {
    const uint64_t deadline = atomic_load_explicit(&f->next_deadline, memory_order_relaxed);
    int out = 0, in = 0;

    if (atomic_load_explicit(&f->pending, memory_order_relaxed) ||
        (deadline != UINT64_MAX && now_ns() >= deadline))
      service_holds(f, now_ns());
    if (try_tun && (out = egress_batch(f)) < 0) break;
    if (try_raw && (in = ingress_batch(f)) < 0) break;
    if ((unsigned)out == f->cfg.batch || (unsigned)in == f->cfg.batch) {
      try_tun = try_raw = true;
      continue;
    }

    /* Idle: publish what was counted outside the lock, then sleep until a packet, a wake-up
     * or the next hold deadline. */
    if (has_deltas(f)) {
      pthread_mutex_lock(&f->lock);
      fold_deltas(f);
      pthread_mutex_unlock(&f->lock);
    }
    if (poll(pfd, 3, poll_timeout(f)) < 0) {
      if (errno == EINTR) continue;
      record_error(f, errno, FWD_SYSCALL_POLL);
      break;
    }
    /* Errors and hang-ups count as readable: the read reports them. */
    try_tun = pfd[0].revents != 0;
    try_raw = pfd[1].revents != 0;
    if (pfd[2].revents & POLLIN) {
      uint64_t v;
      if (read(f->wake_fd, &v, sizeof v) < 0) { /* EAGAIN: someone else drained it */ }
    }
  }

  pthread_mutex_lock(&f->lock);
  fold_deltas(f);
  f->stats[FWD_STAT_RUNNING] = 0;
  pthread_mutex_unlock(&f->lock);
  return NULL;
}

/* ---- lifecycle ---- */

static void free_buffers(struct forwarder *f) {
  free(f->egress_buf);
  free(f->ingress_buf);
  free(f->len);
  free(f->verdict);
  free(f->msgs);
  free(f->iov);
  free(f->names);
  free(f->flushes);
  f->egress_buf = f->ingress_buf = f->verdict = NULL;
  f->len = NULL;
  f->msgs = NULL;
  f->iov = NULL;
  f->names = NULL;
  f->flushes = NULL;
}

static int start_thread(struct forwarder *f, const char **failed_step) {
  sigset_t all, old;
  int rc;
  const int off = 0;
  const uint32_t batch = f->cfg.batch;
  const uint32_t biggest = f->cfg.tun_mtu > f->cfg.mtu ? f->cfg.tun_mtu : f->cfg.mtu;

  /* Room for the largest packet the TUN can hand us, plus a cache line so that the slots do
   * not all map to the same cache sets. */
  f->egress_slot = ((biggest + 63u) & ~63u) + 64u;
  f->egress_buf = malloc((size_t)batch * f->egress_slot);
  f->ingress_buf = malloc((size_t)batch * INGRESS_SLOT);
  f->len = calloc(batch, sizeof *f->len);
  f->verdict = calloc(batch, sizeof *f->verdict);
  f->msgs = calloc(batch, sizeof *f->msgs);
  f->iov = calloc(batch, sizeof *f->iov);
  f->names = calloc(batch, sizeof *f->names);
  if (f->egress_buf == NULL || f->ingress_buf == NULL || f->len == NULL || f->verdict == NULL ||
      f->msgs == NULL || f->iov == NULL || f->names == NULL) {
    free_buffers(f);
    *failed_step = "malloc";
    return -ENOMEM;
  }
  f->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (f->wake_fd < 0) {
    *failed_step = "eventfd";
    rc = -errno;
    free_buffers(f);
    return rc;
  }
  /* The thread reads only the payload and the source address; skip the ancillary data
   * rawOpen() asked for. */
  (void)setsockopt(f->cfg.raw_fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &off, sizeof off);
  (void)setsockopt(f->cfg.raw_fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &off, sizeof off);

  f->ptb_tokens = f->cfg.ptb_burst;
  f->ptb_last_ns = now_ns();
  f->stats[FWD_STAT_RUNNING] = 1;

  /* The thread must never take a signal meant for Node: it starts with all of them blocked. */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  rc = pthread_create(&f->thread, NULL, thread_main, f);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    *failed_step = "pthread_create";
    f->stats[FWD_STAT_RUNNING] = 0;
    close(f->wake_fd);
    f->wake_fd = -1;
    free_buffers(f);
    return -rc;
  }
  pthread_setname_np(f->thread, "roam6-fwd");
  f->thread_started = true;
  return 0;
}

int fwd_create(const struct fwd_config *cfg, struct forwarder **out, const char **failed_step) {
  struct forwarder *f = calloc(1, sizeof *f);
  int rc;

  *failed_step = "calloc";
  if (f == NULL) return -ENOMEM;
  f->cfg = *cfg;
  f->wake_fd = -1;
  pthread_mutex_init(&f->lock, NULL);
  lpm_init(&f->lpm);
  atomic_init(&f->stop, false);
  atomic_init(&f->pending, false);
  atomic_init(&f->next_deadline, UINT64_MAX);

  if (cfg->tun_fd >= 0 && cfg->raw_fd >= 0) {
    rc = start_thread(f, failed_step);
    if (rc < 0) {
      pthread_mutex_destroy(&f->lock);
      free(f);
      return rc;
    }
  }
  *out = f;
  return 0;
}

static void stop_thread(struct forwarder *f) {
  if (!f->thread_started) return;
  atomic_store_explicit(&f->stop, true, memory_order_release);
  wake(f);
  pthread_join(f->thread, NULL);
  f->thread_started = false;
}

void fwd_disown_fds(struct forwarder *f) {
  stop_thread(f);
  f->cfg.tun_fd = f->cfg.raw_fd = f->cfg.icmp_fd = -1;
}

void fwd_shutdown(struct forwarder *f) {
  int *fds[] = { &f->cfg.tun_fd, &f->cfg.raw_fd, &f->cfg.icmp_fd, &f->wake_fd };
  if (f->shut_down) return;
  f->shut_down = true;
  stop_thread(f);
  for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
    if (*fds[i] >= 0) close(*fds[i]);
    *fds[i] = -1;
  }
}

void fwd_free(struct forwarder *f) {
  fwd_shutdown(f);
  for (uint32_t id = 0; id < f->by_id_cap; id++) {
    struct fwd_binding *b = f->by_id[id];
    if (b == NULL) continue;
    free_chain(b->held_head);
    free(b->prefixes);
    free(b);
  }
  free(f->by_id);
  lpm_destroy(&f->lpm);
  free_buffers(f);
  pthread_mutex_destroy(&f->lock);
  free(f);
}

/* ---- table changes (JS thread) ---- */

static int prefix_cmp(const void *a, const void *b) {
  const struct fwd_prefix *x = a, *y = b;
  if (x->len != y->len) return x->len < y->len ? -1 : 1;
  return memcmp(&x->addr, &y->addr, sizeof x->addr);
}

static struct fwd_binding *binding_of(const struct forwarder *f, uint32_t id) {
  return id < f->by_id_cap ? f->by_id[id] : NULL;
}

static int ensure_id_capacity(struct forwarder *f, uint32_t id) {
  uint32_t cap = f->by_id_cap == 0 ? 64 : f->by_id_cap;
  struct fwd_binding **grown;
  if (id < f->by_id_cap) return 0;
  while (cap <= id) cap *= 2;
  grown = realloc(f->by_id, cap * sizeof *grown);
  if (grown == NULL) return -ENOMEM;
  memset(grown + f->by_id_cap, 0, (cap - f->by_id_cap) * sizeof *grown);
  f->by_id = grown;
  f->by_id_cap = cap;
  return 0;
}

int fwd_set(struct forwarder *f, uint32_t id, const struct in6_addr *coa, const struct fwd_prefix *prefixes, size_t n) {
  struct lpm_growth growth[129];
  struct lpm_slot *retired[129];
  uint32_t per_len[129] = { 0 };
  struct fwd_prefix *list = NULL, *old_list;
  struct fwd_binding *b, *fresh = NULL;
  size_t m = 0;
  int ng = 0, rc;

  if (id > FWD_MAX_BINDING_ID) return -EINVAL;
  if ((rc = ensure_id_capacity(f, id)) < 0) return rc;
  if (n > 0) {
    list = malloc(n * sizeof *list);
    if (list == NULL) return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
      list[i] = prefixes[i];
      lpm_mask(&list[i].addr, list[i].len);
    }
    qsort(list, n, sizeof *list, prefix_cmp);
    for (size_t i = 0; i < n; i++)
      if (m == 0 || prefix_cmp(&list[m - 1], &list[i]) != 0) list[m++] = list[i];
  }
  b = binding_of(f, id);
  if (b == NULL) {
    fresh = calloc(1, sizeof *fresh);
    if (fresh == NULL) {
      free(list);
      return -ENOMEM;
    }
    fresh->id = id;
    b = fresh;
  }

  /* Reserve room outside the lock (the forwarding thread keeps reading the old tables). */
  for (size_t i = 0; i < m; i++) per_len[list[i].len]++;
  for (int len = 0; len <= 128; len++) {
    if (per_len[len] == 0) continue;
    if ((rc = lpm_prepare(&f->lpm, len, per_len[len], &growth[ng])) < 0) {
      while (ng > 0) free(growth[--ng].table.slots);
      free(list);
      free(fresh);
      return rc;
    }
    if (growth[ng].table.slots != NULL) ng++;
  }

  pthread_mutex_lock(&f->lock);
  for (int k = 0; k < ng; k++) retired[k] = lpm_commit(&f->lpm, &growth[k]);
  b->coa = *coa;
  if (b->has_next_coa && memcmp(&b->next_coa, coa, sizeof *coa) == 0) b->has_next_coa = false;
  /* A prefix taken from another binding stays in that binding's list, but removals check
   * the owner, so the other binding can no longer remove it. */
  for (size_t i = 0; i < m; i++) lpm_put(&f->lpm, &list[i].addr, list[i].len, b);
  for (size_t i = 0; i < b->nprefixes; i++)
    if (m == 0 || bsearch(&b->prefixes[i], list, m, sizeof *list, prefix_cmp) == NULL)
      lpm_remove(&f->lpm, &b->prefixes[i].addr, b->prefixes[i].len, b);
  old_list = b->prefixes;
  b->prefixes = list;
  b->nprefixes = m;
  if (fresh != NULL) f->stats[FWD_STAT_BINDINGS]++;
  f->stats[FWD_STAT_PREFIXES] = f->lpm.total;
  pthread_mutex_unlock(&f->lock);

  if (fresh != NULL) f->by_id[id] = fresh;
  free(old_list);
  for (int k = 0; k < ng; k++) free(retired[k]);
  return 0;
}

int fwd_remove(struct forwarder *f, uint32_t id) {
  struct fwd_binding *b = binding_of(f, id);
  struct held_packet *chain = NULL;

  if (b == NULL) return -ENOENT;
  pthread_mutex_lock(&f->lock);
  for (size_t i = 0; i < b->nprefixes; i++) lpm_remove(&f->lpm, &b->prefixes[i].addr, b->prefixes[i].len, b);
  if (b->holding) {
    const uint64_t npk = b->ctr[FWD_CTR_HELD];
    uint64_t bytes;
    chain = hold_end(f, b, &bytes);
    f->stats[FWD_STAT_DROPS_HOLD] += npk;
    atomic_store_explicit(&f->next_deadline, earliest_deadline(f), memory_order_relaxed);
  }
  f->stats[FWD_STAT_BINDINGS]--;
  f->stats[FWD_STAT_PREFIXES] = f->lpm.total;
  pthread_mutex_unlock(&f->lock);

  f->by_id[id] = NULL;
  free_chain(chain);
  free(b->prefixes);
  free(b);
  return 0;
}

int fwd_hold(struct forwarder *f, uint32_t id, uint32_t max_packets, uint32_t max_ms, bool drop_on_expiry,
             const struct in6_addr *next_coa) {
  struct fwd_binding *b = binding_of(f, id);
  uint64_t deadline;

  if (b == NULL) return -ENOENT;
  deadline = now_ns() + (uint64_t)max_ms * 1000000u;
  pthread_mutex_lock(&f->lock);
  if (!b->holding) {
    b->holding = true;
    b->ctr[FWD_CTR_HOLDING] = 1;
    hold_link(f, b);
  }
  b->release_pending = false; /* the latest call wins */
  b->hold_max = max_packets;
  b->drop_on_expiry = drop_on_expiry;
  b->hold_deadline_ns = deadline;
  b->has_next_coa = next_coa != NULL;
  if (next_coa != NULL) b->next_coa = *next_coa;
  atomic_store_explicit(&f->next_deadline, earliest_deadline(f), memory_order_relaxed);
  pthread_mutex_unlock(&f->lock);
  wake(f); /* so that a sleeping thread picks up the new deadline */
  return 0;
}

int64_t fwd_release(struct forwarder *f, uint32_t id) {
  struct fwd_binding *b = binding_of(f, id);
  struct held_packet *chain = NULL;
  int64_t held;

  if (b == NULL) return -ENOENT;
  pthread_mutex_lock(&f->lock);
  if (!b->holding) {
    pthread_mutex_unlock(&f->lock);
    return 0;
  }
  held = (int64_t)b->ctr[FWD_CTR_HELD];
  if (f->thread_started) {
    b->release_pending = true;
  } else {
    /* No thread (table only, or shut down): nothing can send them. */
    uint64_t bytes;
    chain = hold_end(f, b, &bytes);
    b->ctr[FWD_CTR_HOLD_DROPPED] += (uint64_t)held;
    f->stats[FWD_STAT_DROPS_HOLD] += (uint64_t)held;
  }
  pthread_mutex_unlock(&f->lock);
  if (f->thread_started) {
    atomic_store_explicit(&f->pending, true, memory_order_relaxed);
    wake(f);
  }
  free_chain(chain);
  return held;
}

int fwd_counters(struct forwarder *f, uint32_t id, uint64_t out[FWD_CTR_COUNT]) {
  struct fwd_binding *b = binding_of(f, id);
  if (b == NULL) return -ENOENT;
  pthread_mutex_lock(&f->lock);
  memcpy(out, b->ctr, sizeof b->ctr);
  pthread_mutex_unlock(&f->lock);
  return 0;
}

void fwd_stats(struct forwarder *f, uint64_t out[FWD_STAT_COUNT]) {
  pthread_mutex_lock(&f->lock);
  memcpy(out, f->stats, sizeof f->stats);
  pthread_mutex_unlock(&f->lock);
}

int64_t fwd_lookup(struct forwarder *f, const struct in6_addr *addr) {
  const struct fwd_binding *b;
  int64_t id;
  pthread_mutex_lock(&f->lock);
  b = lpm_lookup(&f->lpm, addr);
  id = b == NULL ? -1 : (int64_t)b->id;
  pthread_mutex_unlock(&f->lock);
  return id;
}

double fwd_bench_lookup(struct forwarder *f, const struct in6_addr *addrs, size_t n, uint32_t rounds, uint64_t *hits) {
  uint64_t t0, t1, found = 0;
  if (n == 0 || rounds == 0) return 0;
  pthread_mutex_lock(&f->lock);
  t0 = now_ns();
  for (uint32_t r = 0; r < rounds; r++)
    for (size_t i = 0; i < n; i++) found += lpm_lookup(&f->lpm, &addrs[i]) != NULL;
  t1 = now_ns();
  pthread_mutex_unlock(&f->lock);
  *hits = found;
  return (double)(t1 - t0) / ((double)n * rounds);
}

/* ---- JS bindings ------------------------------------------------------------------ */

/* The JS object owns one forwarder. The environment cleanup hook stops the thread if the
 * environment goes away first (worker exit); the finalizer frees. */
struct fwd_handle {
  struct forwarder *f;
  bool hook_added;
};

static void on_env_cleanup(void *arg) {
  struct fwd_handle *h = arg;
  h->hook_added = false; /* Node drops a hook once it has run */
  fwd_shutdown(h->f);
}

static void fwd_finalize(napi_env env, void *data, void *hint) {
  struct fwd_handle *h = data;
  (void)hint;
  if (h->hook_added) napi_remove_env_cleanup_hook(env, on_env_cleanup, h);
  fwd_free(h->f);
  free(h);
}

static struct fwd_handle *unwrap_this(napi_env env, napi_callback_info info, size_t max, napi_value *argv, size_t min) {
  napi_value self;
  void *data = NULL;
  if (!js_get_args(env, info, min, max, argv, &self)) return NULL;
  if (napi_unwrap(env, self, &data) != napi_ok || data == NULL) {
    errors_throw_type(env, "Illegal invocation: not a Forwarder");
    return NULL;
  }
  return data;
}

static bool arg_id(napi_env env, napi_value v, uint32_t *id) {
  int64_t n;
  if (!js_arg_int(env, v, "id", 0, FWD_MAX_BINDING_ID, &n)) return false;
  *id = (uint32_t)n;
  return true;
}

static bool arg_bool(napi_env env, napi_value v, const char *name, bool *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) {
    errors_throw_napi(env, "napi_typeof");
    return false;
  }
  if (t != napi_boolean) {
    char msg[96];
    snprintf(msg, sizeof msg, "The \"%s\" argument must be of type boolean", name);
    errors_throw_type(env, msg);
    return false;
  }
  return napi_get_value_bool(env, v, out) == napi_ok || (errors_throw_napi(env, "napi_get_value_bool"), false);
}

/* A Float64Array with room for at least `need` elements. */
static bool arg_f64(napi_env env, napi_value v, const char *name, size_t need, double **out) {
  bool is_typed = false;
  napi_typedarray_type type;
  size_t length;
  void *data;
  char msg[112];
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok) {
    errors_throw_napi(env, "napi_is_typedarray");
    return false;
  }
  if (is_typed && napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL) != napi_ok) {
    errors_throw_napi(env, "napi_get_typedarray_info");
    return false;
  }
  if (!is_typed || type != napi_float64_array || length < need) {
    snprintf(msg, sizeof msg, "The \"%s\" argument must be a Float64Array of at least %zu elements", name, need);
    errors_throw_type(env, msg);
    return false;
  }
  *out = data;
  return true;
}

/* An optional integer option; `*out` keeps its default when absent. */
static bool opt_int(napi_env env, napi_value opts, const char *key, int64_t lo, int64_t hi, int64_t *out) {
  char name[48];
  napi_value v;
  bool present;
  if (!js_get_property(env, opts, key, &v, &present)) return false;
  if (!present) return true;
  snprintf(name, sizeof name, "options.%s", key);
  return js_arg_int(env, v, name, lo, hi, out);
}

/* new Forwarder(options) */
static napi_value api_fwd_new(napi_env env, napi_callback_info info) {
  napi_value argv[1], self, new_target;
  struct fwd_config cfg;
  struct fwd_handle *h;
  int64_t tun = -1, raw = -1, icmp = -1, mtu = 1460, tun_mtu = 1500, rate = 100, burst = 10;
  int64_t held = 64 << 20, batch = 64;
  const char *step = NULL;
  int rc;

  NAPI_CALL(env, napi_get_new_target(env, info, &new_target));
  if (new_target == NULL) return errors_throw_type(env, "Class constructor Forwarder cannot be invoked without 'new'");
  if (!js_get_args(env, info, 1, 1, argv, &self)) return NULL;
  if (!opt_int(env, argv[0], "tunFd", -1, INT_MAX, &tun) || !opt_int(env, argv[0], "rawFd", -1, INT_MAX, &raw) ||
      !opt_int(env, argv[0], "icmpFd", -1, INT_MAX, &icmp) || !opt_int(env, argv[0], "mtu", 1280, 65535, &mtu) ||
      !opt_int(env, argv[0], "tunMtu", 1280, 65535, &tun_mtu) ||
      !opt_int(env, argv[0], "ptbPerSecond", 0, 1000000, &rate) ||
      !opt_int(env, argv[0], "ptbBurst", 1, 1000000, &burst) ||
      !opt_int(env, argv[0], "maxHeldBytes", 0, (int64_t)1 << 40, &held) ||
      !opt_int(env, argv[0], "batch", 1, MAX_BATCH, &batch))
    return NULL;
  if ((tun < 0) != (raw < 0)) return errors_throw_type(env, "options.tunFd and options.rawFd go together");

  memset(&cfg, 0, sizeof cfg);
  cfg.tun_fd = (int)tun;
  cfg.raw_fd = (int)raw;
  cfg.icmp_fd = (int)icmp;
  cfg.mtu = (uint32_t)mtu;
  cfg.tun_mtu = (uint32_t)tun_mtu;
  cfg.ptb_per_second = (uint32_t)rate;
  cfg.ptb_burst = (uint32_t)burst;
  cfg.max_held_bytes = (uint64_t)held;
  cfg.batch = (uint32_t)batch;

  h = calloc(1, sizeof *h);
  if (h == NULL) return errors_throw_system(env, ENOMEM, "calloc", NULL);
  rc = fwd_create(&cfg, &h->f, &step);
  if (rc < 0) {
    free(h);
    return errors_throw_system(env, -rc, step, NULL);
  }
  if (napi_wrap(env, self, h, fwd_finalize, NULL, NULL) != napi_ok) {
    /* Give the fds back untouched: stop the thread without closing them. */
    fwd_disown_fds(h->f);
    fwd_free(h->f);
    free(h);
    return errors_throw_napi(env, "Forwarder constructor");
  }
  h->hook_added = napi_add_env_cleanup_hook(env, on_env_cleanup, h) == napi_ok;
  return self;
}

/* set(id, coa: Uint8Array(16), prefixes: Uint8Array(17 * n)): each prefix is 16 address
 * bytes followed by its length. */
static napi_value api_fwd_set(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  struct fwd_handle *h = unwrap_this(env, info, 3, argv, 3);
  struct fwd_prefix *list = NULL;
  struct in6_addr coa;
  uint8_t *bytes;
  size_t len, n;
  uint32_t id;
  int rc;

  if (h == NULL || !arg_id(env, argv[0], &id) || !js_arg_in6(env, argv[1], "coa", &coa) ||
      !js_arg_bytes(env, argv[2], "prefixes", (void **)&bytes, &len))
    return NULL;
  if (len % 17 != 0) return errors_throw_range(env, "The \"prefixes\" argument must hold 17 bytes per prefix");
  n = len / 17;
  if (n > 0 && (list = malloc(n * sizeof *list)) == NULL) return errors_throw_system(env, ENOMEM, "malloc", NULL);
  for (size_t i = 0; i < n; i++) {
    memcpy(&list[i].addr, bytes + 17 * i, 16);
    list[i].len = bytes[17 * i + 16];
    if (list[i].len > 128) {
      free(list);
      return errors_throw_range(env, "The \"prefixes\" argument holds a prefix length above 128");
    }
  }
  rc = fwd_set(h->f, id, &coa, list, n);
  free(list);
  if (rc < 0) return errors_throw_system(env, -rc, "malloc", "forwarder table");
  return NULL;
}

static napi_value ret_bool(napi_env env, bool value) {
  napi_value result;
  NAPI_CALL(env, napi_get_boolean(env, value, &result));
  return result;
}

/* remove(id): boolean (false: no such binding) */
static napi_value api_fwd_remove(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  struct fwd_handle *h = unwrap_this(env, info, 1, argv, 1);
  uint32_t id;
  if (h == NULL || !arg_id(env, argv[0], &id)) return NULL;
  return ret_bool(env, fwd_remove(h->f, id) == 0);
}

/* hold(id, maxPackets, maxMs, dropOnExpiry, nextCoa?: Uint8Array(16) | null): boolean (false: no
 * such binding). With nextCoa, ingress from that address is accepted until the hold ends. */
static napi_value api_fwd_hold(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  struct fwd_handle *h = unwrap_this(env, info, 5, argv, 4);
  int64_t max_packets, max_ms;
  struct in6_addr next;
  bool drop, has_next;
  uint32_t id;
  if (h == NULL || !arg_id(env, argv[0], &id) || !js_arg_int(env, argv[1], "maxPackets", 1, 1 << 20, &max_packets) ||
      !js_arg_int(env, argv[2], "maxMs", 1, 3600000, &max_ms) || !arg_bool(env, argv[3], "dropOnExpiry", &drop))
    return NULL;
  has_next = !js_is_absent(env, argv[4]);
  if (has_next && !js_arg_in6(env, argv[4], "nextCoa", &next)) return NULL;
  return ret_bool(env, fwd_hold(h->f, id, (uint32_t)max_packets, (uint32_t)max_ms, drop, has_next ? &next : NULL) == 0);
}

/* release(id): number of packets held at the call | null (no such binding) */
static napi_value api_fwd_release(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  struct fwd_handle *h = unwrap_this(env, info, 1, argv, 1);
  int64_t n;
  uint32_t id;
  if (h == NULL || !arg_id(env, argv[0], &id)) return NULL;
  n = fwd_release(h->f, id);
  if (n < 0) NAPI_CALL(env, napi_get_null(env, &result));
  else NAPI_CALL(env, napi_create_int64(env, n, &result));
  return result;
}

/* counters(id, out: Float64Array): boolean (false: no such binding) */
static napi_value api_fwd_counters(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  struct fwd_handle *h = unwrap_this(env, info, 2, argv, 2);
  uint64_t ctr[FWD_CTR_COUNT];
  double *out;
  uint32_t id;
  if (h == NULL || !arg_id(env, argv[0], &id) || !arg_f64(env, argv[1], "out", FWD_CTR_COUNT, &out)) return NULL;
  if (fwd_counters(h->f, id, ctr) < 0) return ret_bool(env, false);
  for (int i = 0; i < FWD_CTR_COUNT; i++) out[i] = (double)ctr[i];
  return ret_bool(env, true);
}

/* stats(out: Float64Array): void */
static napi_value api_fwd_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  struct fwd_handle *h = unwrap_this(env, info, 1, argv, 1);
  uint64_t stats[FWD_STAT_COUNT];
  double *out;
  if (h == NULL || !arg_f64(env, argv[0], "out", FWD_STAT_COUNT, &out)) return NULL;
  fwd_stats(h->f, stats);
  for (int i = 0; i < FWD_STAT_COUNT; i++) out[i] = (double)stats[i];
  return NULL;
}

/* lookup(addr: Uint8Array(16)): binding id | -1 (test hook) */
static napi_value api_fwd_lookup(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  struct fwd_handle *h = unwrap_this(env, info, 1, argv, 1);
  struct in6_addr addr;
  if (h == NULL || !js_arg_in6(env, argv[0], "addr", &addr)) return NULL;
  NAPI_CALL(env, napi_create_int64(env, fwd_lookup(h->f, &addr), &result));
  return result;
}

/* benchLookup(addrs: Uint8Array(16 * n), rounds): { nsPerLookup, hits } (test hook). The
 * table lock is held throughout, so forwarding pauses while it runs. */
static napi_value api_fwd_bench_lookup(napi_env env, napi_callback_info info) {
  napi_value argv[2], result, ns, hits_v;
  struct fwd_handle *h = unwrap_this(env, info, 2, argv, 2);
  struct in6_addr *addrs;
  uint64_t hits = 0;
  int64_t rounds;
  void *bytes;
  size_t len;
  double per;
  if (h == NULL || !js_arg_bytes(env, argv[0], "addrs", &bytes, &len) ||
      !js_arg_int(env, argv[1], "rounds", 1, 1 << 20, &rounds))
    return NULL;
  if (len % 16 != 0) return errors_throw_range(env, "The \"addrs\" argument must hold 16 bytes per address");
  /* Copy: the view need not be aligned for struct in6_addr. */
  if (len > 0 && (addrs = malloc(len)) == NULL) return errors_throw_system(env, ENOMEM, "malloc", NULL);
  if (len == 0) addrs = NULL;
  else memcpy(addrs, bytes, len);
  per = fwd_bench_lookup(h->f, addrs, len / 16, (uint32_t)rounds, &hits);
  free(addrs);
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, napi_create_double(env, per, &ns));
  NAPI_CALL(env, napi_create_double(env, (double)hits, &hits_v));
  NAPI_CALL(env, napi_set_named_property(env, result, "nsPerLookup", ns));
  NAPI_CALL(env, napi_set_named_property(env, result, "hits", hits_v));
  return result;
}

/* close(): stop the thread and close the fds; the table stays readable. Idempotent. */
static napi_value api_fwd_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  struct fwd_handle *h = unwrap_this(env, info, 0, argv, 0);
  if (h != NULL) fwd_shutdown(h->f);
  return NULL;
}

napi_status forwarder_register(napi_env env, napi_value exports) {
  napi_value stats_len, counters_len, cls;
  napi_status s;
  if ((s = napi_create_uint32(env, FWD_STAT_COUNT, &stats_len)) != napi_ok) return s;
  if ((s = napi_create_uint32(env, FWD_CTR_COUNT, &counters_len)) != napi_ok) return s;
  const napi_property_descriptor props[] = {
    { "set", NULL, api_fwd_set, NULL, NULL, NULL, napi_default_method, NULL },
    { "remove", NULL, api_fwd_remove, NULL, NULL, NULL, napi_default_method, NULL },
    { "hold", NULL, api_fwd_hold, NULL, NULL, NULL, napi_default_method, NULL },
    { "release", NULL, api_fwd_release, NULL, NULL, NULL, napi_default_method, NULL },
    { "counters", NULL, api_fwd_counters, NULL, NULL, NULL, napi_default_method, NULL },
    { "stats", NULL, api_fwd_stats, NULL, NULL, NULL, napi_default_method, NULL },
    { "lookup", NULL, api_fwd_lookup, NULL, NULL, NULL, napi_default_method, NULL },
    { "benchLookup", NULL, api_fwd_bench_lookup, NULL, NULL, NULL, napi_default_method, NULL },
    { "close", NULL, api_fwd_close, NULL, NULL, NULL, napi_default_method, NULL },
    { "STATS_LENGTH", NULL, NULL, NULL, NULL, stats_len, napi_static | napi_enumerable, NULL },
    { "COUNTERS_LENGTH", NULL, NULL, NULL, NULL, counters_len, napi_static | napi_enumerable, NULL },
  };
  s = napi_define_class(env, "Forwarder", NAPI_AUTO_LENGTH, api_fwd_new, NULL, JS_COUNT(props), props, &cls);
  return s == napi_ok ? napi_set_named_property(env, exports, "Forwarder", cls) : s;
}
