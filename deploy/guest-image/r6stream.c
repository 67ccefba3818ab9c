/*
 * r6stream: the guest side of roam6's test stream, for the QEMU guest image
 * (deploy/guest-image/build.sh). Statically linked; no roam6 code runs in the guest.
 *
 *   r6stream send --to ADDR --port N [--rate-kbit 520] [--size 1400] [--stream-id 1]
 *                 [--max-burst 8] [--status-ms 1000]
 *   r6stream echo --port N [--reply-port N] [--status-ms 1000]
 *
 * The packet is the one src/lab/stream.ts defines (UDP payload, big-endian):
 *   0 magic "R6ST" · 4 version 1 · 5 flags 0 · 6 headerLen 24 · 8 streamId u32 · 12 seq u32 ·
 *   16 sentAt f64 (epoch ms, the guest's clock) · 24 zero padding up to `size`.
 * So `roam6 lab stream recv` and src/lab/analysis.ts read it unchanged.
 *
 * send: paced like stream.ts: packet i is due at start + i × interval (CLOCK_MONOTONIC);
 * a late wake-up sends the due packets in one burst of at most --max-burst and skips the
 * rest without using sequence numbers. A failed send still uses its sequence number. It
 * waits until the guest has a usable global source address (SLAAC done) before packet 0.
 *
 * echo: sends every datagram back to its source address (to --reply-port when given, else
 * to the source port) and counts the stream packets it saw: received, lost (holes in the
 * sequence numbers), out of order.
 *
 * Both print one status line to stdout every --status-ms: the guest's own account.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x52365354u
#define HEADER_LEN 24
#define MAX_SIZE 1452

static double mono_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static double epoch_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void sleep_until_ms(double when) {
  struct timespec t;
  t.tv_sec = (time_t)(when / 1e3);
  t.tv_nsec = (long)((when - t.tv_sec * 1e3) * 1e6);
  if (t.tv_nsec >= 1000000000L) { t.tv_sec++; t.tv_nsec -= 1000000000L; }
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR) {}
}

static void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void put_f64(uint8_t *p, double d) {
  uint64_t v;
  memcpy(&v, &d, 8);
  for (int i = 7; i >= 0; i--) { p[i] = v & 0xff; v >>= 8; }
}

static const char *opt(int argc, char **argv, const char *name, const char *def) {
  for (int i = 2; i + 1 < argc; i++) if (strcmp(argv[i], name) == 0) return argv[i + 1];
  return def;
}

static int usage(void) {
  fprintf(stderr, "usage: r6stream send --to ADDR --port N [--rate-kbit 520] [--size 1400] [--stream-id 1] [--max-burst 8] [--status-ms 1000]\n"
                  "       r6stream echo --port N [--reply-port N] [--status-ms 1000]\n");
  return 2;
}

/* True once a UDP socket "connected" to dst gets a global (not link-local) source address. */
static int have_source(const struct sockaddr_in6 *dst, char *src, size_t srclen) {
  int fd = socket(AF_INET6, SOCK_DGRAM, 0);
  if (fd < 0) return 0;
  int ok = 0;
  if (connect(fd, (const struct sockaddr *)dst, sizeof *dst) == 0) {
    struct sockaddr_in6 me;
    socklen_t len = sizeof me;
    if (getsockname(fd, (struct sockaddr *)&me, &len) == 0 && !IN6_IS_ADDR_LINKLOCAL(&me.sin6_addr) && !IN6_IS_ADDR_UNSPECIFIED(&me.sin6_addr)) {
      inet_ntop(AF_INET6, &me.sin6_addr, src, srclen);
      ok = 1;
    }
  }
  close(fd);
  return ok;
}

static int do_send(int argc, char **argv) {
  const char *to = opt(argc, argv, "--to", NULL);
  const char *port = opt(argc, argv, "--port", NULL);
  if (!to || !port) return usage();
  double rate = atof(opt(argc, argv, "--rate-kbit", "520"));
  int size = atoi(opt(argc, argv, "--size", "1400"));
  uint32_t sid = (uint32_t)strtoul(opt(argc, argv, "--stream-id", "1"), NULL, 10);
  long burst = atol(opt(argc, argv, "--max-burst", "8"));
  double status_ms = atof(opt(argc, argv, "--status-ms", "1000"));
  if (rate <= 0 || size < HEADER_LEN || size > MAX_SIZE || burst < 1) return usage();

  struct sockaddr_in6 dst = {0};
  dst.sin6_family = AF_INET6;
  dst.sin6_port = htons((uint16_t)atoi(port));
  if (inet_pton(AF_INET6, to, &dst.sin6_addr) != 1) { fprintf(stderr, "r6stream: bad address %s\n", to); return 2; }

  char src[INET6_ADDRSTRLEN] = "";
  while (!have_source(&dst, src, sizeof src)) usleep(100000);
  int fd = socket(AF_INET6, SOCK_DGRAM, 0);
  if (fd < 0) { perror("r6stream: socket"); return 1; }

  uint8_t buf[MAX_SIZE];
  memset(buf, 0, sizeof buf);
  put32(buf, MAGIC);
  buf[4] = 1;
  buf[5] = 0;
  buf[6] = 0;
  buf[7] = HEADER_LEN;
  put32(buf + 8, sid);

  double interval = size * 8.0 / rate;
  double start = mono_ms();
  double next_status = start;
  uint64_t slot = 0, seq = 0, errors = 0, skipped = 0;
  printf("r6stream send: start to=[%s]:%s from=%s stream=%u size=%d interval_ms=%.3f\n", to, port, src, sid, size, interval);
  fflush(stdout);
  for (;;) {
    double now = mono_ms();
    long long last_due = (long long)((now - start) / interval);
    long long due = last_due - (long long)slot + 1;
    if (due < 0) due = 0;
    long long send_n = due < burst ? due : burst;
    for (long long i = 0; i < send_n; i++) {
      put32(buf + 12, (uint32_t)seq);
      put_f64(buf + 16, epoch_ms());
      seq++;
      if (sendto(fd, buf, (size_t)size, 0, (struct sockaddr *)&dst, sizeof dst) < 0) errors++;
    }
    skipped += (uint64_t)(due - send_n);
    slot += (uint64_t)due;
    if (status_ms > 0 && now >= next_status) {
      printf("r6stream send: seq=%llu errors=%llu skipped=%llu\n", (unsigned long long)seq, (unsigned long long)errors, (unsigned long long)skipped);
      fflush(stdout);
      next_status += status_ms;
      if (next_status < now) next_status = now + status_ms;
    }
    sleep_until_ms(start + slot * interval);
  }
}

static int do_echo(int argc, char **argv) {
  const char *port = opt(argc, argv, "--port", NULL);
  if (!port) return usage();
  int reply_port = atoi(opt(argc, argv, "--reply-port", "0"));
  double status_ms = atof(opt(argc, argv, "--status-ms", "1000"));
  int fd = socket(AF_INET6, SOCK_DGRAM, 0);
  if (fd < 0) { perror("r6stream: socket"); return 1; }
  struct sockaddr_in6 me = {0};
  me.sin6_family = AF_INET6;
  me.sin6_port = htons((uint16_t)atoi(port));
  me.sin6_addr = in6addr_any;
  if (bind(fd, (struct sockaddr *)&me, sizeof me) < 0) { perror("r6stream: bind"); return 1; }
  struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  printf("r6stream echo: listening port=%s reply_port=%d\n", port, reply_port);
  fflush(stdout);
  uint8_t buf[65536];
  uint64_t received = 0, lost = 0, reordered = 0, echoed = 0;
  int have = 0;
  uint32_t next = 0;
  double next_status = mono_ms() + status_ms;
  for (;;) {
    struct sockaddr_in6 from;
    socklen_t flen = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
    if (n >= HEADER_LEN && get32(buf) == MAGIC && buf[4] == 1) {
      uint32_t seq = get32(buf + 12);
      received++;
      if (!have) { have = 1; next = seq + 1; }
      else if (seq >= next) { lost += seq - next; next = seq + 1; }
      else { reordered++; if (lost > 0) lost--; }
    }
    if (n >= 0) {
      if (reply_port > 0) from.sin6_port = htons((uint16_t)reply_port);
      if (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, flen) >= 0) echoed++;
    }
    double now = mono_ms();
    if (status_ms > 0 && now >= next_status) {
      printf("r6stream echo: received=%llu lost=%llu reordered=%llu echoed=%llu next=%u\n", (unsigned long long)received,
             (unsigned long long)lost, (unsigned long long)reordered, (unsigned long long)echoed, next);
      fflush(stdout);
      next_status = now + status_ms;
    }
  }
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) return usage();
  if (strcmp(argv[1], "send") == 0) return do_send(argc, argv);
  if (strcmp(argv[1], "echo") == 0) return do_echo(argc, argv);
  return usage();
}
