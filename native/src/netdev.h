/*
 * Network interface lookups that need no rtnetlink request, so never wait for the kernel's
 * RTNL lock (a netlink RTM_GETLINK does, and a host moving many guests holds it often).
 */
#ifndef ROAM6_NETDEV_H
#define ROAM6_NETDEV_H

#include <node_api.h>

/* JS: ifIndex(name: string): number — the ifindex in the caller's namespace, 0 when none. */
napi_status netdev_register(napi_env env, napi_value exports);

#endif /* ROAM6_NETDEV_H */
