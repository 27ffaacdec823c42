/** `beacon init [dir]`: a starter repository that validates. */
import { cpSync, existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';
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

/** Create a starter repository in `dir`. */
export function initRepository(dir: string, force = false): void {
  if (existsSync(dir) && readdirSync(dir).length > 0 && !force) throw new UsageError(MSG.initNotEmpty(dir));
  mkdirSync(dir, { recursive: true });
  cpSync(templateDir(), dir, { recursive: true });
  // npm would drop a file named .gitignore from a package; the template ships it as `gitignore`.
  renameSync(join(dir, 'gitignore'), join(dir, '.gitignore'));
}

export function registerInit(program: Command): void {
  program
    .command('init')
    .description(MSG.init)
    .argument('[dir]', 'folder to create', '.')
    .option('--force', 'write into a folder that is not empty')
    .action(
      action(async (dir: string, opts: { force?: boolean }) => {
        initRepository(resolve(dir), opts.force === true);
        write(MSG.initDone(dir));
        return EXIT.ok;
      }),
    );
}
