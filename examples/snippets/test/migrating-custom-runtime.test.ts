import { afterAll, beforeAll, expect, it } from 'vitest';

// docs/migrating.md: the start-koa app under fcAsync() and listen() answers a sync call as the
// template's app.listen(9000) did, and takes async calls it never could.

let server: { port: number; close(): Promise<void> };
const saved = process.env.FC_CUSTOM_LISTEN_PORT;
beforeAll(async () => {
  process.env.FC_CUSTOM_LISTEN_PORT = '0'; // any free port, where FC says 9000
  ({ server } = await import('../src/migrating/custom-runtime-after.js'));
});
afterAll(async () => {
  await server?.close();
  if (saved === undefined) delete process.env.FC_CUSTOM_LISTEN_PORT;
  else process.env.FC_CUSTOM_LISTEN_PORT = saved;
});

const url = (path: string) => `http://127.0.0.1:${server.port}${path}`;

it('answers a sync call as the template did, the request id from FC', async () => {
  const response = await fetch(url('/'), { headers: { 'x-fc-request-id': '1-sync' } });
  expect([response.status, await response.json()]).toEqual([
    200,
    { hello: 'world', requestId: '1-sync', async: false },
  ]);
});

it('takes an async call with 202 and its task id (off FC: the local queue)', async () => {
  const response = await fetch(url('/'), {
    method: 'POST',
    headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'hello_1' },
  });
  expect([response.status, response.headers.get('x-fc-async-task-id')]).toEqual([202, 'hello_1']);
});
