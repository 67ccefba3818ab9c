/* Interface lookups without rtnetlink. See netdev.h. */
#include "netdev.h"

#include <errno.h>
#include <net/if.h>

#include "errors.h"
#include "js.h"

/*
 * ifIndex(name: string): number. if_nametoindex(3): ioctl(SIOCGIFINDEX) on a throwaway
 * socket, resolved under RCU in the kernel (dev_get_by_name_rcu), not under RTNL. 0 when
 * there is no such interface (ENODEV); other failures throw.
 */
static napi_value api_if_index(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  char name[IF_NAMESIZE];
  unsigned int index;

  if (!js_get_args(env, info, 1, 1, argv, NULL) || !js_arg_string(env, argv[0], "name", name, sizeof name)) return NULL;
  errno = 0;
  index = if_nametoindex(name);
  if (index == 0 && errno != 0 && errno != ENODEV && errno != ENXIO) return errors_throw_system(env, errno, "if_nametoindex", name);
  NAPI_CALL(env, napi_create_uint32(env, index, &result));
  return result;
}

napi_status netdev_register(napi_env env, napi_value exports) {
  static const struct js_function fns[] = {
    { "ifIndex", api_if_index },
  };
  return js_export_functions(env, exports, fns, JS_COUNT(fns));
}
