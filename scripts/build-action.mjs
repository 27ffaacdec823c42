#!/usr/bin/env node
// Bundles the GitHub Action into committed files, github-action/dist/index.js (and user.js, the
// user-space program its evaluations run): GitHub runs an
// action from a plain checkout, with no `npm install`. The bundle is made from dist/ (tsc's output,
// built first by scripts/build.mjs), so it holds the precompiled schema validators too.
// `node scripts/build-action.mjs [OUT]` writes elsewhere, user.js beside OUT (the drift test compares them).
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = resolve(process.argv[2] ?? join(root, 'github-action', 'dist', 'index.js'));

/**
 * The compiler loads some libraries lazily with `createRequire(import.meta.url)(name)`, which a
 * bundler cannot follow: rewritten to plain `require(name)` calls, esbuild bundles them. isomorphic-git's
 * own pako (git-fs.ts) is the same module instance in the bundle.
 */
const lazyRequires = {
  name: 'lazy-requires',
  setup(b) {
    b.onLoad({ filter: /[\\/]dist[\\/](compiler|runtime|policy)[\\/].*\.js$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8')
        .replace(/const require = createRequire\(createRequire\(import\.meta\.url\)\.resolve\((['"])isomorphic-git\1\)\);/g, '')
        .replace(/createRequire\(import\.meta\.url\)\((['"][^'"]+['"])\)/g, 'require($1)')
        .replace(/^const require = createRequire\(import\.meta\.url\);$/m, '');
      return { contents: text, loader: 'js' };
    });
  },
};

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  // CommonJS libraries inside an ES module bundle still call require() for Node's own modules.
  banner: { js: "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);" },
  absWorkingDir: root,
  legalComments: 'none',
  charset: 'utf8',
  logLevel: 'warning',
  plugins: [lazyRequires],
};

await build({ ...common, entryPoints: [join(root, 'dist', 'github-action', 'main.js')], outfile: out });
// The user-space program evaluations run in their children (`beacon eval` starts the installation's): user.js beside index.js.
await build({ ...common, entryPoints: [join(root, 'dist', 'runtime', 'user', 'entry.js')], outfile: join(dirname(out), 'user.js') });
