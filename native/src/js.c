/* Helpers at the JS boundary. See js.h. */
#include "js.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "errors.h"

static bool fail_type(napi_env env, const char *name, const char *expected) {
  char msg[128];
  snprintf(msg, sizeof msg, "The \"%s\" argument must be %s", name, expected);
  errors_throw_type(env, msg);
  return false;
}

static bool fail_napi(napi_env env, const char *what) {
  errors_throw_napi(env, what);
  return false;
}

bool js_get_args(napi_env env, napi_callback_info info, size_t min, size_t max,
              napi_value *argv, napi_value *this_arg) {
  size_t argc = max;
  if (napi_get_cb_info(env, info, &argc, argv, this_arg, NULL) != napi_ok)
    return fail_napi(env, "napi_get_cb_info");
  if (argc < min) {
    char msg[96];
    snprintf(msg, sizeof msg, "expected at least %zu arguments, got %zu", min, argc);
    errors_throw_type(env, msg);
    return false;
  }
  return true;
}

bool js_is_absent(napi_env env, napi_value value) {
  napi_valuetype t;
  if (napi_typeof(env, value, &t) != napi_ok) return false;
  return t == napi_undefined || t == napi_null;
}

bool js_arg_int(napi_env env, napi_value value, const char *name, int64_t lo, int64_t hi, int64_t *out) {
  napi_valuetype t;
  double d;
  if (napi_typeof(env, value, &t) != napi_ok) return fail_napi(env, "napi_typeof");
  if (t != napi_number) return fail_type(env, name, "of type number");
  if (napi_get_value_double(env, value, &d) != napi_ok) return fail_napi(env, "napi_get_value_double");
  if (!isfinite(d) || d != floor(d) || d < (double)lo || d > (double)hi) {
    char msg[160];
    snprintf(msg, sizeof msg, "The value of \"%s\" is out of range. It must be an integer >= %lld and <= %lld",
             name, (long long)lo, (long long)hi);
    errors_throw_range(env, msg);
    return false;
  }
  *out = (int64_t)d;
  return true;
}

bool js_arg_fd(napi_env env, napi_value value, int *fd) {
  int64_t v;
  if (!js_arg_int(env, value, "fd", 0, INT_MAX, &v)) return false;
  *fd = (int)v;
  return true;
}

bool js_arg_bytes(napi_env env, napi_value value, const char *name, void **data, size_t *len) {
  bool is_typed = false;
  napi_typedarray_type type;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok) return fail_napi(env, "napi_is_typedarray");
  if (!is_typed) return fail_type(env, name, "an instance of Buffer or Uint8Array");
  /* `data` already includes the view's byteOffset. */
  if (napi_get_typedarray_info(env, value, &type, len, data, NULL, NULL) != napi_ok)
    return fail_napi(env, "napi_get_typedarray_info");
  if (type != napi_uint8_array) return fail_type(env, name, "an instance of Buffer or Uint8Array");
  return true;
}

bool js_arg_in6(napi_env env, napi_value value, const char *name, struct in6_addr *out) {
  void *data;
  size_t len;
  if (!js_arg_bytes(env, value, name, &data, &len)) return false;
  if (len != sizeof *out) return fail_type(env, name, "a 16-byte IPv6 address");
  memcpy(out, data, sizeof *out);
  return true;
}

bool js_arg_string(napi_env env, napi_value value, const char *name, char *buf, size_t size) {
  napi_valuetype t;
  size_t needed;
  if (napi_typeof(env, value, &t) != napi_ok) return fail_napi(env, "napi_typeof");
  if (t != napi_string) return fail_type(env, name, "of type string");
  if (napi_get_value_string_utf8(env, value, NULL, 0, &needed) != napi_ok)
    return fail_napi(env, "napi_get_value_string_utf8");
  if (needed >= size) {
    char msg[128];
    snprintf(msg, sizeof msg, "The value of \"%s\" is out of range. It must be at most %zu bytes long",
             name, size - 1);
    errors_throw_range(env, msg);
    return false;
  }
  if (napi_get_value_string_utf8(env, value, buf, size, &needed) != napi_ok)
    return fail_napi(env, "napi_get_value_string_utf8");
  if (strlen(buf) != needed) return fail_type(env, name, "a string without NUL characters");
  return true;
}

bool js_get_property(napi_env env, napi_value obj, const char *key, napi_value *out, bool *present) {
  if (napi_get_named_property(env, obj, key, out) != napi_ok) return fail_napi(env, "napi_get_named_property");
  *present = !js_is_absent(env, *out);
  return true;
}

napi_value js_new_u8(napi_env env, const void *bytes, size_t len) {
  void *data;
  napi_value buffer, view;
  NAPI_CALL(env, napi_create_arraybuffer(env, len, &data, &buffer));
  if (len > 0) memcpy(data, bytes, len);
  NAPI_CALL(env, napi_create_typedarray(env, napi_uint8_array, len, buffer, 0, &view));
  return view;
}

napi_status js_export_functions(napi_env env, napi_value exports, const struct js_function *fns, size_t n) {
  for (size_t i = 0; i < n; i++) {
    napi_value f;
    napi_status s = napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
    if (s == napi_ok) s = napi_set_named_property(env, exports, fns[i].name, f);
    if (s != napi_ok) return s;
  }
  return napi_ok;
}
