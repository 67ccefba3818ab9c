/*
 * roam6_native: module registration only.
 *
 * Boundary rule: this addon deals in fds, bytes and errno. It never parses or builds a
 * protocol message; that is TypeScript's job (src/wire/). The typed view of everything
 * registered here is `NativeBinding` in src/platform/linux/native.ts; keep the two in step.
 *
 * Each module registers its own functions:
 *   rawsock.c  rawOpen, rawSend, rawRecv      raw AF_INET6 sockets with IPV6_PKTINFO
 *   tun.c      tunOpen                        TUN/TAP devices (IFF_NO_PI)
 *   fdio.c     read, write, close             whole-packet fd I/O
 *   netdev.c   ifIndex                        interface name -> index without rtnetlink
 *   poller.c   Poller                         fd readability on the event loop (uv_poll)
 *   forwarder.c Forwarder                     the userspace HA data plane: a thread moving
 *                                             packets TUN <-> raw proto 41 (LPM in lpm.c)
 */
#include <node_api.h>

#include "errors.h"
#include "fdio.h"
#include "forwarder.h"
#include "netdev.h"
#include "poller.h"
#include "rawsock.h"
#include "tun.h"

NAPI_MODULE_INIT() {
  NAPI_CALL(env, rawsock_register(env, exports));
  NAPI_CALL(env, tun_register(env, exports));
  NAPI_CALL(env, fdio_register(env, exports));
  NAPI_CALL(env, netdev_register(env, exports));
  NAPI_CALL(env, poller_register(env, exports));
  NAPI_CALL(env, forwarder_register(env, exports));
  return exports;
}
