import { describe, expect, it } from 'vitest';
import type { AsyncBackend } from '../src/async/backend.js';
import { MemoryTaskStore, PQueueDriver } from '../src/async/memory.js';
import { AsyncEngine, resolveAsyncOptions } from '../src/index.js';
import { memoryLogger } from './helpers.js';

// AsyncEngine.watchStore: what the emulator's dashboard learns of the tasks other instances change,
// through a shared store's `watch`, which runs only while someone listens.

/** A memory store that says when it is watched, and lets the test report changes. */
class WatchedStore extends MemoryTaskStore {
  watching = 0;
  report: ((ids: readonly string[]) => void) | undefined;
  watch(listener: (ids: readonly string[]) => void): () => void {
    this.watching++;
    this.report = listener;
    return () => {
      this.watching--;
      this.report = undefined;
    };
  }
}

describe('AsyncEngine.watchStore', () => {
  it('watches the store once it is started and while listeners last, and passes on what it reports', async () => {
    const store = new WatchedStore();
    const backend: AsyncBackend = {
      name: 'watched',
      persistent: false,
      create: () => ({ store, queue: new PQueueDriver(1) }),
    };
    const engine = new AsyncEngine(resolveAsyncOptions({ mode: 'local', backend }), {
      logger: memoryLogger(),
      redact: (headers) => headers as Record<string, string>,
      run: async () => ({ statusCode: 200, headers: {}, body: Buffer.alloc(0) }),
    });
    const seen: string[][] = [];
    // Asked before the backend started: watched once it has.
    const offA = engine.watchStore((ids) => seen.push(['a', ...ids]));
    const offB = engine.watchStore((ids) => seen.push(['b', ...ids]));
    await engine.whenReady();
    expect(store.watching).toBe(1);
    store.report?.(['t_1']);
    expect(seen).toEqual([
      ['a', 't_1'],
      ['b', 't_1'],
    ]);
    offA();
    expect(store.watching).toBe(1);
    offB();
    expect(store.watching).toBe(0);
    // Watched again for a new listener.
    const offC = engine.watchStore(() => {});
    expect(store.watching).toBe(1);
    offC();
    await engine.close({ timeoutMs: 0 });
  });
});
