/**
 * Acceptance (issue 13): two processes contend for the Redis lease; one holds
 * it; the other takes over within the lease time after the first is killed;
 * the first, stopped with SIGSTOP past its lease and resumed, has its next
 * write refused. The processes (test/fixtures/lease-holder.mjs) run the built
 * registry against this machine's Redis and a fresh PostgreSQL database.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, describe, expect } from 'vitest';
import { migrate, MIGRATIONS, openPostgres } from '../../registry/index.js';
import { ROOT } from '../helpers/cli.js';
import { dropDatabases, freshPostgres, postgresMissing } from '../helpers/databases.js';
import { REDIS_URL, redisMissing, uniquePrefix } from '../helpers/redis.js';
import { requires } from '../helpers/requires.js';

const missing = (await postgresMissing()) ?? (await redisMissing());
afterAll(dropDatabases);

const TTL_MS = 1500;
/** How late a takeover may be beyond the lease time: the contender polls every 50 ms, on a busy machine. */
const SLACK_MS = 700;

interface Event {
  holder: string;
  event: 'acquired' | 'wrote' | 'fenced' | 'lost';
  token: number;
  newer?: number;
}

/** One replica: its process, and the events it has printed, awaited one kind at a time. */
class Holder {
  readonly child: ChildProcess;
  readonly events: Event[] = [];
  private waiting: { event: Event['event']; done: (e: Event) => void }[] = [];

  constructor(holder: string, env: Record<string, string>) {
    this.child = spawn(process.execPath, [`${ROOT}/test/fixtures/lease-holder.mjs`], { env: { ...process.env, ...env, HOLDER: holder, TTL_MS: String(TTL_MS) }, stdio: ['ignore', 'pipe', 'inherit'] });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const e = JSON.parse(line) as Event;
      this.events.push(e);
      this.waiting = this.waiting.filter((w) => (w.event === e.event ? (w.done(e), false) : true));
    });
  }

  /** The next event of this kind printed from now on. */
  next(event: Event['event'], timeoutMs = 10_000): Promise<Event> {
    return new Promise((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`no ${event} within ${timeoutMs} ms; events: ${JSON.stringify(this.events)}`)), timeoutMs);
      this.waiting.push({ event, done: (e) => (clearTimeout(timer), done(e)) });
    });
  }

  /** The first event of this kind, printed already or to come. */
  first(event: Event['event'], timeoutMs?: number): Promise<Event> {
    const seen = this.events.find((e) => e.event === event);
    return seen !== undefined ? Promise.resolve(seen) : this.next(event, timeoutMs);
  }
}

const started: Holder[] = [];
afterEach(() => {
  for (const h of started.splice(0)) {
    h.child.kill('SIGCONT');
    h.child.kill('SIGKILL');
  }
});

describe('the leader lease across processes', () => {
  requires(missing)(
    'passes on within the lease time when the leader is killed, and fences out a leader paused past its lease',
    async () => {
      const url = await freshPostgres();
      const db = openPostgres({ url });
      try {
        await migrate(db, MIGRATIONS);
        await db.query('CREATE TABLE leader_writes (n bigserial PRIMARY KEY, holder text NOT NULL, token bigint NOT NULL)');
        const env = { REDIS_URL, REDIS_PREFIX: uniquePrefix(), DATABASE_URL: url };
        const start = (name: string) => {
          const h = new Holder(name, env);
          started.push(h);
          return h;
        };

        // One holds it; the other waits.
        const a = start('a');
        const aToken = (await a.first('acquired')).token;
        await a.first('wrote');
        const b = start('b');
        await new Promise((r) => setTimeout(r, 800));
        expect(b.events).toEqual([]);

        // Killed, the leader's lease passes on within the lease time.
        const killedAt = Date.now();
        a.child.kill('SIGKILL');
        const bAcquired = await b.first('acquired');
        expect(Date.now() - killedAt).toBeLessThanOrEqual(TTL_MS + SLACK_MS);
        expect(bAcquired.token).toBeGreaterThan(aToken);

        // Paused past its lease, the leader loses it to a third; resumed, its next write is refused.
        await b.next('wrote');
        const c = start('c');
        await new Promise((r) => setTimeout(r, 300));
        b.child.kill('SIGSTOP');
        const cAcquired = await c.first('acquired', TTL_MS + SLACK_MS + 2000);
        expect(cAcquired.token).toBeGreaterThan(bAcquired.token);
        await c.first('wrote');
        b.child.kill('SIGCONT');
        expect(await b.next('fenced')).toMatchObject({ token: bAcquired.token, newer: cAcquired.token });

        // In the database: each leader's writes wholly before the next one's.
        const rows = (await db.query<{ holder: string }>('SELECT holder FROM leader_writes ORDER BY n')).rows.map((r) => r.holder);
        const runs = rows.filter((h, i) => i === 0 || rows[i - 1] !== h);
        expect(runs).toEqual(['a', 'b', 'c']);
      } finally {
        await db.close();
      }
    },
    60_000,
  );
});
