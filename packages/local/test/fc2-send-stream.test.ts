import { afterEach, describe, expect, it } from 'vitest';
import { startFc2Web, waitFor } from './helpers.js';

// FC 2.0's resp.send takes a readable stream. One that fails fails the invocation then and there,
// as a throw does, rather than leaving it to the function's timeout (60 s here) while the emulator
// logs an uncaught exception that belongs to no invocation.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

describe("an FC 2.0 handler's resp.send(stream) under fc-async dev", () => {
  it("answers 502 UnhandledInvocationError when the stream fails before its first byte (a file that isn't there)", async () => {
    const fc2 = await startFc2Web(`const { createReadStream } = require('node:fs');
exports.handler = (req, resp) => {
  resp.setHeader('content-type', 'application/pdf');
  resp.send(createReadStream('/nonexistent/fc-async/report.pdf'));
};
`);
    cleanups.push(fc2.close);
    const res = await fetch(`${fc2.emulator.triggerUrl}/report.pdf`);
    expect(res.status).toBe(502);
    expect(res.headers.get('x-fc-error-type')).toBe('UnhandledInvocationError');
    expect(await res.json()).toMatchObject({ errorType: 'Error', errorMessage: expect.stringContaining('ENOENT') });
  }, 20_000);

  it('fails the async attempt when the stream fails halfway, so that it is retried', async () => {
    const fc2 = await startFc2Web(`const { Readable } = require('node:stream');
exports.handler = (req, resp) => {
  const stream = new Readable({ read() {} });
  stream.push('partial ');
  process.nextTick(() => stream.destroy(new Error('disk gone')));
  resp.send(stream);
};
`);
    cleanups.push(fc2.close);
    const control = `${fc2.emulator.controlUrl}/2023-03-30/functions/web`;
    const put = await fetch(`${control}/async-invoke-config`, { method: 'PUT', body: '{"maxAsyncRetryAttempts":1}' });
    expect(put.status).toBe(200);
    const accepted = await fetch(`${fc2.emulator.triggerUrl}/export`, {
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-stateful-async-invocation-id': 'export_1' },
    });
    expect(accepted.status).toBe(202);
    const task = await waitFor(async () => {
      const body = (await (await fetch(`${control}/async-tasks/export_1`)).json()) as {
        status?: string;
        alreadyRetriedTimes?: number;
        taskErrorMessage?: string;
      };
      return body.status === 'Succeeded' || body.status === 'Failed' ? body : undefined;
    });
    expect(task).toMatchObject({ status: 'Failed', alreadyRetriedTimes: 1, taskErrorMessage: 'disk gone' });
  }, 20_000);

  it('still sends a stream that ends', async () => {
    const fc2 = await startFc2Web(`const { Readable } = require('node:stream');
exports.handler = (req, resp) => {
  resp.setHeader('content-type', 'text/plain');
  resp.send(Readable.from(['a', 'b', 'c']));
};
`);
    cleanups.push(fc2.close);
    const res = await fetch(`${fc2.emulator.triggerUrl}/file`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('abc');
  });
});
