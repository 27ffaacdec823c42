#!/usr/bin/env node
// The parse half of the benchmark's floor: read every *.yaml / *.yml file under
// a folder and parse it with the `yaml` package's parseAllDocuments (what any
// reader of multi-document files needs), and nothing else. Run as its own
// process, as the CLI would be, so its start-up and peak RSS are comparable.
//
//   node bench/floor-parse.mjs <dir>   → prints {"files":…, "documents":…, "errors":…}
//
// Exit code 1 when a file does not parse, so the floor doubles as a check that
// the generated YAML is well-formed.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

const root = process.argv[2];
if (!root) {
  process.stderr.write('usage: node bench/floor-parse.mjs <dir>\n');
  process.exit(2);
}

let files = 0;
let documents = 0;
let errors = 0;
for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !/\.ya?ml$/.test(entry.name)) continue;
  const path = join(entry.parentPath ?? entry.path, entry.name);
  const docs = parseAllDocuments(readFileSync(path, 'utf8'));
  files++;
  // parseAllDocuments returns an EmptyStream (not an array) for a file with no documents.
  for (const doc of Array.isArray(docs) ? docs : []) {
    documents++;
    if (doc.errors.length > 0) {
      errors++;
      if (errors <= 5) process.stderr.write(`${path}: ${doc.errors[0].message}\n`);
    }
  }
}
process.stdout.write(JSON.stringify({ files, documents, errors }) + '\n');
process.exit(errors > 0 ? 1 : 0);
