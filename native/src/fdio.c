/* Whole-packet fd I/O. See fdio.h. */
#include "fdio.h"

#include <errno.h>
#include <unistd.h>

#include "js.h"
#include "errors.h"

/* ---- plain C ---------------------------------------------------------------------- */

ssize_t fdio_read(int fd, void *buf, size_t cap) {
  ssize_t n;
  do n = read(fd, buf, cap);
  while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : n;
}

ssize_t fdio_write(int fd, const void *data, size_t len) {
  ssize_t n;
  do n = write(fd, data, len);
  while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : n;
}

/* ---- JS bindings ------------------------------------------------------------------ */

/* read(fd: number, buf: Uint8Array): number | null */
static napi_value api_read(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  void *buf;
  size_t cap;
  ssize_t n;
  int fd;

  if (!js_get_args(env, info, 2, 2, argv, NULL) || !js_arg_fd(env, argv[0], &fd) ||
      !js_arg_bytes(env, argv[1], "buf", &buf, &cap))
    return NULL;
  n = fdio_read(fd, buf, cap);
  if (n == -EAGAIN) { /* == EWOULDBLOCK on Linux */
    NAPI_CALL(env, napi_get_null(env, &result));
    return result;
  }
  if (n < 0) return errors_throw_system(env, (int)-n, "read", NULL);
  NAPI_CALL(env, napi_create_int64(env, n, &result));
  return result;
}

/* write(fd: number, data: Uint8Array): number */
static napi_value api_write(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  void *data;
  size_t len;
  ssize_t n;
  int fd;

  if (!js_get_args(env, info, 2, 2, argv, NULL) || !js_arg_fd(env, argv[0], &fd) ||
      !js_arg_bytes(env, argv[1], "data", &data, &len))
    return NULL;
  n = fdio_write(fd, data, len);
  if (n < 0) return errors_throw_system(env, (int)-n, "write", NULL);
  NAPI_CALL(env, napi_create_int64(env, n, &result));
  return result;
}

/* close(fd: number): void. For fds never handed to a Poller (which owns and closes its fd). */
static napi_value api_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;

  if (!js_get_args(env, info, 1, 1, argv, NULL) || !js_arg_fd(env, argv[0], &fd)) return NULL;
  /* On Linux the fd is released even when close() reports EINTR; never retry. */
  if (close(fd) < 0 && errno != EINTR) return errors_throw_system(env, errno, "close", NULL);
  return NULL;
}

napi_status fdio_register(napi_env env, napi_value exports) {
  static const struct js_function fns[] = {
    { "read", api_read },
    { "write", api_write },
    { "close", api_close },
  };
  return js_export_functions(env, exports, fns, JS_COUNT(fns));
}
