/*
 * Poller: readability of one fd on the Node event loop (uv_poll), for any fd the addon
 * opens (raw sockets, TUN/TAP).
 *
 * JS: new Poller(fd, onReadable)   takes ownership of fd (only if the constructor succeeds)
 *       .start() / .stop()         watch / stop watching for readability
 *       .ref() / .unref()          keep / don't keep the event loop alive (like dgram)
 *       .close()                   stop for good and close the fd; idempotent
 *
 * onReadable(err?) runs via napi_make_callback, so process.nextTick and promise jobs
 * queued by it run straight after, as for any Node I/O callback. It is level-triggered:
 * JS should drain the fd (read until EAGAIN) or it is called again on the next loop turn.
 * err is set (a system error, syscall "poll") when the kernel reported an error on the fd;
 * polling has then stopped.
 *
 * While open, the Poller holds a strong reference to onReadable. When onReadable closes
 * over the Poller's owner (as RawSocket and TunDevice do), an open-but-forgotten socket
 * stays alive and keeps delivering, as Node's own handles do; close() releases it. A
 * Poller whose JS object is garbage-collected is closed (fd included) by its finalizer.
 */
#ifndef ROAM6_POLLER_H
#define ROAM6_POLLER_H

#include <node_api.h>

napi_status poller_register(napi_env env, napi_value exports);

#endif /* ROAM6_POLLER_H */
