/*
 * JS error objects for the addon.
 *
 * System errors mirror Node's own (e.g. what dgram's bind() throws):
 *   message  "<syscall> <CODE>[ <detail>]"   e.g. "bind EADDRNOTAVAIL 2001:db8::dead"
 *   errno    negative errno                  e.g. -99
 *   code     errno name                      e.g. "EADDRNOTAVAIL"
 *   syscall  failing call                    e.g. "bind"
 * The TypeScript side (src/platform/linux/native.ts) re-types them as SystemError.
 *
 * Every throw helper returns NULL so a binding can end with `return errors_throw_...(...)`.
 */
#ifndef ROAM6_ERRORS_H
#define ROAM6_ERRORS_H

#include <node_api.h>

/* Build (not throw) a system error; `err` is a positive errno, `detail` may be NULL.
 * Returns NULL only if N-API itself failed (an exception is then pending). */
napi_value errors_make_system(napi_env env, int err, const char *syscall, const char *detail);

napi_value errors_throw_system(napi_env env, int err, const char *syscall, const char *detail);

/* TypeError with code ERR_INVALID_ARG_TYPE / RangeError with ERR_OUT_OF_RANGE, like Node's
 * argument validation. */
napi_value errors_throw_type(napi_env env, const char *message);
napi_value errors_throw_range(napi_env env, const char *message);

/* Plain Error (code ERR_ROAM6_NATIVE) for misuse that is neither a type nor an errno. */
napi_value errors_throw_plain(napi_env env, const char *message);

/* Report a failed N-API call: keeps an already pending exception, else throws one naming `what`. */
napi_value errors_throw_napi(napi_env env, const char *what);

/* Evaluate an N-API call; on failure throw (unless already pending) and return NULL. */
#define NAPI_CALL(env, call)                          \
  do {                                                \
    if ((call) != napi_ok) {                          \
      return errors_throw_napi((env), #call);         \
    }                                                 \
  } while (0)

#endif /* ROAM6_ERRORS_H */
