// The Git remote of the server benchmark, in its own process so that its CPU
// (and git http-backend's) is not counted with the server's: the tests'
// smart-HTTP server (test/helpers/git-http.ts, loaded through tsx), which
// serves every repository under --root as `/<name>` to whoever presents
// --token, behind an HTTPS front with a self-signed certificate for
// 127.0.0.1 (the installation file follows https:// remotes only; the server
// trusts the certificate through NODE_EXTRA_CA_CERTS). Prints one JSON line
// `{ url, ca }` (the HTTPS base URL, the certificate's file) once it listens;
// ends when its stdin closes.
//
//   node --import tsx bench/git-http-server.mjs --root DIR --token TOKEN --tls-dir DIR

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:https';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from './measure.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const USAGE = 'usage: node --import tsx bench/git-http-server.mjs --root DIR --token TOKEN --tls-dir DIR\n';
const args = benchArgs({ root: { type: 'string' }, token: { type: 'string' }, 'tls-dir': { type: 'string' } }, USAGE);
if (args === null) process.exit(0);
if (args.root === undefined || args.token === undefined || args['tls-dir'] === undefined) {
  process.stderr.write(`git-http-server: --root, --token and --tls-dir are required\n${USAGE}`);
  process.exit(2);
}

const key = join(args['tls-dir'], 'key.pem');
const cert = join(args['tls-dir'], 'cert.pem');
execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], {
  stdio: 'ignore',
});

const { serveGit } = await import(join(ROOT, 'test', 'helpers', 'git-http.ts'));
const git = await serveGit(args.root, args.token);
const backend = new URL(git.url('x'));
// The TLS front: each request passed on as it is to the plain-HTTP server.
const front = createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
  const upstream = request({ host: backend.hostname, port: backend.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  upstream.on('error', () => res.writeHead(502).end());
  req.pipe(upstream);
});
await new Promise((resolve) => front.listen(0, '127.0.0.1', resolve));
process.stdout.write(`${JSON.stringify({ url: `https://127.0.0.1:${front.address().port}`, ca: cert })}\n`);

process.stdin.resume();
process.stdin.on('end', () => {
  front.close();
  void git.close().then(() => process.exit(0));
});
