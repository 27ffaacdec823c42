/**
 * The push webhook's verification, against GitHub's documented example and
 * against anything a caller can send: it answers true for the one right
 * signature and false, without throwing, for everything else.
 */
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pushedBranch, verifyWebhook } from '../../reconciler/index.js';

// https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
const SECRET = "It's a Secret to Everybody";
const BODY = Buffer.from('Hello, World!');
const SIGNATURE = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';

describe('verifyWebhook', () => {
  it("accepts GitHub's documented example", () => {
    expect(verifyWebhook(SECRET, BODY, SIGNATURE)).toBe(true);
  });

  it('accepts the hex digits in capitals too', () => {
    expect(verifyWebhook(SECRET, BODY, SIGNATURE.replace(/[a-f]/g, (c) => c.toUpperCase()).replace('SHA256=', 'sha256='))).toBe(true);
  });

  it.each([
    ['no header', SECRET, BODY, undefined],
    ['an empty header', SECRET, BODY, ''],
    ['no digest', SECRET, BODY, 'sha256='],
    ['the SHA-1 header', SECRET, BODY, 'sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59'],
    ['no algorithm', SECRET, BODY, SIGNATURE.slice('sha256='.length)],
    ['a digest one digit short', SECRET, BODY, SIGNATURE.slice(0, -1)],
    ['a digest one digit long', SECRET, BODY, `${SIGNATURE}0`],
    ['a digest that is not hex', SECRET, BODY, `sha256=${'zz'.repeat(32)}`],
    ['another secret', 'another secret', BODY, SIGNATURE],
    ['an empty secret, even signed with it', '', BODY, `sha256=${createHmac('sha256', '').update(BODY).digest('hex')}`],
    ['a body changed by one byte', SECRET, Buffer.from('Hello, World?'), SIGNATURE],
    ['a body with a newline added', SECRET, Buffer.from('Hello, World!\n'), SIGNATURE],
    ['two signatures', SECRET, BODY, `${SIGNATURE},${SIGNATURE}`],
  ])('refuses %s', (_, secret, body, header) => {
    expect(verifyWebhook(secret, body, header)).toBe(false);
  });

  it('never throws, and is true only for the signature of the body under the secret', () => {
    fc.assert(
      fc.property(fc.string(), fc.uint8Array({ maxLength: 256 }), fc.option(fc.string(), { nil: undefined }), (secret, bytes, header) => {
        const body = Buffer.from(bytes);
        const right = secret !== '' && header === `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
        expect(verifyWebhook(secret, body, header)).toBe(right);
      }),
    );
  });

  it('is true for any body signed with the secret, and false once the signature is another', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.uint8Array({ maxLength: 256 }), fc.nat({ max: 63 }), (secret, bytes, digit) => {
        const body = Buffer.from(bytes);
        const hex = createHmac('sha256', secret).update(body).digest('hex');
        expect(verifyWebhook(secret, body, `sha256=${hex}`)).toBe(true);
        const flipped = hex.slice(0, digit) + (hex[digit] === '0' ? '1' : '0') + hex.slice(digit + 1);
        expect(verifyWebhook(secret, body, `sha256=${flipped}`)).toBe(false);
      }),
    );
  });

  it('answers false for values of the wrong type that an untyped caller may pass', () => {
    const untyped = verifyWebhook as (secret: unknown, body: unknown, header: unknown) => boolean;
    expect(untyped(SECRET, 'Hello, World!', SIGNATURE)).toBe(false);
    expect(untyped(SECRET, BODY, ['sha256=', SIGNATURE])).toBe(false);
    expect(untyped(undefined, BODY, SIGNATURE)).toBe(false);
  });
});

describe('pushedBranch', () => {
  it("reads a push event's ref and new tip", () => {
    const push = { ref: 'refs/heads/main', before: '0'.repeat(40), after: 'a'.repeat(40), repository: { full_name: 'platform/agents' }, pusher: { name: 'alice' } };
    expect(pushedBranch(push)).toEqual({ ref: 'refs/heads/main', after: 'a'.repeat(40) });
  });

  it.each([
    ['null', null, {}],
    ['a string', 'refs/heads/main', {}],
    ['a list', [{ ref: 'refs/heads/main' }], {}],
    ['a ping event', { zen: 'Keep it logically awesome.', hook_id: 1 }, {}],
    ['fields of the wrong type', { ref: ['refs/heads/main'], after: 42 }, {}],
    ['a ref alone', { ref: 'refs/tags/v1' }, { ref: 'refs/tags/v1' }],
  ])('reads only strings from %s', (_, payload, expected) => {
    expect(pushedBranch(payload)).toEqual(expected);
  });
});
