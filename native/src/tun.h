/*
 * TUN (layer 3) and TAP (layer 2) devices from /dev/net/tun.
 *
 * Always IFF_NO_PI: every read() returns exactly one packet (TUN: starting at the IP
 * header; TAP: at the Ethernet header) and every write() injects exactly one. The fd is
 * non-blocking and close-on-exec; reading and writing go through fdio.h. The device lives
 * in the network namespace of the opening process and disappears with its last fd unless
 * made persistent (which this module never does).
 */
#ifndef ROAM6_TUN_H
#define ROAM6_TUN_H

#include <net/if.h>
#include <node_api.h>

enum tun_mode { TUN_MODE_TUN, TUN_MODE_TAP };

/* Attach to (or create) device `name`; an empty name lets the kernel pick "tun%d"/"tap%d".
 * The name actually used is written to `actual`. Returns the fd, or -errno with
 * *failed_syscall set ("open" or "ioctl"); nothing is left open on failure. */
int tun_open(const char *name, enum tun_mode mode, char actual[IFNAMSIZ], const char **failed_syscall);

/* JS: tunOpen(name, mode: 'tun' | 'tap'): { fd, name } */
napi_status tun_register(napi_env env, napi_value exports);

#endif /* ROAM6_TUN_H */
