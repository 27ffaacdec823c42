/**
 * Scores kept in files for the CLI: one JSON file per (target version,
 * evaluation digest) under the folder given (`.beacon/evals` of the
 * repository), holding that pair's scores by case, scorer and repeat.
 * Writes are atomic (a temporary file renamed over the old one), so a
 * killed `beacon eval` leaves the previous file or the new one, never half
 * of one. A file that cannot be read as scores (hand-edited, truncated by a
 * full disk) is ignored with a warning and rewritten: a cache never fails
 * an evaluation, it only saves work.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isRecord } from '../../common/index.js';
import type { Score, ScoreCache, ScoreKey } from './types.js';

const FORMAT = 1;

export interface FileScoreCacheOptions {
  /** Told about a cache file that was ignored, and why. @default process.emitWarning */
  onWarning?: (message: string) => void;
}

type Scores = Map<string, Score>;

export class FileScoreCache implements ScoreCache {
  /** Each file's scores, read once; its writes chained so that two never interleave. */
  private readonly files = new Map<string, Promise<Scores>>();
  private readonly writes = new Map<string, Promise<void>>();
  private readonly warn: (message: string) => void;

  constructor(
    readonly dir: string,
    options: FileScoreCacheOptions = {},
  ) {
    this.warn = options.onWarning ?? ((m) => process.emitWarning(m));
  }

  async get(keys: readonly ScoreKey[]): Promise<(Score | undefined)[]> {
    const out: (Score | undefined)[] = [];
    for (const key of keys) out.push((await this.scores(key)).get(entryName(key)));
    return out;
  }

  async put(entries: readonly { key: ScoreKey; score: Score }[]): Promise<void> {
    const touched = new Map<string, ScoreKey>();
    for (const { key, score } of entries) {
      (await this.scores(key)).set(entryName(key), score);
      touched.set(fileName(key), key);
    }
    await Promise.all([...touched.values()].map((key) => this.write(key)));
  }

  private scores(key: ScoreKey): Promise<Scores> {
    const name = fileName(key);
    let p = this.files.get(name);
    if (p === undefined) this.files.set(name, (p = this.load(join(this.dir, name), key)));
    return p;
  }

  private async load(path: string, key: ScoreKey): Promise<Scores> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.warn(`score cache ${path} is not readable (${(err as NodeJS.ErrnoException).code ?? String(err)}); it is ignored`);
      return new Map();
    }
    const parsed = parseFile(text, key);
    if (typeof parsed === 'string') {
      this.warn(`score cache ${path} ${parsed}; it is ignored and will be rewritten`);
      return new Map();
    }
    return parsed;
  }

  private write(key: ScoreKey): Promise<void> {
    const name = fileName(key);
    const previous = this.writes.get(name) ?? Promise.resolve();
    const next = previous.then(async () => {
      const scores = await this.scores(key);
      const body = { format: FORMAT, version: key.version, evaluation: key.evaluation, scores: Object.fromEntries([...scores].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) };
      await mkdir(this.dir, { recursive: true });
      const tmp = join(this.dir, `.${name}.${randomUUID()}.tmp`);
      try {
        await writeFile(tmp, `${JSON.stringify(body)}\n`);
        await rename(tmp, join(this.dir, name));
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
    });
    this.writes.set(name, next);
    return next;
  }
}

/** The file of a (version, evaluation) pair: a hash, as digests hold characters file names should not. */
function fileName(key: ScoreKey): string {
  return `${createHash('sha256').update(`${key.version}\n${key.evaluation}`).digest('hex').slice(0, 32)}.json`;
}

function entryName(key: ScoreKey): string {
  return `${key.case}/${key.scorer}/${key.repeat}`;
}

/** A cache file's scores, or why it is not one (another pair's file, a broken one). */
function parseFile(text: string, key: ScoreKey): Scores | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return 'is not valid JSON';
  }
  if (!isRecord(v) || v.format !== FORMAT || !isRecord(v.scores)) return `is not a score file of format ${FORMAT}`;
  if (v.version !== key.version || v.evaluation !== key.evaluation) return 'belongs to another version or evaluation';
  const out: Scores = new Map();
  for (const [name, s] of Object.entries(v.scores)) {
    if (!/^\d+\/\d+\/\d+$/.test(name) || !isScore(s)) return `has an invalid entry ${JSON.stringify(name.slice(0, 40))}`;
    out.set(name, s);
  }
  return out;
}

/** A score as stored: checked field by field, as a file is anyone's to edit. */
export function isScore(v: unknown): v is Score {
  if (!isRecord(v) || typeof v.passed !== 'boolean') return false;
  const num = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x) && x >= 0;
  if (!num(v.latencyMs) || !num(v.costUsd) || !num(v.tokens)) return false;
  if (v.message !== undefined && typeof v.message !== 'string') return false;
  return (v.scorerCostUsd === undefined || num(v.scorerCostUsd)) && (v.scorerTokens === undefined || num(v.scorerTokens));
}
