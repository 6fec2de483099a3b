import { describe, expect, it } from 'vitest';
import { checkDestinationSignature, signDestinationPayload, verifyDestinationSignature } from '../src/index.js';

// A webhook receiver built as documented (`express.raw({ type: 'application/json' })`) has no
// raw body for a request of another content type: `req.body` is undefined (Express 5) or `{}`
// (Express 4). An unsigned request of that kind is refused (401), never a 500 with a stack.
describe('a receiver given no raw body', () => {
  it.each<[string, unknown]>([
    ['undefined (Express 5)', undefined],
    ['{} (Express 4)', {}],
  ])('refuses an unsigned request whose body is %s', (_label, body) => {
    for (const [header, reason] of [
      [undefined, 'missing_header'],
      ['', 'missing_header'],
      ['garbage', 'malformed_header'],
    ] as const) {
      expect(checkDestinationSignature(body as never, header, 'secret')).toEqual({ ok: false, reason });
      expect(verifyDestinationSignature(body as never, header, 'secret')).toBe(false);
    }
  });

  it('still names the mistake for a signed request whose body was parsed', () => {
    const header = signDestinationPayload('{"a":1}', 'secret');
    expect(() => verifyDestinationSignature({ a: 1 } as never, header, 'secret')).toThrow(
      new TypeError('Expected `rawBody` to be a string or a Buffer, got `object`'),
    );
  });
});
