/* fd readability on the Node event loop. See poller.h. */
#include "poller.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>
#include <uv.h>

#include "js.h"
#include "errors.h"

/*
 * Lifetime. The struct is freed only when both of its users are done with it:
 *   - the JS wrapper object: its finalizer sets `finalized`;
 *   - libuv, which may touch the handle until its close callback sets `handle_closed`.
 * poller_shutdown() (from close(), the finalizer or environment teardown) calls uv_close;
 * whichever of the close callback and the finalizer runs last frees. The environment
 * cleanup hook holds a pointer too, so the close callback removes it before any free.
 */
typedef struct poller {
  uv_poll_t handle;
  napi_env env;
  napi_ref callback;                           /* strong; NULL once shut down */
  napi_async_context async_context;            /* NULL once shut down */
  napi_async_cleanup_hook_handle cleanup_hook; /* NULL once removed */
  int fd;                                      /* owned; -1 once closed */
  bool shut_down;                              /* poller_shutdown() ran */
  bool handle_closed;                          /* libuv is done with `handle` */
  bool finalized;                              /* the JS wrapper is gone */
} poller_t;

static void on_handle_closed(uv_handle_t *handle) {
  poller_t *p = handle->data;
  p->handle_closed = true;
  if (p->cleanup_hook != NULL) {
    napi_remove_async_cleanup_hook(p->cleanup_hook);
    p->cleanup_hook = NULL;
  }
  if (p->finalized) free(p);
}

/* Stop polling, close the fd and drop the JS references. Idempotent. */
static void poller_shutdown(poller_t *p) {
  if (p->shut_down) return;
  p->shut_down = true;
  /* uv_close stops the watcher at once (the fd leaves the epoll set and pending events for
   * it are discarded), so closing the fd right after cannot confuse libuv even if the
   * number is reused. The handle memory stays in use until on_handle_closed. */
  uv_close((uv_handle_t *)&p->handle, on_handle_closed);
  if (p->fd >= 0) {
    close(p->fd);
    p->fd = -1;
  }
  if (p->callback != NULL) {
    napi_delete_reference(p->env, p->callback);
    p->callback = NULL;
  }
  if (p->async_context != NULL) {
    napi_async_destroy(p->env, p->async_context);
    p->async_context = NULL;
  }
}

/* Environment teardown (worker exit, process exit): release the handle so the loop can
 * close. The hook is removed once libuv confirms, in on_handle_closed. */
static void on_env_cleanup(napi_async_cleanup_hook_handle hook, void *arg) {
  poller_t *p = arg;
  p->cleanup_hook = hook;
  poller_shutdown(p);
}

static void poller_finalize(napi_env env, void *data, void *hint) {
  poller_t *p = data;
  (void)env;
  (void)hint;
  p->finalized = true;
  poller_shutdown(p);
  if (p->handle_closed) free(p);
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  poller_t *p = handle->data;
  napi_handle_scope scope;
  napi_value callback, global, result, argv[1];
  size_t argc = 0;
  (void)events;

  if (p->shut_down || napi_open_handle_scope(p->env, &scope) != napi_ok) return;

  if (napi_get_reference_value(p->env, p->callback, &callback) == napi_ok && callback != NULL &&
      napi_get_global(p->env, &global) == napi_ok) {
    /* libuv reports errors as -errno and has already stopped the watcher. */
    if (status < 0 && (argv[0] = errors_make_system(p->env, -status, "poll", NULL)) != NULL) argc = 1;
    if (napi_make_callback(p->env, p->async_context, global, callback, argc, argv, &result) ==
        napi_pending_exception) {
      /* A throwing listener is an uncaught exception, as in any Node I/O callback. */
      napi_value exception;
      if (napi_get_and_clear_last_exception(p->env, &exception) == napi_ok)
        napi_fatal_exception(p->env, exception);
    }
  }
  napi_close_handle_scope(p->env, scope);
}

/* Fetch `this`'s poller; throws (and returns NULL) if `this` is not a Poller. */
static poller_t *unwrap_this(napi_env env, napi_callback_info info) {
  napi_value self;
  void *data = NULL;
  size_t argc = 0;
  if (napi_get_cb_info(env, info, &argc, NULL, &self, NULL) != napi_ok ||
      napi_unwrap(env, self, &data) != napi_ok || data == NULL) {
    errors_throw_type(env, "Illegal invocation: not a Poller");
    return NULL;
  }
  return data;
}

/* new Poller(fd: number, onReadable: (err?: Error) => void) */
static napi_value api_poller_new(napi_env env, napi_callback_info info) {
  napi_value argv[2], self, new_target, name;
  napi_valuetype callback_type;
  uv_loop_t *loop;
  poller_t *p;
  int fd, rc;

  NAPI_CALL(env, napi_get_new_target(env, info, &new_target));
  if (new_target == NULL) return errors_throw_type(env, "Class constructor Poller cannot be invoked without 'new'");
  if (!js_get_args(env, info, 2, 2, argv, &self) || !js_arg_fd(env, argv[0], &fd)) return NULL;
  NAPI_CALL(env, napi_typeof(env, argv[1], &callback_type));
  if (callback_type != napi_function) return errors_throw_type(env, "The \"onReadable\" argument must be of type function");
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));

  p = calloc(1, sizeof *p);
  if (p == NULL) return errors_throw_system(env, ENOMEM, "calloc", NULL);
  p->env = env;
  p->fd = -1; /* not owned until everything below succeeded */
  p->handle.data = p;

  rc = uv_poll_init(loop, &p->handle, fd);
  if (rc < 0) {
    free(p); /* uv_poll_init failed: libuv never registered the handle */
    return errors_throw_system(env, -rc, "uv_poll_init", NULL);
  }
  /* From here the handle is registered with libuv and may only be released through
   * uv_close; on failure poller_shutdown does that and the close callback frees. */
  if (napi_create_string_utf8(env, "roam6:Poller", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_reference(env, argv[1], 1, &p->callback) != napi_ok ||
      napi_async_init(env, self, name, &p->async_context) != napi_ok ||
      napi_wrap(env, self, p, poller_finalize, NULL, NULL) != napi_ok) {
    errors_throw_napi(env, "Poller constructor");
    p->finalized = true; /* no wrapper will ever finalize it */
    poller_shutdown(p);  /* fd is still -1: the caller keeps ownership */
    return NULL;
  }
  p->fd = fd;
  /* Teardown safety net; failure only loses that, so it is not fatal. */
  if (napi_add_async_cleanup_hook(env, on_env_cleanup, p, &p->cleanup_hook) != napi_ok) p->cleanup_hook = NULL;
  return self;
}

/* start(): watch for readability. Throws EBADF once closed. */
static napi_value api_poller_start(napi_env env, napi_callback_info info) {
  poller_t *p = unwrap_this(env, info);
  int rc;
  if (p == NULL) return NULL;
  if (p->shut_down) return errors_throw_system(env, EBADF, "uv_poll_start", "poller is closed");
  rc = uv_poll_start(&p->handle, UV_READABLE, on_poll);
  if (rc < 0) return errors_throw_system(env, -rc, "uv_poll_start", NULL);
  return NULL;
}

/* stop(): stop watching; no-op once closed. */
static napi_value api_poller_stop(napi_env env, napi_callback_info info) {
  poller_t *p = unwrap_this(env, info);
  if (p != NULL && !p->shut_down) uv_poll_stop(&p->handle);
  return NULL;
}

static napi_value api_poller_ref(napi_env env, napi_callback_info info) {
  poller_t *p = unwrap_this(env, info);
  if (p != NULL && !p->shut_down) uv_ref((uv_handle_t *)&p->handle);
  return NULL;
}

static napi_value api_poller_unref(napi_env env, napi_callback_info info) {
  poller_t *p = unwrap_this(env, info);
  if (p != NULL && !p->shut_down) uv_unref((uv_handle_t *)&p->handle);
  return NULL;
}

/* close(): stop, close the fd, release the callback. Safe to call again, also from inside
 * onReadable. */
static napi_value api_poller_close(napi_env env, napi_callback_info info) {
  poller_t *p = unwrap_this(env, info);
  if (p != NULL) poller_shutdown(p);
  return NULL;
}

napi_status poller_register(napi_env env, napi_value exports) {
  const napi_property_descriptor methods[] = {
    { "start", NULL, api_poller_start, NULL, NULL, NULL, napi_default_method, NULL },
    { "stop", NULL, api_poller_stop, NULL, NULL, NULL, napi_default_method, NULL },
    { "ref", NULL, api_poller_ref, NULL, NULL, NULL, napi_default_method, NULL },
    { "unref", NULL, api_poller_unref, NULL, NULL, NULL, napi_default_method, NULL },
    { "close", NULL, api_poller_close, NULL, NULL, NULL, napi_default_method, NULL },
  };
  napi_value cls;
  napi_status s = napi_define_class(env, "Poller", NAPI_AUTO_LENGTH, api_poller_new, NULL,
                                    JS_COUNT(methods), methods, &cls);
  return s == napi_ok ? napi_set_named_property(env, exports, "Poller", cls) : s;
}
