import { afterAll, describe, expect, it, vi } from 'vitest';
import { sampleContext, sampleEvent } from '../src/events.js';
import { handler } from '../src/index.js';

afterAll(() => handler.close());

describe('quickstart example', () => {
  it('answers a sync call', async () => {
    const result = await handler(sampleEvent('GET', '/hello', { query: { name: 'fc' } }), sampleContext);
    expect(result.statusCode).toBe(200);
    expect(JSON.parse(result.body)).toMatchObject({ hello: 'fc' });
  });

  it('runs an async call in the background and records it', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const accepted = await handler(
      sampleEvent('POST', '/thumbnails', {
        body: { image: 'dog.jpg' },
        headers: { 'X-Fc-Invocation-Type': 'Async', 'X-Fc-Async-Task-Id': 'thumb_dog' },
      }),
      sampleContext,
    );
    expect(accepted.statusCode).toBe(202);
    await handler.drain();
    const task = await handler.tasks.get('thumb_dog');
    expect(task?.status).toBe('Succeeded');
    expect(JSON.parse(task?.returnPayload ?? '')).toEqual({ made: 'dog.jpg.thumb.png', async: true, attempt: 0 });
    expect(log).toHaveBeenCalledWith('onSuccess', task?.requestId, task?.returnPayload);
    log.mockRestore();
  });
});
