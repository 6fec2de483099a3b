import { describe, expect, it } from 'vitest';
import type { AsyncBackend } from '../src/async/backend.js';
import { memory } from '../src/async/memory.js';
import { currentStartHold, type EngineStartHold, holdEngineStarts, holdLateEngines } from '../src/async/start-hold.js';
import { createFcHandler, createFcRuntime } from '../src/index.js';
import { asyncEvent, context, deferred, event, memoryLogger, ok, tick } from './helpers.js';

/** memory(), counting its starts. */
function countedBackend(): AsyncBackend & { creates: number } {
  const inner = memory();
  const backend = {
    name: inner.name,
    persistent: inner.persistent,
    creates: 0,
    create: (ctx: Parameters<AsyncBackend['create']>[0]) => {
      backend.creates++;
      return inner.create(ctx);
    },
  };
  return backend;
}

/** A hold its test opens, recording what the engines told it. */
function testHold() {
  const opened = deferred();
  const entered: { name: string; persistent: boolean }[] = [];
  let waits = 0;
  const hold: EngineStartHold = {
    enter(backend) {
      entered.push({ name: backend.name, persistent: backend.persistent });
      return { start: opened.promise, waited: () => waits++ };
    },
  };
  return { hold, open: () => opened.resolve(), entered, waits: () => waits };
}

const handlerOver = (backend: AsyncBackend) => createFcHandler(ok, { env: {}, async: { mode: 'local', backend } });

describe('an engine made under a start hold', () => {
  it('starts its backend only once the hold opens; requests meanwhile wait, then get their 202', async () => {
    const { hold, open, entered, waits } = testHold();
    const backend = countedBackend();
    const handler = await holdEngineStarts(hold, async () => handlerOver(backend));
    await tick(10);
    expect(backend.creates).toBe(0);
    expect(entered).toEqual([{ name: 'memory', persistent: false }]);

    let answered = false;
    const answer = handler(asyncEvent({ taskId: 'held_1' }), context).then((r) => {
      answered = true;
      return r;
    });
    void handler.engine?.whenReady();
    await tick(10);
    expect(answered).toBe(false);
    // Told once, however many waits.
    expect(waits()).toBe(1);

    open();
    expect((await answer).statusCode).toBe(202);
    expect(backend.creates).toBe(1);
    await handler.close();
  });

  it('does not hang close() when the hold never opens', async () => {
    const opened = new Promise<void>(() => {});
    const hold: EngineStartHold = {
      enter: () => {
        let now = () => {};
        const wanted = new Promise<void>((resolve) => {
          now = resolve;
        });
        return { start: Promise.race([opened, wanted]), waited: () => now() };
      },
    };
    const backend = countedBackend();
    const handler = await holdEngineStarts(hold, async () => handlerOver(backend));
    await handler.close();
    expect(backend.creates).toBe(1);
  });

  it('is only one made within the hold: one made outside starts its backend in its constructor', async () => {
    const { hold } = testHold();
    await holdEngineStarts(hold, async () => undefined);
    const backend = countedBackend();
    const handler = handlerOver(backend);
    expect(backend.creates).toBe(1);
    return handler.close();
  });

  it('ends with the load: the storage behind it is off once no load is under a hold', async () => {
    const { hold } = testHold();
    // A timer the load starts and that fires after it: while the storage is on, it would carry the hold.
    let seen: EngineStartHold | undefined | 'not yet' = 'not yet';
    const fired = deferred();
    await holdEngineStarts(hold, async () => {
      expect(currentStartHold()).toBe(hold);
      setTimeout(() => {
        seen = currentStartHold();
        fired.resolve();
      }, 20);
    });
    await fired.promise;
    expect(seen).toBeUndefined();
  });
});

describe('a handler made under a start hold with defaults (the emulator loading an entry)', () => {
  it('takes the held logger, async options and backend where its own options say nothing', async () => {
    const { hold, open } = testHold();
    const backend = countedBackend();
    const logger = memoryLogger();
    const asked: { backend: boolean }[] = [];
    hold.defaults = (own) => {
      asked.push(own);
      return { logger, async: { backend, maxQueuedTasks: 1 } };
    };
    const failing = () =>
      createFcHandler(
        () => {
          throw new Error('boom');
        },
        { env: {}, async: { mode: 'local', maxQueuedTasks: undefined } },
      );
    const handler = await holdEngineStarts(hold, async () => failing());
    open();
    await handler.engine?.whenReady();

    expect(asked).toEqual([{ backend: false }]);
    expect(backend.creates).toBe(1);
    expect((await handler(asyncEvent({ taskId: 'held_a', delay: '60' }), context)).statusCode).toBe(202);
    // maxQueuedTasks: 1 came from the hold (an explicit `undefined` leaves it to the default).
    expect((await handler(asyncEvent({ taskId: 'held_b', delay: '60' }), context)).statusCode).toBe(429);
    expect((await handler(event({ path: '/sync' }), context)).statusCode).toBe(500);
    expect(logger.entries.filter((e) => e.level === 'error')).not.toEqual([]);
    await handler.close({ timeoutMs: 1 });
  });

  it('keeps what its own options name: the held backend is not used, and the hold is told so', async () => {
    const { hold, open } = testHold();
    const held = countedBackend();
    const own = countedBackend();
    const asked: { backend: boolean }[] = [];
    hold.defaults = (ownOptions) => {
      asked.push(ownOptions);
      return ownOptions.backend ? { async: {} } : { async: { backend: held } };
    };
    const handler = await holdEngineStarts(hold, async () => handlerOver(own));
    open();
    await handler.engine?.whenReady();

    expect(asked).toEqual([{ backend: true }]);
    expect([own.creates, held.creates]).toEqual([1, 0]);
    await handler.close();
  });
});

// `fc-async dev` plays FC in front of the app it serves: an fcAsync() in it, or a handler the
// entry calls, must not run an engine of its own on its backend (a second worker of a shared queue).
describe('what the hold decides for the engines behind the emulator', () => {
  it('middleware(): an fcAsync() made under a hold that says platform is in platform mode and never starts its backend', async () => {
    const { hold, open } = testHold();
    const backend = countedBackend();
    let told: AsyncBackend | undefined;
    const runtime = await holdEngineStarts(
      {
        ...hold,
        middleware: (own) => {
          told = own.backend;
          return 'platform';
        },
      },
      async () => createFcRuntime({ env: {}, async: { backend } }),
    );
    open();
    await tick();
    expect(runtime.mode).toBe('platform');
    expect(runtime.engine).toBeUndefined();
    expect(told).toBe(backend);
    expect(backend.creates).toBe(0);
    await runtime.close();
  });

  it('ownBackend(): a handler whose options name a backend gets the one the hold gives instead', async () => {
    const { hold, open } = testHold();
    const own = countedBackend();
    const given = countedBackend();
    const handler = await holdEngineStarts({ ...hold, ownBackend: () => given }, async () => handlerOver(own));
    open();
    await handler.engine?.whenReady();
    expect([own.creates, given.creates]).toEqual([0, 1]);
    await handler.close();
  });

  it('a late hold: what is made outside any load while it is in force goes through it, and not once it is released', async () => {
    const own = countedBackend();
    const given = countedBackend();
    let told: AsyncBackend | undefined;
    const release = holdLateEngines({
      ownBackend: () => given,
      middleware: (o) => {
        told = o.backend;
        return 'platform';
      },
    });
    let handler: ReturnType<typeof handlerOver>;
    let runtime: ReturnType<typeof createFcRuntime>;
    try {
      handler = handlerOver(own);
      runtime = createFcRuntime({ env: {}, async: { backend: own } });
    } finally {
      release();
    }
    await handler.engine?.whenReady();
    expect([own.creates, given.creates]).toEqual([0, 1]);
    expect([runtime.mode, told]).toEqual(['platform', own]);
    const after = handlerOver(own);
    await after.engine?.whenReady();
    expect([own.creates, given.creates]).toEqual([1, 1]);
    await Promise.all([handler.close(), runtime.close(), after.close()]);
  });
});
