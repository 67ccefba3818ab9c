/* JS error objects shaped like Node's system errors. See errors.h. */
#include "errors.h"

#include <stdio.h>
#include <string.h>
#include <uv.h>

#define ERRNAME_MAX 64

/*
 * Name an errno the way Node does (uv_err_name: "EADDRNOTAVAIL", "ENOTSUP", ...). libuv
 * only knows the portable subset; for the rest (e.g. EBADFD, which a TUN fd returns once
 * its device is gone) fall back to glibc's own name rather than "Unknown system error".
 */
static void errno_name(int err, char *buf, size_t len) {
  uv_err_name_r(-err, buf, len);
  if (strncmp(buf, "Unknown", 7) != 0) return;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *name = strerrorname_np(err);
  if (name != NULL) snprintf(buf, len, "%s", name);
#endif
}

static napi_status set_string(napi_env env, napi_value obj, const char *key, const char *value) {
  napi_value v;
  napi_status s = napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v);
  return s == napi_ok ? napi_set_named_property(env, obj, key, v) : s;
}

napi_value errors_make_system(napi_env env, int err, const char *syscall, const char *detail) {
  char code[ERRNAME_MAX];
  char message[256];
  napi_value code_v, message_v, errno_v, error;

  errno_name(err, code, sizeof code);
  if (detail != NULL && detail[0] != '\0')
    snprintf(message, sizeof message, "%s %s %s", syscall, code, detail);
  else
    snprintf(message, sizeof message, "%s %s", syscall, code);

  /* napi_create_error sets .code from its second argument. */
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_v) != napi_ok ||
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &message_v) != napi_ok ||
      napi_create_error(env, code_v, message_v, &error) != napi_ok ||
      napi_create_int32(env, -err, &errno_v) != napi_ok ||
      napi_set_named_property(env, error, "errno", errno_v) != napi_ok ||
      set_string(env, error, "syscall", syscall) != napi_ok) {
    errors_throw_napi(env, "errors_make_system");
    return NULL;
  }
  return error;
}

napi_value errors_throw_system(napi_env env, int err, const char *syscall, const char *detail) {
  napi_value error = errors_make_system(env, err, syscall, detail);
  if (error != NULL) napi_throw(env, error);
  return NULL;
}

napi_value errors_throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return NULL;
}

napi_value errors_throw_range(napi_env env, const char *message) {
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
  return NULL;
}

napi_value errors_throw_plain(napi_env env, const char *message) {
  napi_throw_error(env, "ERR_ROAM6_NATIVE", message);
  return NULL;
}

napi_value errors_throw_napi(napi_env env, const char *what) {
  /* Read the error info first: the calls below overwrite it. */
  const napi_extended_error_info *info = NULL;
  const char *reason = "unknown N-API failure";
  if (napi_get_last_error_info(env, &info) == napi_ok && info != NULL && info->error_message != NULL)
    reason = info->error_message;

  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return NULL;

  char message[256];
  snprintf(message, sizeof message, "roam6_native: %s failed: %s", what, reason);
  napi_throw_error(env, "ERR_ROAM6_NAPI", message);
  return NULL;
}
