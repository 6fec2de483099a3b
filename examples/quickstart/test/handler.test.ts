import { fcHttpEvent } from '@fc-async/core';
import { afterAll, expect, it, vi } from 'vitest';
import { handler } from '../src/index.js';

afterAll(() => handler.close());

it('accepts an async call with 202, then runs it', async () => {
  vi.spyOn(console, 'log').mockImplementation(() => {}); // the example's onSuccess logs
  const event = fcHttpEvent({
    method: 'POST',
    url: '/thumbnails',
    headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'thumb_test' },
    body: { image: 'test.jpg' },
  });
  expect((await handler(event)).statusCode).toBe(202);
  await handler.drain();
  const task = await handler.tasks.get('thumb_test');
  expect(task?.status).toBe('Succeeded');
  expect(JSON.parse(task?.returnPayload ?? '')).toMatchObject({ made: 'test.jpg.thumb.png', async: true });
});
