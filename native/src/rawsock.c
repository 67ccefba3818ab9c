/* Raw AF_INET6 sockets. See rawsock.h. */
#include "rawsock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "js.h"
#include "errors.h"

/* Control buffer, aligned for struct cmsghdr: on send one IPV6_PKTINFO; on receive that plus
 * one IPV6_HOPLIMIT (the two ancillary items enabled). Enabling more means growing this. */
union pktinfo_cmsg {
  struct cmsghdr align;
  char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(int))];
};

/* ---- plain C ---------------------------------------------------------------------- */

static int set_int_opt(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value);
}

/* Apply cfg to a fresh socket; on failure return -1 with errno set and *option naming the
 * option that failed. Order matters: the device binding must precede bind(), so that a link-local
 * address is looked up on that device (no sin6_scope_id needed). */
static int rawsock_configure(int fd, const struct rawsock_config *cfg, const char **option) {
  /* Report the local destination and arrival interface of every datagram. */
  *option = "IPV6_RECVPKTINFO";
  if (set_int_opt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1) < 0) return -1;
  /* ... and the hop limit it arrived with (RFC 4861 receivers must see 255 on ND messages). */
  *option = "IPV6_RECVHOPLIMIT";
  if (set_int_opt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1) < 0) return -1;

  /* IPV6_CHECKSUM makes the kernel fill (send) and verify (receive, silently dropping bad
   * packets) a transport checksum at this offset over the RFC 8200 §8.1 pseudo-header.
   * Left unset, the kernel default applies: offset 4 for IPPROTO_MH (rawv6_init_sk, even
   * without CONFIG_IPV6_MIP6), off for everything else; ICMPv6 is always checksummed and
   * rejects this option. -1 turns it off, e.g. to see MH packets with bad checksums. */
  *option = "IPV6_CHECKSUM";
  if (cfg->has_checksum_offset &&
      set_int_opt(fd, IPPROTO_IPV6, IPV6_CHECKSUM, cfg->checksum_offset) < 0)
    return -1;

  /* Capped by net.core.{r,w}mem_max; the kernel doubles the value for bookkeeping. */
  *option = "SO_RCVBUF";
  if (cfg->rcvbuf > 0 && set_int_opt(fd, SOL_SOCKET, SO_RCVBUF, cfg->rcvbuf) < 0) return -1;
  *option = "SO_SNDBUF";
  if (cfg->sndbuf > 0 && set_int_opt(fd, SOL_SOCKET, SO_SNDBUF, cfg->sndbuf) < 0) return -1;

  /* Hop limit of what we send, unicast and multicast alike (ND messages need 255). */
  if (cfg->hop_limit > 0) {
    *option = "IPV6_UNICAST_HOPS";
    if (set_int_opt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, cfg->hop_limit) < 0) return -1;
    *option = "IPV6_MULTICAST_HOPS";
    if (set_int_opt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, cfg->hop_limit) < 0) return -1;
  }

  /* ICMPv6 types to pass up (RFC 3542 §3.2); the kernel refuses it on other protocols. */
  *option = "ICMP6_FILTER";
  if (cfg->has_icmp6_filter &&
      setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &cfg->icmp6_filter, sizeof cfg->icmp6_filter) < 0)
    return -1;

  if (cfg->device[0] != '\0') {
    unsigned int ifindex;
    *option = "SO_BINDTODEVICE";
    if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, cfg->device, (socklen_t)strlen(cfg->device) + 1) < 0)
      return -1;
    /* Multicast to a link-scope group (ff02::1) needs an interface; make it this one
     * explicitly rather than relying on the bound device being used as a fallback. */
    *option = "IPV6_MULTICAST_IF";
    ifindex = if_nametoindex(cfg->device);
    if (ifindex == 0 || set_int_opt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, (int)ifindex) < 0) return -1;
  }

  *option = NULL;
  return 0;
}

static int bind_source(int fd, const struct in6_addr *addr) {
  struct sockaddr_in6 sa;
  memset(&sa, 0, sizeof sa);
  sa.sin6_family = AF_INET6;
  sa.sin6_addr = *addr;
  /* sin6_port stays 0: raw sockets have no ports. */
  return bind(fd, (const struct sockaddr *)&sa, sizeof sa);
}

int rawsock_open(const struct rawsock_config *cfg, const char **failed_step) {
  int err;
  int fd = socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, cfg->protocol);
  if (fd < 0) {
    *failed_step = "socket";
    return -errno;
  }
  if (rawsock_configure(fd, cfg, failed_step) == 0) {
    if (!cfg->has_bind_addr) return fd;
    *failed_step = "bind";
    if (bind_source(fd, &cfg->bind_addr) == 0) return fd;
  }
  err = errno;
  close(fd);
  return -err;
}

ssize_t rawsock_send(int fd, const void *data, size_t len,
                     const struct in6_addr *dst, const struct in6_addr *src) {
  struct sockaddr_in6 to;
  struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
  union pktinfo_cmsg control;
  struct msghdr msg;
  ssize_t n;

  memset(&to, 0, sizeof to);
  to.sin6_family = AF_INET6;
  to.sin6_addr = *dst;

  memset(&msg, 0, sizeof msg);
  msg.msg_name = &to;
  msg.msg_namelen = sizeof to;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;

  if (src != NULL) {
    struct in6_pktinfo pi;
    struct cmsghdr *cm;
    memset(&control, 0, sizeof control);
    msg.msg_control = control.buf;
    /* Exactly one cmsg: a zeroed second header would make the kernel fail with EINVAL. */
    msg.msg_controllen = CMSG_SPACE(sizeof pi);
    cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = IPPROTO_IPV6;
    cm->cmsg_type = IPV6_PKTINFO;
    cm->cmsg_len = CMSG_LEN(sizeof pi);
    memset(&pi, 0, sizeof pi);
    pi.ipi6_addr = *src; /* ipi6_ifindex 0: let the route choose the interface */
    memcpy(CMSG_DATA(cm), &pi, sizeof pi);
  }

  do n = sendmsg(fd, &msg, 0);
  while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : n;
}

ssize_t rawsock_recv(int fd, void *buf, size_t cap, struct rawsock_meta *meta) {
  struct sockaddr_in6 from;
  struct iovec iov = { .iov_base = buf, .iov_len = cap };
  union pktinfo_cmsg control;
  struct msghdr msg;
  struct cmsghdr *cm;
  ssize_t n;

  memset(&msg, 0, sizeof msg);
  msg.msg_name = &from;
  msg.msg_namelen = sizeof from;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;

  do n = recvmsg(fd, &msg, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;

  memset(meta, 0, sizeof *meta);
  meta->hop_limit = -1;
  meta->src = from.sin6_addr;
  meta->truncated = (msg.msg_flags & MSG_TRUNC) != 0;
  for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
    if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO &&
        cm->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
      struct in6_pktinfo pi;
      memcpy(&pi, CMSG_DATA(cm), sizeof pi);
      meta->dst = pi.ipi6_addr;
      meta->ifindex = pi.ipi6_ifindex;
    } else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_HOPLIMIT &&
               cm->cmsg_len >= CMSG_LEN(sizeof(int))) {
      memcpy(&meta->hop_limit, CMSG_DATA(cm), sizeof meta->hop_limit);
    }
  }
  return n;
}

/* ---- JS bindings ------------------------------------------------------------------ */

/* options.icmp6Filter: an array of ICMPv6 types (0..255) to pass; every other type is blocked. */
static bool read_icmp6_filter(napi_env env, napi_value value, struct icmp6_filter *filter) {
  bool is_array = false;
  uint32_t count;

  if (napi_is_array(env, value, &is_array) != napi_ok) {
    errors_throw_napi(env, "napi_is_array");
    return false;
  }
  if (!is_array) {
    errors_throw_type(env, "The \"options.icmp6Filter\" argument must be an array of ICMPv6 types");
    return false;
  }
  if (napi_get_array_length(env, value, &count) != napi_ok) {
    errors_throw_napi(env, "napi_get_array_length");
    return false;
  }
  ICMP6_FILTER_SETBLOCKALL(filter);
  for (uint32_t i = 0; i < count; i++) {
    napi_value item;
    int64_t type;
    if (napi_get_element(env, value, i, &item) != napi_ok) {
      errors_throw_napi(env, "napi_get_element");
      return false;
    }
    if (!js_arg_int(env, item, "options.icmp6Filter[]", 0, 255, &type)) return false;
    ICMP6_FILTER_SETPASS((int)type, filter);
  }
  return true;
}

/* Read the optional fields of rawOpen()'s options object into cfg. */
static bool read_open_options(napi_env env, napi_value opts, struct rawsock_config *cfg) {
  napi_value v;
  bool present;
  int64_t n;

  if (!js_get_property(env, opts, "bindAddress", &v, &present)) return false;
  if (present) {
    if (!js_arg_in6(env, v, "options.bindAddress", &cfg->bind_addr)) return false;
    cfg->has_bind_addr = true;
  }
  if (!js_get_property(env, opts, "device", &v, &present)) return false;
  if (present && !js_arg_string(env, v, "options.device", cfg->device, sizeof cfg->device)) return false;

  if (!js_get_property(env, opts, "checksumOffset", &v, &present)) return false;
  if (present) {
    if (!js_arg_int(env, v, "options.checksumOffset", -1, INT_MAX, &n)) return false;
    cfg->has_checksum_offset = true;
    cfg->checksum_offset = (int)n;
  }
  if (!js_get_property(env, opts, "recvBufferSize", &v, &present)) return false;
  if (present) {
    if (!js_arg_int(env, v, "options.recvBufferSize", 1, INT_MAX, &n)) return false;
    cfg->rcvbuf = (int)n;
  }
  if (!js_get_property(env, opts, "sendBufferSize", &v, &present)) return false;
  if (present) {
    if (!js_arg_int(env, v, "options.sendBufferSize", 1, INT_MAX, &n)) return false;
    cfg->sndbuf = (int)n;
  }
  if (!js_get_property(env, opts, "hopLimit", &v, &present)) return false;
  if (present) {
    if (!js_arg_int(env, v, "options.hopLimit", 1, 255, &n)) return false;
    cfg->hop_limit = (int)n;
  }
  if (!js_get_property(env, opts, "icmp6Filter", &v, &present)) return false;
  if (present) {
    if (!read_icmp6_filter(env, v, &cfg->icmp6_filter)) return false;
    cfg->has_icmp6_filter = true;
  }
  return true;
}

/* Text for the error message: the address for bind, the option (and device) otherwise. */
static const char *open_error_detail(const struct rawsock_config *cfg, const char *step,
                                     char *buf, size_t size) {
  if (strcmp(step, "bind") == 0) return inet_ntop(AF_INET6, &cfg->bind_addr, buf, (socklen_t)size);
  if (strcmp(step, "SO_BINDTODEVICE") == 0) {
    snprintf(buf, size, "%s %s", step, cfg->device);
    return buf;
  }
  return strcmp(step, "socket") == 0 ? NULL : step;
}

/* rawOpen(protocol: number, options?: object): number (fd) */
static napi_value api_raw_open(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  struct rawsock_config cfg;
  const char *step = NULL;
  int64_t protocol;
  int fd;

  memset(&cfg, 0, sizeof cfg);
  if (!js_get_args(env, info, 1, 2, argv, NULL)) return NULL;
  if (!js_arg_int(env, argv[0], "protocol", 0, 255, &protocol)) return NULL;
  cfg.protocol = (int)protocol;
  if (!js_is_absent(env, argv[1]) && !read_open_options(env, argv[1], &cfg)) return NULL;

  fd = rawsock_open(&cfg, &step);
  if (fd < 0) {
    char detail[INET6_ADDRSTRLEN + IFNAMSIZ + 32];
    /* Options other than socket/bind are all applied with setsockopt(). */
    const char *syscall = strcmp(step, "socket") == 0 || strcmp(step, "bind") == 0 ? step : "setsockopt";
    return errors_throw_system(env, -fd, syscall, open_error_detail(&cfg, step, detail, sizeof detail));
  }
  if (napi_create_int32(env, fd, &result) != napi_ok) {
    close(fd);
    return errors_throw_napi(env, "napi_create_int32");
  }
  return result;
}

/* rawSend(fd: number, data: Uint8Array, dst: Uint8Array(16), src?: Uint8Array(16)): number */
static napi_value api_raw_send(napi_env env, napi_callback_info info) {
  napi_value argv[4], result;
  struct in6_addr dst, src;
  bool has_src;
  void *data;
  size_t len;
  ssize_t n;
  int fd;

  if (!js_get_args(env, info, 3, 4, argv, NULL) || !js_arg_fd(env, argv[0], &fd) ||
      !js_arg_bytes(env, argv[1], "data", &data, &len) || !js_arg_in6(env, argv[2], "dst", &dst))
    return NULL;
  has_src = !js_is_absent(env, argv[3]);
  if (has_src && !js_arg_in6(env, argv[3], "src", &src)) return NULL;

  n = rawsock_send(fd, data, len, &dst, has_src ? &src : NULL);
  if (n < 0) {
    char text[INET6_ADDRSTRLEN];
    return errors_throw_system(env, (int)-n, "sendmsg", inet_ntop(AF_INET6, &dst, text, sizeof text));
  }
  NAPI_CALL(env, napi_create_int64(env, n, &result));
  return result;
}

static napi_status set_prop(napi_env env, napi_value obj, const char *key, napi_value value) {
  return value == NULL ? napi_generic_failure : napi_set_named_property(env, obj, key, value);
}

/* rawRecv(fd: number, buf: Uint8Array):
 *   { length, truncated, src: Uint8Array(16), dst: Uint8Array(16), ifindex, hopLimit } | null (EAGAIN) */
static napi_value api_raw_recv(napi_env env, napi_callback_info info) {
  napi_value argv[2], result, length, truncated, ifindex, hop_limit;
  struct rawsock_meta meta;
  void *buf;
  size_t cap;
  ssize_t n;
  int fd;

  if (!js_get_args(env, info, 2, 2, argv, NULL) || !js_arg_fd(env, argv[0], &fd) ||
      !js_arg_bytes(env, argv[1], "buf", &buf, &cap))
    return NULL;

  n = rawsock_recv(fd, buf, cap, &meta);
  if (n == -EAGAIN) { /* == EWOULDBLOCK on Linux */
    NAPI_CALL(env, napi_get_null(env, &result));
    return result;
  }
  if (n < 0) return errors_throw_system(env, (int)-n, "recvmsg", NULL);

  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, napi_create_int64(env, n, &length));
  NAPI_CALL(env, napi_get_boolean(env, meta.truncated, &truncated));
  NAPI_CALL(env, napi_create_uint32(env, meta.ifindex, &ifindex));
  NAPI_CALL(env, napi_create_int32(env, meta.hop_limit, &hop_limit));
  NAPI_CALL(env, set_prop(env, result, "length", length));
  NAPI_CALL(env, set_prop(env, result, "truncated", truncated));
  NAPI_CALL(env, set_prop(env, result, "src", js_new_u8(env, &meta.src, sizeof meta.src)));
  NAPI_CALL(env, set_prop(env, result, "dst", js_new_u8(env, &meta.dst, sizeof meta.dst)));
  NAPI_CALL(env, set_prop(env, result, "ifindex", ifindex));
  NAPI_CALL(env, set_prop(env, result, "hopLimit", hop_limit));
  return result;
}

napi_status rawsock_register(napi_env env, napi_value exports) {
  static const struct js_function fns[] = {
    { "rawOpen", api_raw_open },
    { "rawSend", api_raw_send },
    { "rawRecv", api_raw_recv },
  };
  return js_export_functions(env, exports, fns, JS_COUNT(fns));
}
