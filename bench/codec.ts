/**
 * `npm run bench:codec`: encode and decode rates for an authenticated Binding Update carrying
 * MNP, MN-ID and MN-HA authentication options, on one core (this process). Target ≥ 500,000
 * decodes per second.
 */
import { parseIpv6, parsePrefix } from '../src/wire/ipv6.js';
import { MhOptionType, MhType, buFlags, decodeMobilityHeader, encodeMobilityHeader, type BindingUpdate } from '../src/wire/mh/index.js';
import { authOptionFor, mnHaAuthenticator, verifyMnHa } from '../src/security/mn-ha-auth.js';
import { fmt, rate, writeSection } from './report.js';

const coa = parseIpv6('2001:db8:a::2');
const sa = { spi: 256, algorithm: 'hmac-sha1-96' as const, key: new Uint8Array(16).fill(9) };
const bu: BindingUpdate = {
  type: MhType.BindingUpdate,
  seq: 1,
  flags: buFlags({ ack: true, home: true, router: true }),
  lifetimeUnits: 100,
  options: [
    { type: MhOptionType.MobileNodeIdentifier, subtype: 1, identifier: new TextEncoder().encode('guest-000001') },
    { type: MhOptionType.MobileNetworkPrefix, prefix: parsePrefix('2001:db8:100::/64') },
    authOptionFor(sa),
  ],
};
const auth = (mh: Uint8Array, c: number) => mnHaAuthenticator(sa, coa, coa, mh, c);
const bytes = encodeMobilityHeader(bu, { authenticate: auth });

let sink = 0;
const decode = rate(() => {
  const r = decodeMobilityHeader(bytes);
  if (r.ok && r.value.type !== 'unknown') sink += r.value.type;
});
const encode = rate(() => {
  sink += encodeMobilityHeader(bu).length;
});
const encodeSigned = rate(() => {
  sink += encodeMobilityHeader(bu, { authenticate: auth }).length;
});
const decodeVerify = rate(() => {
  const r = decodeMobilityHeader(bytes);
  if (r.ok && r.value.type === MhType.BindingUpdate) {
    const o = r.value.options[2];
    if (o && o.type === MhOptionType.MobilityMessageAuthentication && verifyMnHa(sa, coa, coa, bytes, o)) sink++;
  }
});
if (sink < 0) console.log(sink);

const results = { messageOctets: bytes.length, decodePerSec: decode, encodePerSec: encode, encodeWithHmacPerSec: encodeSigned, decodeAndVerifyPerSec: decodeVerify, targetDecodePerSec: 500_000 };
console.log(results);
writeSection(
  'codec',
  'Mobility Header codec',
  'npm run bench:codec',
  `Binding Update with MN-ID, MNP and MN-HA (HMAC-SHA1-96) options, ${bytes.length} octets, one core.

| operation | per second | target |
|---|---:|---:|
| decode | ${fmt(decode)} | ≥ 500,000 (${(decode / 500_000).toFixed(2)}×) |
| encode (no MAC) | ${fmt(encode)} | |
| encode + HMAC-SHA1-96 | ${fmt(encodeSigned)} | |
| decode + verify HMAC | ${fmt(decodeVerify)} | |`,
  results,
);
