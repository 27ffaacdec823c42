// Reading a V8 CPU profile (`node --cpu-prof`): where its time went, by
// function (self time) and by source file, for the benchmarks' "where the
// time went" sections. Also a CLI: `node bench/cpu-profile.mjs FILE [N]`.

import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Self time per node id, in ms: each sample's interval goes to the node it landed in. */
function selfTimes(profile) {
  const self = new Map();
  const { samples = [], timeDeltas = [] } = profile;
  for (let i = 0; i < samples.length; i++) self.set(samples[i], (self.get(samples[i]) ?? 0) + (timeDeltas[i + 1] ?? 0) / 1000);
  return self;
}

/** Where a call frame's code is: a path relative to the checkout, node's own (`node:…`), or V8's (`(program)`, `(garbage collector)`). */
function where(frame) {
  const url = frame.url ?? '';
  if (url === '') return '';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  return path.startsWith('/') ? relative(process.cwd(), path) : path;
}

/**
 * The `n` functions with the most self time, the `n` files with the most,
 * and the `n` functions of the checkout (dist/) whose calls took the most
 * (self time charged to the nearest caller of the checkout, so that Node's
 * and packages' work counts for the code that asked for it), as Markdown
 * tables. Idle time is left out of the last.
 */
export function topFunctions(profile, n = 20) {
  const self = selfTimes(profile);
  const parent = new Map();
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  for (const node of profile.nodes) for (const c of node.children ?? []) parent.set(c, node.id);
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byFunction = new Map();
  const byFile = new Map();
  const byCaller = new Map();
  for (const node of profile.nodes) {
    const ms = self.get(node.id) ?? 0;
    if (ms === 0) continue;
    const f = node.callFrame;
    const file = where(f);
    const key = `${f.functionName || '(anonymous)'} ${file}${file !== '' ? `:${f.lineNumber + 1}` : ''}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + ms);
    const fileKey = file === '' ? f.functionName || '(anonymous)' : file.replace(/^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\/.*$/, '$1');
    byFile.set(fileKey, (byFile.get(fileKey) ?? 0) + ms);
    if (f.functionName === '(idle)') continue;
    let at = node;
    while (at !== undefined && !where(at.callFrame).startsWith('dist/')) at = byId.get(parent.get(at.id));
    const caller = at === undefined ? '(no caller in dist/)' : `${at.callFrame.functionName || '(anonymous)'} ${where(at.callFrame)}:${at.callFrame.lineNumber + 1}`;
    byCaller.set(caller, (byCaller.get(caller) ?? 0) + ms);
  }
  const table = (title, map) =>
    [
      `| ${title} | self ms | share |`,
      '|---|---:|---:|',
      ...[...map]
        .sort((a, b) => b[1] - a[1])
        .slice(0, n)
        .map(([k, ms]) => `| ${k} | ${ms.toFixed(0)} | ${((100 * ms) / total).toFixed(1)}% |`),
    ].join('\n');
  return `profile: ${total.toFixed(0)} ms sampled\n\n${table('function', byFunction)}\n\n${table('file or package', byFile)}\n\n${table('nearest caller in dist/ (idle left out)', byCaller)}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, n] = process.argv.slice(2);
  if (file === undefined) {
    process.stderr.write('usage: node bench/cpu-profile.mjs FILE.cpuprofile [N]\n');
    process.exit(2);
  }
  process.stdout.write(`${topFunctions(JSON.parse(readFileSync(file, 'utf8')), Number(n ?? 20))}\n`);
}
