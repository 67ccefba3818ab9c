/*
 * Longest-prefix match over IPv6 prefixes of any length: one open-addressing hash table per
 * prefix length in use, probed from the longest length to the shortest.
 *
 * Why this shape: the MNPs an HA serves come in a handful of lengths (/48, /56, /64 ...), so a
 * lookup is a few hash probes (each one cache miss at most) whatever the number of prefixes;
 * a binary trie would chase up to 128 pointers. The worst case is one probe per distinct
 * length in use (129).
 *
 * Plain C, no locking and no N-API: the owner (forwarder.c) serialises access. Growing a
 * table is split so that the expensive copy can run while readers still use the old table:
 * lpm_prepare() builds the bigger table by reading the current one (safe while readers
 * read, as long as nobody writes), lpm_commit() swaps it in (do this under the owner's lock)
 * and hands back the old slot array to free once no reader can hold it.
 *
 * Values are non-NULL pointers owned by the caller; NULL marks an empty slot.
 */
#ifndef ROAM6_LPM_H
#define ROAM6_LPM_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lpm_slot {
  uint64_t hi, lo; /* masked prefix bits, host order */
  void *value;     /* NULL: empty */
};

struct lpm_table {
  struct lpm_slot *slots; /* NULL until the first prefix of this length */
  uint32_t mask;          /* capacity - 1 (capacity is a power of two) */
  uint32_t count;
};

struct lpm {
  struct lpm_table tables[129]; /* by prefix length */
  uint8_t lens[129];            /* lengths with count > 0, longest first */
  int nlens;
  uint64_t total;               /* prefixes stored */
};

/* A bigger table for one length, built by lpm_prepare(); empty (slots == NULL) if none is needed. */
struct lpm_growth {
  int len;
  struct lpm_table table;
};

void lpm_init(struct lpm *t);
void lpm_destroy(struct lpm *t);

/* Mask `addr` to `len` bits. */
void lpm_mask(struct in6_addr *addr, int len);

/* The value stored for the longest prefix containing `addr`, or NULL. */
void *lpm_lookup(const struct lpm *t, const struct in6_addr *addr);

/* The value stored for exactly this prefix (host bits ignored), or NULL. */
void *lpm_get(const struct lpm *t, const struct in6_addr *prefix, int len);

/* Make room so that `extra` more prefixes of length `len` can be inserted without growing.
 * Reads the table only. Returns 0 (g->table.slots is NULL when nothing had to grow) or
 * -ENOMEM. */
int lpm_prepare(const struct lpm *t, int len, uint32_t extra, struct lpm_growth *g);

/* Install a prepared table. Returns the slot array it replaced (free() it when no reader can
 * still be using it), or NULL. */
struct lpm_slot *lpm_commit(struct lpm *t, struct lpm_growth *g);

/* Insert or replace. Capacity must have been reserved with lpm_prepare/lpm_commit: this
 * never allocates. Returns the previous value (NULL if the prefix was new). */
void *lpm_put(struct lpm *t, const struct in6_addr *prefix, int len, void *value);

/* Remove the prefix if its value is `expected` (or any value if `expected` is NULL).
 * Returns true if removed. */
bool lpm_remove(struct lpm *t, const struct in6_addr *prefix, int len, const void *expected);

#endif /* ROAM6_LPM_H */
