/** `beacon init [dir]`: a starter repository that validates. */
import { constants, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, statSync, type Stats } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { action, EXIT, UsageError, write } from '../common.js';
import { MSG } from '../messages.js';

/** The template lives in the source tree (cli/templates/starter), beside dist/. */
function templateDir(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  for (const up of ['../templates/starter', '../../../cli/templates/starter']) {
    const dir = resolve(here, up);
    if (existsSync(dir)) return dir;
  }
  throw new Error('starter template not found in the BeaconOS installation');
}

function errorCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** `dir`'s stat, or undefined when it does not exist; a usage error when it, or a folder above it, is a file. */
function folderStat(dir: string): Stats | undefined {
  for (let p = dir; ; p = dirname(p)) {
    let st: Stats;
    try {
      st = statSync(p);
    } catch (err) {
      const code = errorCode(err);
      if ((code === 'ENOENT' || code === 'ENOTDIR') && dirname(p) !== p) continue;
      throw err;
    }
    if (!st.isDirectory()) throw new UsageError(MSG.initNotAFolder(p));
    return p === dir ? st : undefined;
  }
}

/** Every file under `dir`, relative with '/' separators. */
function filesUnder(dir: string, rel: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name), `${rel}/${e.name}`) : [`${rel}/${e.name}`]));
}

/**
 * Copy the template folder `from` into `to`, writing only files that do not
 * exist yet (O_EXCL: not even through a dangling symbolic link). Returns one
 * line per file that was skipped.
 */
function copyMissing(from: string, to: string, rel: string, skipped: string[]): void {
  const entries = readdirSync(from, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    // npm would drop a file named .gitignore from a package; the template ships it as `gitignore`.
    const name = rel === '' && e.name === 'gitignore' ? '.gitignore' : e.name;
    const source = join(from, e.name);
    const target = join(to, name);
    const path = rel === '' ? name : `${rel}/${name}`;
    if (e.isDirectory()) {
      try {
        mkdirSync(target);
      } catch (err) {
        if (errorCode(err) !== 'EEXIST') throw err;
      }
      // Only a real folder is written into: never a file, nor a link that leads elsewhere.
      if (!lstatSync(target).isDirectory()) {
        for (const f of filesUnder(source, path)) skipped.push(MSG.initSkippedBlocked(f, path));
        continue;
      }
      copyMissing(source, target, path, skipped);
    } else {
      try {
        copyFileSync(source, target, constants.COPYFILE_EXCL);
      } catch (err) {
        if (errorCode(err) !== 'EEXIST') throw err;
        skipped.push(MSG.initSkipped(path));
      }
    }
  }
}

/**
 * Create a starter repository in `dir`. With `force`, also into a folder that
 * is not empty, adding only the starter files it lacks: an existing file is
 * never overwritten. Returns one line per skipped file.
 */
export function initRepository(dir: string, force = false): string[] {
  const st = folderStat(dir);
  if (st !== undefined && !force && readdirSync(dir).length > 0) throw new UsageError(MSG.initNotEmpty(dir));
  const template = templateDir();
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new UsageError(MSG.initCannotCreate(dir, (err as Error).message));
  }
  const skipped: string[] = [];
  copyMissing(template, dir, '', skipped);
  return skipped;
}

export function registerInit(program: Command): void {
  program
    .command('init')
    .description(MSG.init)
    .argument('[dir]', 'folder to create', '.')
    .option('--force', MSG.initForce)
    .action(
      action(async (dir: string, opts: { force?: boolean }) => {
        for (const line of initRepository(resolve(dir), opts.force === true)) write(line);
        write(MSG.initDone(dir));
        return EXIT.ok;
      }),
    );
}
