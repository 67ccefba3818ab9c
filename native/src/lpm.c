/* Longest-prefix match, one hash table per prefix length. See lpm.h. */
#include "lpm.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MIN_CAPACITY 16u
/* Linear probing stays short below half full: ~1.5 probes for a hit, ~2.5 for a miss. */
#define MAX_LOAD_NUM 1u
#define MAX_LOAD_DEN 2u

static inline uint64_t load_be64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, sizeof v);
  return be64toh(v);
}

static inline void store_be64(uint8_t *p, uint64_t v) {
  v = htobe64(v);
  memcpy(p, &v, sizeof v);
}

static inline uint64_t mask_hi(int len) {
  return len <= 0 ? 0 : len >= 64 ? ~0ULL : ~0ULL << (64 - len);
}

static inline uint64_t mask_lo(int len) {
  return len <= 64 ? 0 : len >= 128 ? ~0ULL : ~0ULL << (128 - len);
}

/* 64-bit mix of the 128 key bits (multiply-xorshift); the low bits index the table. */
static inline uint32_t hash_key(uint64_t hi, uint64_t lo) {
  uint64_t h = hi * 0x9E3779B97F4A7C15ULL ^ (lo + 0x632BE59BD9B4E019ULL) * 0xC2B2AE3D27D4EB4FULL;
  h ^= h >> 32;
  h *= 0xD6E8FEB86659FD93ULL;
  h ^= h >> 32;
  return (uint32_t)h;
}

static inline void split(const struct in6_addr *a, int len, uint64_t *hi, uint64_t *lo) {
  *hi = load_be64(a->s6_addr) & mask_hi(len);
  *lo = load_be64(a->s6_addr + 8) & mask_lo(len);
}

void lpm_init(struct lpm *t) {
  memset(t, 0, sizeof *t);
}

void lpm_destroy(struct lpm *t) {
  for (int len = 0; len <= 128; len++) free(t->tables[len].slots);
  memset(t, 0, sizeof *t);
}

void lpm_mask(struct in6_addr *addr, int len) {
  uint64_t hi, lo;
  split(addr, len, &hi, &lo);
  store_be64(addr->s6_addr, hi);
  store_be64(addr->s6_addr + 8, lo);
}

/* Index of the slot holding (hi, lo), or of the empty slot where it would go. */
static inline uint32_t probe(const struct lpm_table *tb, uint64_t hi, uint64_t lo) {
  uint32_t i = hash_key(hi, lo) & tb->mask;
  for (;;) {
    const struct lpm_slot *s = &tb->slots[i];
    if (s->value == NULL || (s->hi == hi && s->lo == lo)) return i;
    i = (i + 1) & tb->mask;
  }
}

void *lpm_lookup(const struct lpm *t, const struct in6_addr *addr) {
  const uint64_t hi = load_be64(addr->s6_addr);
  const uint64_t lo = load_be64(addr->s6_addr + 8);
  for (int k = 0; k < t->nlens; k++) {
    const int len = t->lens[k];
    const struct lpm_table *tb = &t->tables[len];
    const uint64_t kh = hi & mask_hi(len), kl = lo & mask_lo(len);
    void *v = tb->slots[probe(tb, kh, kl)].value;
    if (v != NULL) return v;
  }
  return NULL;
}

void *lpm_get(const struct lpm *t, const struct in6_addr *prefix, int len) {
  const struct lpm_table *tb = &t->tables[len];
  uint64_t hi, lo;
  if (tb->count == 0) return NULL;
  split(prefix, len, &hi, &lo);
  return tb->slots[probe(tb, hi, lo)].value;
}

int lpm_prepare(const struct lpm *t, int len, uint32_t extra, struct lpm_growth *g) {
  const struct lpm_table *old = &t->tables[len];
  uint64_t want = (uint64_t)old->count + extra;
  uint64_t cap = old->slots == NULL ? 0 : (uint64_t)old->mask + 1;
  uint64_t newcap;

  g->len = len;
  memset(&g->table, 0, sizeof g->table);
  if (cap != 0 && want * MAX_LOAD_DEN <= cap * MAX_LOAD_NUM) return 0;

  newcap = cap != 0 ? cap : MIN_CAPACITY;
  while (want * MAX_LOAD_DEN > newcap * MAX_LOAD_NUM) newcap <<= 1;
  if (newcap > (1ULL << 31)) return -ENOMEM;

  g->table.slots = calloc(newcap, sizeof *g->table.slots);
  if (g->table.slots == NULL) return -ENOMEM;
  g->table.mask = (uint32_t)(newcap - 1);
  g->table.count = old->count;
  for (uint64_t i = 0; i < cap; i++) {
    const struct lpm_slot *s = &old->slots[i];
    if (s->value != NULL) g->table.slots[probe(&g->table, s->hi, s->lo)] = *s;
  }
  return 0;
}

struct lpm_slot *lpm_commit(struct lpm *t, struct lpm_growth *g) {
  struct lpm_slot *old;
  if (g->table.slots == NULL) return NULL;
  old = t->tables[g->len].slots;
  t->tables[g->len] = g->table;
  memset(&g->table, 0, sizeof g->table);
  return old;
}

static void lens_add(struct lpm *t, int len) {
  int k = 0;
  while (k < t->nlens && t->lens[k] > len) k++;
  memmove(&t->lens[k + 1], &t->lens[k], (size_t)(t->nlens - k));
  t->lens[k] = (uint8_t)len;
  t->nlens++;
}

static void lens_del(struct lpm *t, int len) {
  for (int k = 0; k < t->nlens; k++) {
    if (t->lens[k] == len) {
      memmove(&t->lens[k], &t->lens[k + 1], (size_t)(t->nlens - k - 1));
      t->nlens--;
      return;
    }
  }
}

void *lpm_put(struct lpm *t, const struct in6_addr *prefix, int len, void *value) {
  struct lpm_table *tb = &t->tables[len];
  struct lpm_slot *s;
  uint64_t hi, lo;
  void *prev;

  split(prefix, len, &hi, &lo);
  s = &tb->slots[probe(tb, hi, lo)];
  prev = s->value;
  s->hi = hi;
  s->lo = lo;
  s->value = value;
  if (prev == NULL) {
    if (tb->count++ == 0) lens_add(t, len);
    t->total++;
  }
  return prev;
}

bool lpm_remove(struct lpm *t, const struct in6_addr *prefix, int len, const void *expected) {
  struct lpm_table *tb = &t->tables[len];
  uint64_t hi, lo;
  uint32_t i, j;

  if (tb->count == 0) return false;
  split(prefix, len, &hi, &lo);
  i = probe(tb, hi, lo);
  if (tb->slots[i].value == NULL || (expected != NULL && tb->slots[i].value != expected)) return false;

  /* Backward-shift deletion: pull later entries of the probe run into the hole unless their
   * home slot lies cyclically in (i, j], so no tombstones are needed. */
  for (j = i;;) {
    uint32_t home;
    j = (j + 1) & tb->mask;
    if (tb->slots[j].value == NULL) break;
    home = hash_key(tb->slots[j].hi, tb->slots[j].lo) & tb->mask;
    if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
      tb->slots[i] = tb->slots[j];
      i = j;
    }
  }
  tb->slots[i].value = NULL;
  if (--tb->count == 0) lens_del(t, len);
  t->total--;
  return true;
}
