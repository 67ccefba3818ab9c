/* TUN/TAP devices. See tun.h. */
#include "tun.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "js.h"
#include "errors.h"

/* ---- plain C ---------------------------------------------------------------------- */

int tun_open(const char *name, enum tun_mode mode, char actual[IFNAMSIZ], const char **failed_syscall) {
  struct ifreq ifr;
  int err;
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *failed_syscall = "open";
    return -errno;
  }

  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = (short)((mode == TUN_MODE_TAP ? IFF_TAP : IFF_TUN) | IFF_NO_PI);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    *failed_syscall = "ioctl";
    err = errno;
    close(fd);
    return -err;
  }
  memcpy(actual, ifr.ifr_name, IFNAMSIZ);
  actual[IFNAMSIZ - 1] = '\0';
  return fd;
}

/* ---- JS bindings ------------------------------------------------------------------ */

static bool parse_mode(napi_env env, napi_value value, enum tun_mode *mode) {
  char text[8];
  if (!js_arg_string(env, value, "mode", text, sizeof text)) return false;
  if (strcmp(text, "tun") == 0) *mode = TUN_MODE_TUN;
  else if (strcmp(text, "tap") == 0) *mode = TUN_MODE_TAP;
  else {
    errors_throw_type(env, "The \"mode\" argument must be 'tun' or 'tap'");
    return false;
  }
  return true;
}

/* tunOpen(name: string, mode: 'tun' | 'tap'): { fd: number, name: string } */
static napi_value api_tun_open(napi_env env, napi_callback_info info) {
  napi_value argv[2], result, fd_v, name_v;
  char name[IFNAMSIZ], actual[IFNAMSIZ];
  const char *syscall = NULL;
  enum tun_mode mode;
  int fd;

  if (!js_get_args(env, info, 2, 2, argv, NULL) || !js_arg_string(env, argv[0], "name", name, sizeof name) ||
      !parse_mode(env, argv[1], &mode))
    return NULL;

  fd = tun_open(name, mode, actual, &syscall);
  if (fd < 0) {
    char detail[IFNAMSIZ + 16];
    if (strcmp(syscall, "ioctl") == 0)
      snprintf(detail, sizeof detail, "TUNSETIFF %s", name);
    else
      snprintf(detail, sizeof detail, "/dev/net/tun");
    return errors_throw_system(env, -fd, syscall, detail);
  }
  /* From here on the fd must not leak if building the result fails. */
  if (napi_create_object(env, &result) != napi_ok || napi_create_int32(env, fd, &fd_v) != napi_ok ||
      napi_create_string_utf8(env, actual, NAPI_AUTO_LENGTH, &name_v) != napi_ok ||
      napi_set_named_property(env, result, "fd", fd_v) != napi_ok ||
      napi_set_named_property(env, result, "name", name_v) != napi_ok) {
    close(fd);
    return errors_throw_napi(env, "tunOpen result");
  }
  return result;
}

napi_status tun_register(napi_env env, napi_value exports) {
  static const struct js_function fns[] = {
    { "tunOpen", api_tun_open },
  };
  return js_export_functions(env, exports, fns, JS_COUNT(fns));
}
