import { fcAsync } from '@fc-async/express';
import express from 'express';
import { ASYNC_CONFIG } from './config.js';

/** What `POST /initialize` prepared (a real app opens its pools and warms its caches here). */
const instance = { initializedAt: undefined as string | undefined };
export async function initialize(): Promise<void> {
  instance.initializedAt = new Date().toISOString();
}

// The custom-runtime middleware: async requests are queued (local mode) or run and marked for FC
// with `x-fc-status: 404` when they fail (platform mode, on FC).
export const fc = fcAsync({
  async: ASYNC_CONFIG,
  destinations: {
    // On FC, stdout and stderr go to the function's logs (SLS). The record holds no credentials.
    onFailure: (record) => {
      const { requestId, condition, approximateInvokeCount } = record.requestContext;
      console.error(
        JSON.stringify({
          level: 'error',
          message: 'report failed for good',
          requestId,
          condition,
          approximateInvokeCount,
        }),
      );
    },
  },
});

export const app = express();
app.set('trust proxy', true); // FC's gateway is the proxy: req.ip is the caller
app.use(fc); // first, before any body parser: an async request's body is queued as it arrived
app.use(express.json());

app.get('/hello', (req, res) => {
  res.json({ hello: 'world', requestId: req.fc?.requestId, initializedAt: instance.initializedAt });
});

// Long work: call it with `X-Fc-Invocation-Type: Async`. `{ "fail": true }` plays a failure.
app.post('/reports', async (req, res) => {
  const { table, ms = 50, fail = false } = (req.body ?? {}) as { table?: unknown; ms?: unknown; fail?: unknown };
  if (typeof table !== 'string' || table === '' || typeof ms !== 'number' || ms < 0 || ms > 60_000) {
    res
      .status(400)
      .json({ code: 'InvalidReport', message: 'Expected `table` (a string) and an optional `ms` from 0 to 60000' });
    return;
  }
  await new Promise((resolve) => setTimeout(resolve, ms));
  if (fail === true) {
    res.status(500).json({ code: 'ReportFailed', message: `The report of ${table} failed` });
    return;
  }
  res.json({ report: `${table}.csv`, attempt: req.fc?.attempt });
});

// Local mode only (on FC, use GetAsyncTask): the task API, for a status page. Put it behind your
// own authentication before exposing it.
app.get('/tasks/:taskId', async (req, res) => {
  try {
    const task = await fc.tasks.get(req.params.taskId);
    if (!task) {
      res.status(404).json({ code: 'AsyncTaskNotFound', message: `No task ${req.params.taskId}` });
      return;
    }
    const { taskId, status, alreadyRetriedTimes, returnPayload } = task;
    res.json({ taskId, status, alreadyRetriedTimes, returnPayload });
  } catch (error) {
    const {
      statusCode = 500,
      code = 'InternalError',
      message = 'Internal Server Error',
    } = error as {
      statusCode?: number;
      code?: string;
      message?: string;
    };
    res.status(statusCode).json({ code, message }); // NotAvailableInPlatformMode on FC: 400
  }
});
