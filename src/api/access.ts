/**
 * Who may use the HA's API. Reads (every GET, the web page, /metrics, /events) are open to
 * loopback, to the unix socket, to the networks in `api.readNetworks`, and to anyone with the
 * bearer token. Writes always need the bearer token, whatever the source.
 */
import { BlockList, isIPv4 } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import type { NetworkPrefix } from '../config/ha-config.js';

export class AccessPolicy {
  private readonly networks = new BlockList();
  private readonly hasNetworks: boolean;

  constructor(readNetworks: readonly NetworkPrefix[], private readonly token: string | undefined) {
    for (const n of readNetworks) this.networks.addSubnet(n.address, n.length, n.family);
    this.hasNetworks = readNetworks.length > 0;
  }

  get writesEnabled(): boolean {
    return this.token !== undefined;
  }

  /** May a request from `remote` (undefined: a unix socket) read without the token? */
  sourceMayRead(remote: string | undefined): boolean {
    if (remote === undefined || remote === '') return true;
    const v4 = remote.startsWith('::ffff:') && isIPv4(remote.slice(7)) ? remote.slice(7) : isIPv4(remote) ? remote : null;
    if (v4 !== null) return v4.startsWith('127.') || (this.hasNetworks && this.networks.check(v4, 'ipv4'));
    if (remote === '::1') return true;
    return this.hasNetworks && this.networks.check(remote, 'ipv6');
  }

  /** Does the Authorization header carry the configured bearer token? */
  tokenValid(header: string | undefined): boolean {
    if (!this.token || !header?.startsWith('Bearer ')) return false;
    const given = Buffer.from(header.slice(7));
    const want = Buffer.from(this.token);
    return given.length === want.length && timingSafeEqual(given, want);
  }
}
