/*
 * Raw AF_INET6 sockets for one IP protocol (135 Mobility Header, 41 IPv6-in-IPv6, ...).
 *
 * The kernel owns the IPv6 header: on send it builds the header (source from the bound
 * address or an IPV6_PKTINFO cmsg), on receive the buffer starts after it, with the outer
 * source in the recvmsg address and the local destination in IPV6_PKTINFO.
 *
 * The rawsock_* functions are plain C (no N-API) so a future forwarding thread can use them;
 * they return -errno on failure. rawsock_register() adds the JS bindings.
 */
#ifndef ROAM6_RAWSOCK_H
#define ROAM6_RAWSOCK_H

#include <net/if.h>
#include <netinet/in.h>
#include <netinet/icmp6.h>
#include <node_api.h>
#include <stdbool.h>
#include <sys/types.h>

struct rawsock_config {
  int protocol;                  /* IPPROTO_* (0..255) */
  bool has_bind_addr;
  struct in6_addr bind_addr;     /* bind() source address, if has_bind_addr */
  char device[IFNAMSIZ];         /* SO_BINDTODEVICE, if non-empty */
  bool has_checksum_offset;
  int checksum_offset;           /* IPV6_CHECKSUM: byte offset, or -1 for off */
  int rcvbuf;                    /* SO_RCVBUF if > 0 */
  int sndbuf;                    /* SO_SNDBUF if > 0 */
  int hop_limit;                 /* IPV6_UNICAST_HOPS and IPV6_MULTICAST_HOPS if > 0 */
  bool has_icmp6_filter;
  struct icmp6_filter icmp6_filter; /* ICMP6_FILTER (ICMPv6 sockets only), if has_icmp6_filter */
};

struct rawsock_meta {
  struct in6_addr src;           /* packet source (outer source for proto 41) */
  struct in6_addr dst;           /* local destination, from IPV6_PKTINFO */
  unsigned int ifindex;          /* arrival interface, from IPV6_PKTINFO */
  int hop_limit;                 /* hop limit of the packet as received, from IPV6_HOPLIMIT; -1 if absent */
  bool truncated;                /* datagram was longer than the buffer */
};

/* Open a non-blocking, close-on-exec raw socket with IPV6_RECVPKTINFO and IPV6_RECVHOPLIMIT on.
 * With a device, multicast sends also leave by it (IPV6_MULTICAST_IF). Returns the fd, or
 * -errno with *failed_step naming what failed: "socket", "bind", or the setsockopt option
 * ("IPV6_CHECKSUM", "SO_BINDTODEVICE", ...). Nothing is left open on failure. */
int rawsock_open(const struct rawsock_config *cfg, const char **failed_step);

/* sendmsg() one datagram to `dst`; `src` (may be NULL) pins the source via IPV6_PKTINFO.
 * Returns bytes sent or -errno (-EAGAIN when the send buffer is full). */
ssize_t rawsock_send(int fd, const void *data, size_t len,
                     const struct in6_addr *dst, const struct in6_addr *src);

/* recvmsg() one datagram. Returns its length (at most `cap`) or -errno (-EAGAIN: queue empty). */
ssize_t rawsock_recv(int fd, void *buf, size_t cap, struct rawsock_meta *meta);

/* JS: rawOpen(protocol, options) / rawSend(fd, data, dst, src?) / rawRecv(fd, buf). */
napi_status rawsock_register(napi_env env, napi_value exports);

#endif /* ROAM6_RAWSOCK_H */
