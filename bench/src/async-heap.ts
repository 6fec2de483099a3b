import type { FcHandler } from '@fc-async/core';
import { ASYNC_BODY, acceptOne, asyncEvent, blockedApp, localHandler, nextMacrotask } from './async-fixtures.js';

/**
 * Heap per queued task, run as a child process started with `--expose-gc` (see async.ts): one
 * warm-up batch, then `count` tasks accepted behind a blocked app on a fresh handler, with a
 * full GC before and after. Prints one JSON line: bytes per task of `heapUsed` and of
 * `arrayBuffers` (where Buffers keep their bytes), and the body's size.
 */
async function measure(count: number): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('async-heap.ts needs node --expose-gc');
  // The JSON bytes FC passes: parsed on every call, so each task keeps strings of its own.
  const event = Buffer.from(JSON.stringify(asyncEvent()));
  const fill = async () => {
    const blocked = blockedApp();
    const handler = localHandler(blocked.app, { async: { maxQueuedTasks: count + 100 } });
    await handler.engine?.whenReady();
    return { blocked, handler };
  };
  const run = async (handler: FcHandler) => {
    for (let i = 0; i < count; i++) {
      await acceptOne(handler, event);
      if ((i & 15) === 15) await nextMacrotask();
    }
    await nextMacrotask();
    await nextMacrotask();
  };
  const settle = async () => {
    for (let i = 0; i < 4; i++) {
      await nextMacrotask();
      gc();
    }
  };
  // Warm-up: the code is compiled and its feedback collected before the baseline is taken.
  await warmUp(fill, run);
  const { blocked, handler } = await fill();
  await settle();
  const before = process.memoryUsage();
  await run(handler);
  await settle();
  const after = process.memoryUsage();
  const queued = handler.engine?.tasks ? (await handler.engine.tasks.list({ status: 'Enqueued', limit: 1 })).tasks : [];
  if (queued.length === 0) throw new Error('no task was left queued: the app did not block');
  console.log(
    JSON.stringify({
      count,
      heapUsedPerTask: (after.heapUsed - before.heapUsed) / count,
      arrayBuffersPerTask: (after.arrayBuffers - before.arrayBuffers) / count,
      bodyBytes: Buffer.byteLength(ASYNC_BODY),
    }),
  );
  blocked.release();
  await handler.drain();
  await handler.close();
}

/** Two rounds on handlers thrown away after. */
async function warmUp(
  fill: () => Promise<{ blocked: ReturnType<typeof blockedApp>; handler: FcHandler }>,
  run: (handler: FcHandler) => Promise<void>,
): Promise<void> {
  for (let i = 0; i < 2; i++) {
    const { blocked, handler } = await fill();
    await run(handler);
    blocked.release();
    await handler.drain();
    await handler.close();
  }
}

await measure(Number(process.argv[2] ?? 10_000));
