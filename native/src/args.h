/*
 * Argument checking for the JS-facing functions.
 *
 * Every helper returns true on success. On failure it has thrown (TypeError/RangeError, or
 * whatever N-API left pending) and the caller must return NULL straight away.
 */
#ifndef ROAM6_ARGS_H
#define ROAM6_ARGS_H

#include <netinet/in.h>
#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fetch up to `max` arguments (missing ones read as undefined); require at least `min`. */
bool args_get(napi_env env, napi_callback_info info, size_t min, size_t max,
              napi_value *argv, napi_value *this_arg);

/* undefined or null. */
bool args_is_absent(napi_env env, napi_value value);

/* A number with an integral value in [lo, hi]. */
bool args_int(napi_env env, napi_value value, const char *name, int64_t lo, int64_t hi, int64_t *out);

/* A file descriptor: integer in [0, INT_MAX]. */
bool args_fd(napi_env env, napi_value value, int *fd);

/* Bytes of a Uint8Array (a Buffer is one). The pointer stays valid while `value` is alive
 * and is only used synchronously. */
bool args_bytes(napi_env env, napi_value value, const char *name, void **data, size_t *len);

/* A 16-byte Uint8Array holding an IPv6 address in network order. */
bool args_in6(napi_env env, napi_value value, const char *name, struct in6_addr *out);

/* A string that fits `size` bytes including the NUL (e.g. IFNAMSIZ for interface names). */
bool args_string(napi_env env, napi_value value, const char *name, char *buf, size_t size);

/* obj[key], with *present = false for undefined/null. */
bool args_property(napi_env env, napi_value obj, const char *key, napi_value *out, bool *present);

/* A fresh Uint8Array holding a copy of `len` bytes. */
napi_value args_new_u8(napi_env env, const void *bytes, size_t len);

#endif /* ROAM6_ARGS_H */
