import { Agent, request } from 'node:http';

/** One request of the pulse, as the caller saw it. */
export interface Shot {
  taskId: string;
  status: number;
  /** The `retry-after` header of a 429, in seconds. */
  retryAfter?: string | undefined;
}

export interface PulseOptions {
  /** The HTTP trigger, e.g. `http://127.0.0.1:9000/work`. */
  url: string;
  /** Requests to send. */
  count: number;
  /** Spread the requests over this long. */
  overMs: number;
  /** The JSON body of every request. @default {} */
  body?: unknown;
  /** Open connections at most (the rest wait in the client). @default 64 */
  connections?: number;
  /** Task ids are `<prefix><n>`. @default 'pulse_' */
  prefix?: string;
}

/**
 * Fires `count` async invocations (`X-Fc-Invocation-Type: Async`, each with its own task id) in
 * even slices over `overMs`, and resolves every answer. Bounded: at most `connections` sockets,
 * 30 s per request.
 */
export async function firePulse(options: PulseOptions): Promise<Shot[]> {
  const { url, count, overMs, body = {}, connections = 64, prefix = 'pulse_' } = options;
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const payload = JSON.stringify(body);
  const slices = Math.max(1, Math.min(count, Math.floor(overMs / 10)));
  const shots: Promise<Shot>[] = [];
  try {
    for (let slice = 0; slice < slices; slice++) {
      const end = Math.round(((slice + 1) * count) / slices);
      while (shots.length < end) shots.push(post(agent, url, `${prefix}${shots.length}`, payload));
      if (slice < slices - 1) await new Promise((resolve) => setTimeout(resolve, overMs / slices));
    }
    return await Promise.all(shots);
  } finally {
    agent.destroy();
  }
}

function post(agent: Agent, url: string, taskId: string, payload: string): Promise<Shot> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      agent,
      timeout: 30_000,
      headers: {
        'content-type': 'application/json',
        'x-fc-invocation-type': 'Async',
        'x-fc-async-task-id': taskId,
      },
    });
    req.on('response', (res) => {
      res.resume(); // the 202 is empty; a 429 carries { code, message }
      res.on('end', () => resolve({ taskId, status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer for ${taskId} within 30 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}
