/**
 * `roam6 mh decode HEX|-` and `roam6 mh encode JSON|-`: the operator's Mobility Header tool.
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { tryParseIpv6 } from '../../wire/ipv6.js';
import { decodeMobilityHeader, encodeMobilityHeader, WireError } from '../../wire/mh/index.js';
import { CliError } from '../errors.js';
import { messageFromJson, messageToJson } from '../mh-json.js';

function argOrStdin(arg: string): string {
  return arg === '-' ? readFileSync(0, 'utf8') : arg;
}

function hexToBytes(text: string): Uint8Array {
  const clean = text.replace(/^0x/i, '').replace(/[\s:]/g, '');
  if (!/^([0-9a-fA-F]{2})*$/.test(clean)) throw new CliError('bad-input: not hex octets (pairs of 0-9a-f)');
  return Uint8Array.from(Buffer.from(clean, 'hex'));
}

function address(text: string | undefined, flag: string): Uint8Array | undefined {
  if (text === undefined) return undefined;
  const a = tryParseIpv6(text);
  if (!a) throw new CliError(`${flag}: not an IPv6 address: ${text}`);
  return a;
}

export function registerMhCommands(program: Command): void {
  const mh = program.command('mh').description('decode and encode Mobility Header messages (debugging)');

  mh.command('decode')
    .description('decode a Mobility Header (hex, or - for stdin) and print it as JSON')
    .argument('<hex>', 'the MH octets in hex, starting at the Payload Proto octet; - reads stdin')
    .option('--src <addr>', 'IPv6 source, to verify the checksum')
    .option('--dst <addr>', 'IPv6 destination, to verify the checksum')
    .action((hexArg: string, opts: { src?: string; dst?: string }) => {
      const bytes = hexToBytes(argOrStdin(hexArg));
      const src = address(opts.src, '--src');
      const dst = address(opts.dst, '--dst');
      if ((src === undefined) !== (dst === undefined)) throw new CliError('--src and --dst go together');
      const r = decodeMobilityHeader(bytes, src && dst ? { checksum: { src, dst } } : {});
      if (!r.ok) throw new CliError(r.error.message, 2);
      process.stdout.write(`${JSON.stringify(messageToJson(r.value, bytes), null, 2)}\n`);
    });

  mh.command('encode')
    .description('encode a message given as JSON (the decode format), print hex')
    .argument('<json>', 'the message as JSON; - reads stdin')
    .option('--src <addr>', 'IPv6 source; with --dst, fills in the checksum')
    .option('--dst <addr>', 'IPv6 destination')
    .action((jsonArg: string, opts: { src?: string; dst?: string }) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(argOrStdin(jsonArg));
      } catch (e) {
        throw new CliError(`bad-input: not JSON: ${(e as Error).message}`, 2);
      }
      const src = address(opts.src, '--src');
      const dst = address(opts.dst, '--dst');
      if ((src === undefined) !== (dst === undefined)) throw new CliError('--src and --dst go together');
      try {
        const msg = messageFromJson(parsed);
        const out = encodeMobilityHeader(msg, src && dst ? { checksum: { src, dst } } : {});
        process.stdout.write(`${Buffer.from(out).toString('hex')}\n`);
      } catch (e) {
        if (e instanceof WireError) throw new CliError(e.message, 2);
        throw e;
      }
    });
}
