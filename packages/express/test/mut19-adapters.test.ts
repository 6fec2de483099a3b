import express from 'express';
import { describe, expect, it } from 'vitest';
import { createHandler } from '../src/index.js';
import { event, logger } from './event.js';

// Behaviour of the Express adapter that the nineteenth session's mutation audit found no test holding.

describe('@fc-async/express: an unmatched route', () => {
  it('answers 404 naming the path without its query string (a token in the query stays out of the answer)', async () => {
    const app = express();
    app.get('/known', (_req, res) => res.send('ok'));
    const r = await createHandler(app, { logger: logger() })(event('GET', '/reports?token=s3cr3t&page=2'), {});
    expect(r.statusCode).toBe(404);
    expect(JSON.parse(r.body)).toEqual({ code: 'NotFound', message: 'Cannot GET /reports' });
    expect(r.body).not.toContain('s3cr3t');
  });
});

describe('@fc-async/express: an error whose status is no error status', () => {
  it.each([200, 302])(
    'answers an error carrying status %i a generic 500, and logs it (as Express does)',
    async (status) => {
      const app = express();
      app.get('/odd', () => {
        throw Object.assign(new Error('internal detail'), { status });
      });
      const log = logger();
      const r = await createHandler(app, { logger: log })(event('GET', '/odd'), {});
      expect(r.statusCode).toBe(500);
      expect(JSON.parse(r.body)).toEqual({ code: 'InternalError', message: 'Internal Server Error' });
      expect(log.errors).toHaveLength(1);
    },
  );
});
