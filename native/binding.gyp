# roam6 native addon: fds, bytes and errno only (see docs/native.md).
# Plain C against <node_api.h>. Build offline with nodedir=/usr (.npmrc), e.g.
#   node-gyp rebuild -C native --nodedir=/usr
{
  "targets": [
    {
      "target_name": "roam6_native",
      "sources": [
        "src/addon.c",
        "src/js.c",
        "src/errors.c",
        "src/fdio.c",
        "src/forwarder.c",
        "src/lpm.c",
        "src/netdev.c",
        "src/poller.c",
        "src/rawsock.c",
        "src/tun.c"
      ],
      "defines": [
        "_GNU_SOURCE",
        # Pin the N-API level we use (8: async cleanup hooks), so a newer
        # Node header cannot silently widen the ABI we depend on.
        "NAPI_VERSION=8"
      ],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-fvisibility=hidden"],
      "configurations": {
        "Release": {
          "cflags!": ["-O3"],
          "cflags": ["-O2"]
        }
      }
    }
  ]
}
