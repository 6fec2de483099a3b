import { describe, expect, it } from 'vitest';
import { errorResponse, FcAsyncError, silentLogger } from '../src/index.js';

describe('FcAsyncError answers', () => {
  it('retryAfterSeconds is sent as Retry-After next to the other headers, and the body stays { code, message }', () => {
    const error = new FcAsyncError('SqliteStoreLocked', 'tasks.db is in use by another process', {
      statusCode: 503,
      headers: { 'x-extra': 'kept' },
      retryAfterSeconds: 2,
    });
    const answer = errorResponse(error, silentLogger, 'r1');
    expect([answer.statusCode, answer.headers['retry-after'], answer.headers['x-extra']]).toEqual([503, '2', 'kept']);
    expect(JSON.parse(String(answer.body))).toEqual({
      code: 'SqliteStoreLocked',
      message: 'tasks.db is in use by another process',
    });
  });

  it('without retryAfterSeconds no Retry-After is made up', () => {
    const answer = errorResponse(new FcAsyncError('InvalidArgument', 'bad', { statusCode: 400 }), silentLogger, 'r2');
    expect(answer.headers['retry-after']).toBeUndefined();
  });
});
