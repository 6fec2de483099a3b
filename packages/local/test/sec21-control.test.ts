import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../src/index.js';
import { startEcho } from './helpers.js';

/**
 * The control plane under hostile PutAsyncInvokeConfig bodies (the session 21 security review): a
 * value nested past the stack, or a megabyte long, is refused as any bad value is, with a short
 * message and no internal error.
 */
describe('PutAsyncInvokeConfig with an adversarial value', () => {
  let emulator: Emulator;
  const lines: Record<string, unknown>[] = [];
  beforeAll(async () => {
    emulator = await startEcho({
      logFormat: 'json',
      output: (text) => {
        for (const line of text.split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      },
    });
  });
  afterAll(() => emulator.close());

  const put = async (body: string) => {
    const res = await fetch(`${emulator.controlUrl}/2023-03-30/functions/echo/async-invoke-config`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body,
    });
    return { status: res.status, body: (await res.json()) as { Code: string; Message: string } };
  };

  it('refuses a value nested deeper than the stack as a 400 InvalidArgument, not a 500 with a stack in the log', async () => {
    const depth = 100_000;
    const answer = await put(`{"maxAsyncRetryAttempts":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`);
    expect(answer.status).toBe(400);
    expect(answer.body.Code).toBe('InvalidArgument');
    expect(answer.body.Message).toMatch(/^maxAsyncRetryAttempts must be an integer from 0 to 8, got /);
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
  });

  it('quotes at most the start of a long value in its message, never the whole megabyte back', async () => {
    const answer = await put(JSON.stringify({ maxAsyncEventAgeInSeconds: 'A'.repeat(900_000) }));
    expect(answer.status).toBe(400);
    expect(answer.body.Message).toMatch(/^maxAsyncEventAgeInSeconds must be an integer from 1 to 604800, got "AAAA/);
    expect(answer.body.Message.length).toBeLessThan(300);
  });

  it('still quotes a short value whole', async () => {
    const answer = await put(JSON.stringify({ asyncTask: 'yes' }));
    expect(answer).toEqual({
      status: 400,
      body: expect.objectContaining({ Code: 'InvalidArgument', Message: 'asyncTask must be true or false, got "yes"' }),
    });
  });
});
