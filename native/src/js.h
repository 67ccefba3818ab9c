/*
 * Small helpers at the JS boundary: argument checking, value creation, exporting functions.
 *
 * The bool helpers return true on success. On failure they have thrown (TypeError,
 * RangeError, or whatever N-API left pending) and the caller must return NULL at once.
 */
#ifndef ROAM6_JS_H
#define ROAM6_JS_H

#include <netinet/in.h>
#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fetch up to `max` arguments (missing ones read as undefined); require at least `min`. */
bool js_get_args(napi_env env, napi_callback_info info, size_t min, size_t max,
              napi_value *argv, napi_value *this_arg);

/* undefined or null. */
bool js_is_absent(napi_env env, napi_value value);

/* A number with an integral value in [lo, hi]. */
bool js_arg_int(napi_env env, napi_value value, const char *name, int64_t lo, int64_t hi, int64_t *out);

/* A file descriptor: integer in [0, INT_MAX]. */
bool js_arg_fd(napi_env env, napi_value value, int *fd);

/* Bytes of a Uint8Array (a Buffer is one). The pointer stays valid while `value` is alive
 * and is only used synchronously. */
bool js_arg_bytes(napi_env env, napi_value value, const char *name, void **data, size_t *len);

/* A 16-byte Uint8Array holding an IPv6 address in network order. */
bool js_arg_in6(napi_env env, napi_value value, const char *name, struct in6_addr *out);

/* A string that fits `size` bytes including the NUL (e.g. IFNAMSIZ for interface names). */
bool js_arg_string(napi_env env, napi_value value, const char *name, char *buf, size_t size);

/* obj[key], with *present = false for undefined/null. */
bool js_get_property(napi_env env, napi_value obj, const char *key, napi_value *out, bool *present);

/* A fresh Uint8Array holding a copy of `len` bytes. */
napi_value js_new_u8(napi_env env, const void *bytes, size_t len);

struct js_function {
  const char *name;
  napi_callback fn;
};

/* Define named functions on `exports` (named, so they read well in stack traces). */
napi_status js_export_functions(napi_env env, napi_value exports, const struct js_function *fns, size_t n);

#define JS_COUNT(array) (sizeof(array) / sizeof((array)[0]))

#endif /* ROAM6_JS_H */
