// Process measurement shared by the benchmark scripts: run one command under
// GNU time for its peak RSS, time its wall clock from here, and keep what it
// printed. Every figure of the benchmark is one such separate process.

import { spawnSync } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export const TIME_BIN = '/usr/bin/time';

/**
 * Where the benchmark makes its temporary folders (the floor's unpacked tree,
 * the CLI's cache folders, captured output): $BENCH_TMPDIR if set, else a
 * folder in /dev/shm (tmpfs) when there is one, else bench/.work/tmp.
 *
 * Why tmpfs: on the development VMs, creating many small files on the disk
 * got slower with every create/delete cycle (tar -x of 1,000 files went from
 * 0.03 s to over 1 s of system time within a few dozen runs), which made the
 * floor drift upwards during a benchmark. In memory it is stable, and it is
 * what a /tmp mounted as tmpfs gives on most Linux desktops and CI runners.
 */
export function benchTmp() {
  let dir = process.env.BENCH_TMPDIR;
  if (!dir) {
    dir = join(dirname(fileURLToPath(import.meta.url)), '.work', 'tmp');
    try {
      accessSync('/dev/shm', constants.W_OK);
      dir = '/dev/shm/beacon-bench';
    } catch {
      // no tmpfs: stay on the disk
    }
  }
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Run `argv` as `/usr/bin/time -f '%e %M' -o <file> argv...`.
 * Wall time is measured here with a monotonic clock around the whole process
 * (GNU time's own `%e` has a 10 ms resolution, too coarse for the fast
 * figures; it is returned as `timeS` for cross-checking). Peak RSS is GNU
 * time's `%M`: the largest resident set of the process or any of its children.
 * @param {string[]} argv
 * @param {{env?: NodeJS.ProcessEnv, cwd?: string}} [opts]
 * @returns {{exit: number, signal: string|null, wallMs: number, rssMb: number, timeS: number, stdout: string, stderr: string}}
 */
export function timeCommand(argv, { env = process.env, cwd = process.cwd() } = {}) {
  const tmp = mkdtempSync(join(benchTmp(), 'run-'));
  try {
    const timeFile = join(tmp, 'time');
    const out = openSync(join(tmp, 'stdout'), 'w');
    const err = openSync(join(tmp, 'stderr'), 'w');
    const t0 = process.hrtime.bigint();
    const r = spawnSync(TIME_BIN, ['-f', '%e %M', '-o', timeFile, ...argv], { env, cwd, stdio: ['ignore', out, err] });
    const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
    closeSync(out);
    closeSync(err);
    if (r.error) throw new Error(`cannot run ${TIME_BIN}: ${r.error.message}`);
    // GNU time writes "Command exited with non-zero status N" before the format line.
    const last = readFileSync(timeFile, 'utf8').trim().split('\n').at(-1) ?? '';
    const m = /^([\d.]+) (\d+)$/.exec(last);
    if (!m) throw new Error(`unexpected ${TIME_BIN} output: ${JSON.stringify(last)}`);
    return {
      exit: r.status ?? 128,
      signal: r.signal,
      wallMs,
      rssMb: Number(m[2]) / 1024,
      timeS: Number(m[1]),
      stdout: readFileSync(join(tmp, 'stdout'), 'utf8'),
      stderr: readFileSync(join(tmp, 'stderr'), 'utf8'),
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The median of a list of numbers (the mean of the middle two for an even count). */
export function median(values) {
  if (values.length === 0) return NaN;
  const s = values.slice().sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Put `section` (which starts with its `## ` heading line) into the Markdown
 * file `file`: in place of the section with the same heading (up to the next
 * `## `), else right after the section headed `after`, else at the end. Every
 * benchmark script writes its figures into docs/benchmarks.md this way.
 */
export function writeSection(file, section, { after } = {}) {
  const heading = section.split('\n', 1)[0].trimEnd();
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const lines = text.split('\n');
  const sectionEnd = (start) => {
    const end = lines.findIndex((l, i) => i > start && /^## /.test(l));
    return end === -1 ? lines.length : end;
  };
  let start = lines.findIndex((l) => l.trimEnd() === heading);
  let end;
  if (start !== -1) end = sectionEnd(start);
  else {
    const previous = after === undefined ? -1 : lines.findIndex((l) => l.trimEnd() === after);
    start = end = previous === -1 ? lines.length : sectionEnd(previous);
  }
  const before = lines.slice(0, start).join('\n').trimEnd();
  const rest = lines.slice(end).join('\n').trim();
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${before ? `${before}\n\n` : ''}${section.trimEnd()}\n${rest ? `\n${rest}\n` : ''}`);
}

/**
 * A benchmark's command line: `options` as node:util parseArgs takes them,
 * plus --help. Bad arguments print the error and `usage` and exit 2; --help
 * prints `usage` and returns null (the caller ends).
 */
export function benchArgs(options, usage) {
  let values;
  try {
    values = parseArgs({ options: { ...options, help: { type: 'boolean', short: 'h' } } }).values;
  } catch (err) {
    process.stderr.write(`${err.message}\n${usage}`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(usage);
    return null;
  }
  return values;
}

/**
 * Print a benchmark's `table`, and unless `write` is false, put it in
 * docs/benchmarks.md under `heading` (replacing that section), saying so on
 * stderr as `[tag]`.
 */
export function publishSection(root, heading, table, { write = true, tag = 'bench' } = {}) {
  process.stdout.write(`${table}\n`);
  if (!write) return;
  const file = join(root, 'docs', 'benchmarks.md');
  writeSection(file, `${heading}\n\n${table}\n`);
  process.stderr.write(`[${tag}] wrote ${file} (${heading})\n`);
}
