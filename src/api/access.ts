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

  /** May a request from `remote` (undefined: a unix socket) read without the token? */
  sourceMayRead(remote: string | undefined): boolean {
    if (remote === undefined || remote === '') return true;
    const v4 = remote.startsWith('::ffff:') && isIPv4(remote.slice(7)) ? remote.slice(7) : isIPv4(remote) ? remote : null;
    if (v4 !== null) return v4.startsWith('127.') || (this.hasNetworks && this.networks.check(v4, 'ipv4'));
    if (remote === '::1') return true;
    return this.hasNetworks && this.networks.check(remote, 'ipv6');
  }

  /**
   * Why a write is refused, or null when the header carries the token. 401 when the API has no
   * token (writes are off), 403 otherwise; the message says what was wrong with the header
   * (never echoing it).
   */
  writeDenial(header: string | undefined): { status: 401 | 403; message: string } | null {
    if (!this.token) return { status: 401, message: 'write operations are disabled: no api.token configured' };
    if (this.tokenValid(header)) return null;
    const message =
      header === undefined || header === ''
        ? 'a bearer token is required: send "Authorization: Bearer <api.token>"'
        : !/^Bearer /.test(header)
          ? 'the Authorization header must be "Bearer <api.token>"'
          : 'the bearer token is not valid';
    return { status: 403, message };
  }

  /** Does the Authorization header carry the configured bearer token? */
  tokenValid(header: string | undefined): boolean {
    if (!this.token || !header?.startsWith('Bearer ')) return false;
    const given = Buffer.from(header.slice(7));
    const want = Buffer.from(this.token);
    return given.length === want.length && timingSafeEqual(given, want);
  }
}
