/**
 * A raw Mobility Header socket bound to one local address that survives receive errors:
 * RawSocket closes itself on a receive error (they are not transient on raw sockets), so the
 * listener reopens it after a short pause. If it cannot reopen for `giveUpMs`, `onFatal` runs
 * (the daemons exit, and their supervisor restarts them) — never a silent deaf socket.
 */
import { formatIpv6, type Ipv6Address } from '../wire/ipv6.js';
import type { Logger } from '../ports/log.js';
import type { MhSenderPort } from '../ports/mobility.js';
import { IPPROTO_MH, RawSocket, type RawRemoteInfo } from '../platform/linux/raw-socket.js';

export interface MhListener extends MhSenderPort {
  close(): void;
}

export function listenMh(
  address: Ipv6Address,
  onMessage: (msg: Buffer, rinfo: RawRemoteInfo, reply: (mh: Uint8Array, to: Ipv6Address) => void) => void,
  log: Logger,
  onFatal: (err: Error) => void,
  opts: { retryMs?: number; giveUpMs?: number } = {},
): MhListener {
  const retryMs = opts.retryMs ?? 200;
  const giveUpMs = opts.giveUpMs ?? 10_000;
  let sock: RawSocket | null = null;
  let closed = false;
  let failingSince = 0;

  const open = (): void => {
    if (closed) return;
    try {
      const s = RawSocket.open({ protocol: IPPROTO_MH, bindAddress: address, recvBufferSize: 4 << 20 });
      sock = s;
      failingSince = 0;
      s.on('message', (msg, rinfo) => onMessage(msg, rinfo, (mh, to) => send(mh, to, rinfo.localAddress)));
      s.on('error', (err) => {
        sock = null;
        log.error({ address: formatIpv6(address), err: err.message }, 'mobility header socket failed; reopening');
        setTimeout(open, retryMs).unref();
      });
    } catch (e) {
      failingSince ||= Date.now();
      if (Date.now() - failingSince > giveUpMs) return onFatal(e as Error);
      log.warn({ address: formatIpv6(address), err: String(e) }, 'cannot open the mobility header socket; retrying');
      setTimeout(open, retryMs).unref();
    }
  };

  const send = (mh: Uint8Array, dst: Ipv6Address, src: Ipv6Address): void => {
    if (!sock) throw new Error(`mobility header socket on ${formatIpv6(address)} is reopening`);
    sock.send(mh, dst, src);
  };

  open();
  if (!sock) throw new Error(`cannot open a raw mobility header socket on ${formatIpv6(address)}`);
  return {
    send,
    close() {
      closed = true;
      sock?.close();
      sock = null;
    },
  };
}
