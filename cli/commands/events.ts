/**
 * `beacon events [--tenant T] [--object ID] [--type Normal|Warning] [--follow] [--format text|json]`:
 * the server's events (`GET /v1/events`), oldest first, one a line; with
 * `--follow`, then those that happen (`GET /v1/events/stream`, server-sent
 * events), resumed after the last one printed (`Last-Event-ID`) when the
 * stream drops, until Ctrl-C. `--format json` prints each event as one line
 * of JSON (JSON Lines), in both modes.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Option, type Command } from 'commander';
import { isRecord } from '../../common/index.js';
import { printableJson, printablePath } from '../../compiler/index.js';
import type { BeaconEvent } from '../../registry/index.js';
import { itemsOf, requireServer, withServerOptions, type Client, type ServerOptions } from '../client.js';
import { action, EXIT, formatOption, write } from '../common.js';
import { MSG } from '../messages.js';

interface Options extends ServerOptions {
  tenant?: string;
  object?: string;
  type?: 'Normal' | 'Warning';
  follow?: boolean;
  format: 'text' | 'json';
}

/** How long to wait before resuming a stream that dropped. */
const RESUME_DELAY_MS = 1000;

const isEvent = (v: unknown): v is BeaconEvent =>
  isRecord(v) && typeof v.id === 'number' && typeof v.time === 'string' && typeof v.type === 'string' && typeof v.reason === 'string' && typeof v.message === 'string';

/** One event, one line: the server's words made printable. */
export function eventLine(e: BeaconEvent, format: Options['format']): string {
  if (format === 'json') return printableJson(e);
  return printablePath(`${e.time}  ${e.type.padEnd(7)}  ${e.reason}  ${e.object ?? e.tenant ?? '-'}: ${e.message}`);
}

function query(opts: Options): Record<string, string | undefined> {
  return { tenant: opts.tenant, object: opts.object, type: opts.type };
}

/** The events so far (the API pages newest first), oldest first. */
async function backlog(client: Client, opts: Options): Promise<BeaconEvent[]> {
  const { items } = itemsOf<unknown>(await client.get('/v1/events', query(opts)));
  return items.filter(isEvent).sort((a, b) => a.id - b.id);
}

/** Print the events that happen until `signal` aborts, after event `after`. */
async function follow(client: Client, opts: Options, after: number | undefined, signal: AbortSignal): Promise<void> {
  let last = after;
  while (!signal.aborted) {
    try {
      for await (const sse of client.stream('/v1/events/stream', query(opts), last !== undefined ? String(last) : undefined, signal)) {
        let event: unknown;
        try {
          event = JSON.parse(sse.data);
        } catch {
          continue;
        }
        if (!isEvent(event) || (last !== undefined && event.id <= last)) continue;
        write(eventLine(event, opts.format));
        last = event.id;
      }
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
    // The stream ended (the server restarted, a proxy cut it): resume after the last event printed.
    await sleep(RESUME_DELAY_MS, undefined, { signal }).catch(() => undefined);
  }
}

/** An AbortSignal that Ctrl-C and SIGTERM abort. */
function stopSignal(): AbortSignal {
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return controller.signal;
}

export function registerEvents(program: Command): void {
  const command = program
    .command('events')
    .description(MSG.events)
    .option('--tenant <tenant>', MSG.optTenant)
    .option('--object <id>', MSG.optEventObject)
    .addOption(new Option('--type <type>', MSG.optEventType).choices(['Normal', 'Warning']))
    .option('--follow', MSG.optFollow);
  withServerOptions(command)
    .addOption(formatOption(['text', 'json'], 'text'))
    .action(
      action(async (opts: Options) => {
        const client = await requireServer(opts);
        const events = await backlog(client, opts);
        for (const e of events) write(eventLine(e, opts.format));
        if (opts.follow !== true) {
          if (events.length === 0 && opts.format === 'text') write(MSG.noEvents);
          return EXIT.ok;
        }
        await follow(client, opts, events.at(-1)?.id, stopSignal());
        return EXIT.ok;
      }),
    );
}
