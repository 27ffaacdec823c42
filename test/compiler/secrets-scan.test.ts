/**
 * Issue 12, item 9: the secret scanner reads every shipped file whole —
 * not valid UTF-8, binary or large — and values at any depth.
 */
import { describe, expect, it } from 'vitest';
import { referencedFile } from '../../compiler/index.js';
import { scanForSecrets } from '../../compiler/secrets.js';

const TOKEN = 'ghp_aB3dE5fG7hJ9kL1mN2pQ4rS6tU8vW0xY2zA4c';

const bytes = (...parts: (string | Buffer)[]): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p)));

describe('shipped files are scanned whole', () => {
  it('a file that is not UTF-8', () => {
    const file = referencedFile(bytes('caf\xe9 \xff\xfe\n', `token = ${TOKEN}\n`));
    expect(file.problem?.code).toBe('BCN1001');
    expect(file.secret).toMatchObject({ what: 'a GitHub token', line: 2 });
  });

  it('a binary file (NUL bytes), the key between binary data', () => {
    const file = referencedFile(bytes(Buffer.alloc(64, 0), '\x01\x02', 'AKIAIOSFODNN7EXAMPLF', Buffer.alloc(64, 0)));
    expect(file.secret?.what).toBe('an AWS access key id');
  });

  it('a private key in a binary file', () => {
    expect(referencedFile(bytes(Buffer.from([0, 1, 2]), '-----BEGIN RSA PRIVATE KEY-----\nMIIE...')).secret?.what).toBe('a private key');
  });

  it('a large file: a key at its end, and one across every chunk boundary', () => {
    const size = 5 * 1024 * 1024;
    const end = bytes(Buffer.alloc(size, 'a'), `\n${TOKEN}\n`);
    expect(end.length).toBeGreaterThan(1024 * 1024);
    const atEnd = referencedFile(end);
    expect(atEnd.problem?.code).toBe('BCN1003');
    expect(atEnd.secret).toMatchObject({ what: 'a GitHub token', line: 2 });
    for (const at of [1024 * 1024 - 10, 2 * 1024 * 1024 - 20, 3 * 1024 * 1024 - 1]) {
      const across = Buffer.alloc(size, ' ');
      across.write(TOKEN, at, 'latin1');
      expect(referencedFile(across).secret?.what, `key at ${at}`).toBe('a GitHub token');
    }
  });

  it('a large file is scanned in bounded time', () => {
    const big = Buffer.alloc(32 * 1024 * 1024, 'sk-');
    const started = performance.now();
    expect(referencedFile(big).secret).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(20_000);
  });
});

describe('values at any depth', () => {
  it.each([10, 65, 100, 5000])('a key %i levels down', (depth) => {
    let doc: unknown = { env: { API_KEY: TOKEN } };
    for (let i = 0; i < depth; i++) doc = i % 2 === 0 ? { nested: doc } : [doc];
    const found = scanForSecrets(doc);
    expect(found).toHaveLength(1);
    expect(found[0]!.what).toBe('a GitHub token');
    expect(found[0]!.path.endsWith('/env/API_KEY')).toBe(true);
  });

  it('finds them in document order', () => {
    expect(scanForSecrets({ a: [TOKEN, { password: 'hunter2hunter2' }], b: TOKEN }).map((f) => f.path)).toEqual(['/a/0', '/a/1/password', '/b']);
  });
});
