// For the durable backends' tests: async FC events, and (for child-process fixtures) a function
// behind a plain HTTP server.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AsyncTask, FcHandler, FcHttpEvent, TaskApi, TaskQuery } from '@fc-async/core';

/** An async FC 3.0 event with a caller-chosen task id and a JSON body. */
export function asyncEvent(taskId: string, body: unknown = {}, headers: Record<string, string> = {}): FcHttpEvent {
  return {
    version: 'v1',
    rawPath: '/jobs',
    body: JSON.stringify(body),
    isBase64Encoded: false,
    headers: {
      'Content-Type': 'application/json',
      'X-Fc-Invocation-Type': 'Async',
      'X-Fc-Async-Task-Id': taskId,
      ...headers,
    },
    queryParameters: {},
    requestContext: { accountId: '123', http: { method: 'POST', path: '/jobs', sourceIp: '127.0.0.1' } },
  };
}

/** The whole body of a Node request. */
export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Every task the task API lists, oldest first, read in pages of `limit`. */
export async function listAllTasks(tasks: Pick<TaskApi, 'list'>, limit: number): Promise<AsyncTask[]> {
  const all: AsyncTask[] = [];
  let query: TaskQuery = { limit, sortOrderByTime: 'asc' };
  for (;;) {
    const page = await tasks.list(query);
    all.push(...page.tasks);
    if (!page.nextToken) return all;
    query = { ...query, nextToken: page.nextToken };
  }
}

/** Answers a request itself (resolving to `true`), or leaves it to the handler (`false`). */
export type FixtureRoutes = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

/**
 * Serves `handler` on a free loopback port: a request `routes` does not answer becomes an FC 3.0
 * event (headers joined with commas, the body in base64) and the handler's result is written
 * back. Prints `{"port":N}` on stdout once listening.
 */
export function serveFcHandler(handler: FcHandler, routes: FixtureRoutes = async () => false): Server {
  const server = createServer(async (req, res) => {
    if (await routes(req, res)) return;
    const url = req.url ?? '/';
    const body = await readBody(req);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(',') : value;
    }
    const result = await handler({
      version: 'v1',
      rawPath: url,
      body: body.toString('base64'),
      isBase64Encoded: true,
      headers,
      queryParameters: {},
      requestContext: { http: { method: req.method ?? 'GET', path: url, sourceIp: '127.0.0.1' } },
    });
    res.writeHead(result.statusCode, result.headers);
    res.end(result.isBase64Encoded ? Buffer.from(result.body, 'base64') : result.body);
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`);
  });
  return server;
}
