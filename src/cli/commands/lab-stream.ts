/**
 * `roam6 lab stream send|recv` and `roam6 lab sample`: the measurement tools the lab runs inside
 * its namespaces (src/lab/stream.ts, src/lab/traffic-sampler.ts). Both ends of a stream use the
 * same commands, so guest→CN and CN→guest are measured the same way.
 *
 * Each command prints JSON lines on stdout: an event when it is ready ("sending", "listening",
 * "sampling") and a summary ("done") when it stops. SIGTERM and SIGINT stop it cleanly (logs
 * flushed, exit code 0).
 */
import type { Command } from 'commander';

import { receiveStream, sendStream, STREAM_HEADER_LENGTH, STREAM_MAX_SIZE } from '../../lab/stream.js';
import { runTrafficSampler } from '../../lab/traffic-sampler.js';
import { CliError } from '../errors.js';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

function num(name: string, v: string | undefined, check: (n: number) => boolean, what: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || !check(n)) throw new CliError(`${name}: expected ${what} (got ${JSON.stringify(v)})`, 2);
  return n;
}
const isPort = (n: number): boolean => Number.isInteger(n) && n >= 1 && n <= 65535;
const isPositive = (n: number): boolean => n > 0;
const isCount = (n: number): boolean => Number.isInteger(n) && n >= 1;
const isU32 = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 0xffffffff;

const emit = (event: object): void => {
  process.stdout.write(`${JSON.stringify(event)}\n`);
};

/** Runs `fn` with an AbortSignal that SIGTERM/SIGINT trigger; the handlers are removed afterwards. */
async function untilSignal<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  try {
    return await fn(ac.signal);
  } catch (e) {
    if (e instanceof RangeError || (e as NodeJS.ErrnoException).code === 'EADDRINUSE' || (e as NodeJS.ErrnoException).code === 'EADDRNOTAVAIL') {
      throw new CliError((e as Error).message, 2);
    }
    throw e;
  } finally {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
  }
}

/** Adds `stream send`, `stream recv` and `sample` under the given `lab` command. */
export function registerLabStreamCommands(lab: Command): void {
  const stream = lab
    .command('stream')
    .description('paced UDP stream with sequence numbers (the paper\'s 520 kbit/s), and its receiver');

  stream
    .command('send')
    .description('send a paced stream; prints {"event":"done",sent,sendErrors,…} at the end')
    .requiredOption('--to <addr>', 'receiver address')
    .requiredOption('--port <n>', 'receiver UDP port')
    .option('--rate-kbit <n>', 'payload rate in kbit/s', '520')
    .option('--size <bytes>', `UDP payload per packet (${STREAM_HEADER_LENGTH}…${STREAM_MAX_SIZE})`, '1400')
    .option('--duration <sec>', 'stop after this many seconds')
    .option('--count <n>', 'stop after this many packets')
    .option('--stream-id <n>', 'stream id written into every packet (u32)', '1')
    .option('--bind <addr>', 'source address')
    .option('--source-port <n>', 'source UDP port')
    .action(async (o: { to: string; port: string; rateKbit: string; size: string; duration?: string; count?: string; streamId: string; bind?: string; sourcePort?: string }) => {
      const port = num('--port', o.port, isPort, 'a port 1…65535') as number;
      const rateKbit = num('--rate-kbit', o.rateKbit, isPositive, 'a rate > 0') as number;
      const size = num('--size', o.size, (n) => Number.isInteger(n) && n >= STREAM_HEADER_LENGTH && n <= STREAM_MAX_SIZE, `an integer ${STREAM_HEADER_LENGTH}…${STREAM_MAX_SIZE}`) as number;
      const durationSec = num('--duration', o.duration, isPositive, 'seconds > 0');
      const count = num('--count', o.count, isCount, 'an integer ≥ 1');
      const streamId = num('--stream-id', o.streamId, isU32, 'an integer 0…4294967295') as number;
      const sourcePort = num('--source-port', o.sourcePort, isPort, 'a port 1…65535');
      const summary = await untilSignal((signal) => sendStream({
        to: o.to, port, rateKbit, size, streamId,
        ...(durationSec === undefined ? {} : { durationSec }),
        ...(count === undefined ? {} : { count }),
        ...(o.bind ? { bind: o.bind } : {}),
        ...(sourcePort === undefined ? {} : { sourcePort }),
        onStart: (info) => emit({ event: 'sending', to: o.to, port, rateKbit, ...info }),
      }, signal));
      emit({ event: 'done', ...summary });
    });

  stream
    .command('recv')
    .description('receive a stream and log one JSON line per packet: {"stream","seq","sentAt","recvAt"}')
    .requiredOption('--port <n>', 'UDP port to listen on')
    .requiredOption('--out <file>', 'arrival log (JSON lines)')
    .option('--bind <addr>', 'local address (default: all)')
    .option('--duration <sec>', 'stop after this many seconds (default: until SIGTERM)')
    .option('--count <n>', 'stop after this many packets')
    .option('--stream-id <n>', 'log only this stream')
    .action(async (o: { port: string; out: string; bind?: string; duration?: string; count?: string; streamId?: string }) => {
      const port = num('--port', o.port, isPort, 'a port 1…65535') as number;
      const durationSec = num('--duration', o.duration, isPositive, 'seconds > 0');
      const count = num('--count', o.count, isCount, 'an integer ≥ 1');
      const streamId = num('--stream-id', o.streamId, isU32, 'an integer 0…4294967295');
      const summary = await untilSignal((signal) => receiveStream({
        port, out: o.out,
        ...(o.bind ? { bind: o.bind } : {}),
        ...(durationSec === undefined ? {} : { durationSec }),
        ...(count === undefined ? {} : { count }),
        ...(streamId === undefined ? {} : { streamId }),
        onListening: (a) => emit({ event: 'listening', ...a, out: o.out }),
      }, signal));
      emit({ event: 'done', ...summary });
    });

  lab
    .command('sample')
    .description('sample interface counters (tx/rx packets and bytes) into JSON lines')
    .requiredOption('--iface <name>', 'interface to sample (repeat for more)', collect, [])
    .requiredOption('--out <file>', 'sample log (JSON lines)')
    .option('--interval-ms <n>', 'sampling interval', '100')
    .option('--duration <sec>', 'stop after this many seconds (default: until SIGTERM)')
    .option('--label <text>', 'written into every sample, e.g. the host name')
    .action(async (o: { iface: string[]; out: string; intervalMs: string; duration?: string; label?: string }) => {
      if (o.iface.length === 0) throw new CliError('--iface: give at least one interface', 2);
      const intervalMs = num('--interval-ms', o.intervalMs, (n) => n >= 1, 'milliseconds ≥ 1') as number;
      const durationSec = num('--duration', o.duration, isPositive, 'seconds > 0');
      const summary = await untilSignal((signal) => {
        emit({ event: 'sampling', ifaces: o.iface, intervalMs, out: o.out });
        return runTrafficSampler({
          ifaces: o.iface, intervalMs, out: o.out,
          ...(durationSec === undefined ? {} : { durationSec }),
          ...(o.label ? { label: o.label } : {}),
        }, signal);
      });
      emit({ event: 'done', ...summary });
    });
}
