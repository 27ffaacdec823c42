/** `beacon init [dir]`: a starter repository that validates. */
import { constants, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, statSync, type Stats } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { fsReason } from '../../compiler/index.js';
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

/** This installation's root folder (holding bin/beacon.js), to tell a new repository how to run it. */
function installationRoot(): string {
  return resolve(templateDir(), '..', '..', '..');
}

function errorCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** The file a failed file-system call was writing (a copy's destination, else its path). */
function failedPath(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  if ('dest' in err && typeof err.dest === 'string') return err.dest;
  return 'path' in err && typeof err.path === 'string' ? err.path : undefined;
}

/**
 * `dir`'s stat, or undefined when it does not exist, with the folders to create
 * (outermost first); a usage error when it, or a folder above it, is a file or
 * cannot be looked at.
 */
function folderStat(dir: string, missing: string[] = []): Stats | undefined {
  for (let p = dir; ; p = dirname(p)) {
    let st: Stats;
    try {
      st = statSync(p);
    } catch (err) {
      const code = errorCode(err);
      if ((code === 'ENOENT' || code === 'ENOTDIR') && dirname(p) !== p) {
        missing.unshift(p);
        continue;
      }
      throw new UsageError(MSG.initCannotCreate(p, fsReason(err)));
    }
    if (!st.isDirectory()) throw new UsageError(MSG.initNotAFolder(p));
    return p === dir ? st : undefined;
  }
}

/**
 * Create `folders` one level at a time. Not `mkdir -p`: Node's recursive mkdir
 * retries forever where mkdir fails with ENOENT under a folder that exists
 * (/proc/x); here every failure is an answer.
 */
function createFolders(folders: readonly string[]): void {
  for (const f of folders) {
    try {
      mkdirSync(f);
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw new UsageError(MSG.initCannotCreate(f, fsReason(err)));
    }
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
  const missing: string[] = [];
  const st = folderStat(dir, missing);
  if (st !== undefined && !force && readdirSync(dir).length > 0) throw new UsageError(MSG.initNotEmpty(dir));
  const template = templateDir();
  createFolders(missing);
  const skipped: string[] = [];
  try {
    copyMissing(template, dir, '', skipped);
  } catch (err) {
    // A read-only or special place (/proc, /sys): say which file could not be written, and why.
    throw new UsageError(MSG.initCannotCreate(failedPath(err) ?? dir, fsReason(err)));
  }
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
        const root = installationRoot();
        write(MSG.initDone(dir, join(root, 'bin', 'beacon.js'), root));
        return EXIT.ok;
      }),
    );
}
