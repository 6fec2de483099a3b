import { pipeline, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { type AnswerLimit, runBridged } from '../src/bridge.js';

// The bound `fc-async dev` puts on an in-process app's answer (FC's 32 MB of a response): the bytes
// past it are never held, the invocation fails with the emulator's error, and the app's writes
// fail as on a closed connection.

const request = { method: 'GET', url: '/', headers: {}, body: Buffer.alloc(0) };
const limit: AnswerLimit = { bytes: 10, tooLarge: () => new Error('too large') };

describe('runBridged with an answer limit', () => {
  it('answers whole at the limit, counting a string’s UTF-8 bytes', async () => {
    const response = await runBridged((_req, res) => res.end('é'.repeat(5)), request, undefined, limit);
    expect(Buffer.from(response.body as string).length).toBe(10);
  });

  it('rejects with tooLarge() past it, and the write that passed it fails', async () => {
    const events: string[] = [];
    const answer = runBridged(
      (_req, res) => {
        res.on('finish', () => events.push('finish'));
        res.on('close', () => events.push('close'));
        res.write('12345', () => events.push('first written'));
        res.write('678901', (error) => events.push(`second: ${(error as { code?: string })?.code}`));
      },
      request,
      undefined,
      limit,
    );
    await expect(answer).rejects.toThrow('too large');
    await new Promise((resolve) => setImmediate(resolve));
    expect(events.sort()).toEqual(['close', 'first written', 'second: ERR_STREAM_DESTROYED']);
  });

  it('an end() past it rejects without finishing the response', async () => {
    let finished = false;
    const answer = runBridged(
      (_req, res) => {
        res.on('finish', () => {
          finished = true;
        });
        res.end(Buffer.alloc(11));
      },
      request,
      undefined,
      limit,
    );
    await expect(answer).rejects.toThrow('too large');
    expect(finished).toBe(false);
  });

  it('stops a piped stream at the limit rather than reading it to its end', async () => {
    let produced = 0;
    let source: Readable | undefined;
    const answer = runBridged(
      (_req, res) => {
        source = new Readable({
          read() {
            produced++;
            this.push(produced > 1000 ? null : Buffer.alloc(4096));
          },
        });
        pipeline(source, res, () => {});
      },
      request,
      undefined,
      limit,
    );
    await expect(answer).rejects.toThrow('too large');
    await new Promise((resolve) => setImmediate(resolve));
    expect(source?.destroyed).toBe(true);
    expect(produced).toBeLessThan(1000);
  });
});
