/*
 * Whole-packet read/write on a non-blocking fd (TUN/TAP), and close.
 *
 * fdio_read/fdio_write are plain C (usable off the JS thread) and return bytes or -errno.
 */
#ifndef ROAM6_FDIO_H
#define ROAM6_FDIO_H

#include <node_api.h>
#include <stddef.h>
#include <sys/types.h>

/* One read(); -EAGAIN when nothing is queued. */
ssize_t fdio_read(int fd, void *buf, size_t cap);

/* One write(); a TUN/TAP write injects exactly one packet. */
ssize_t fdio_write(int fd, const void *data, size_t len);

/* JS: read(fd, buf): number | null (EAGAIN) / write(fd, data): number / close(fd): void */
napi_status fdio_register(napi_env env, napi_value exports);

#endif /* ROAM6_FDIO_H */
