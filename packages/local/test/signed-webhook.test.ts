import { createFcHandler, fcHttpEvent, httpDestination, silentLogger } from '@fc-async/core';
import { expect, it } from 'vitest';
import { startEmulator } from '../src/index.js';
import { fixture } from './helpers.js';

// docs/destinations.md's receiver deployed as a function (fc-async dev here, an HTTP trigger on
// FC): the trigger drops a client's own x-fc-* headers, as FC does, so the signature header must
// not be one of them, or every signed record is refused 401 and, a 4xx, lost.
it('a signed httpDestination record reaches a receiver served by the emulator with its signature', async () => {
  const emulator = await startEmulator({
    entry: fixture('signed-receiver.mjs'),
    name: 'receiver',
    port: 0,
    controlPort: 0,
    output: () => {},
  });
  const sender = createFcHandler((_req, res) => res.end('done'), {
    env: {},
    logger: silentLogger,
    async: { mode: 'local' },
    destinations: {
      onSuccess: httpDestination(new URL('hooks', emulator.triggerUrl).href, { secret: 'receiver-secret', retries: 0 }),
    },
  });
  try {
    const accepted = await sender(
      fcHttpEvent({
        method: 'POST',
        url: '/',
        headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'signed_1' },
      }),
    );
    expect(accepted.statusCode).toBe(202);
    await sender.drain();
    expect((await sender.tasks.get('signed_1'))?.destinationStatus).toBe('Succeeded');
  } finally {
    await sender.close();
    await emulator.close();
  }
});
