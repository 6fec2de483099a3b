// One check of Redis URLs for bullmq()'s `connection` (handed to ioredis as written: its query is
// read) and `fc-async dev --redis` (only host, port, credentials and database go on).
import { describe, expect, it } from 'vitest';
import { checkRedisUrl } from '../src/index.js';

const message = (name: string, problem: string, got: string) =>
  new TypeError(`Expected \`${name}\` to be a redis:// or rediss:// URL${problem && ` ${problem}`}, got \`${got}\``);

describe('checkRedisUrl', () => {
  it.each([
    ['redis:127.0.0.1:6380', 'naming a host (redis://HOST:PORT/DB)', 'redis***'],
    ['redis:///0', 'naming a host (redis://HOST:PORT/DB)', 'redis***'],
    ['redis://h:0', 'with a port from 1 to 65535', 'redis://h:0'],
    ['redis://:S3CRET-PW@h:70000', 'with a port from 1 to 65535', 'redis***'],
    ['REDIS://:S3CRET-PW@h:70000', 'with a port from 1 to 65535', 'REDIS***'],
    [
      'redis://:50%off-S3CRET-PW@h:6380',
      'with its user name and password percent-encoded (a `%` written `%25`)',
      'redis://***@h:6380',
    ],
    ['http://user:S3CRET-PW@h', '', 'http://***@h'],
    ['not a url', '', 'not a url'],
    // A bad port and no credentials: shown whole, so that the mistake can be seen.
    ['redis://h:99999', 'with a port from 1 to 65535', 'redis://h:99999'],
    ['rediss://cache.internal:65536/2', 'with a port from 1 to 65535', 'rediss://cache.internal:65536/2'],
    ['redis://u:S3CRET-PW@h:70000', 'with a port from 1 to 65535', 'redis***'],
    ['redis://:S3CRET@PW@h:70000', 'with a port from 1 to 65535', 'redis***'],
    ['redis://:S3CRET%40PW@h:70000', 'with a port from 1 to 65535', 'redis***'],
  ])('refuses %s alike whether the query is read or not, masking the URL', (url, problem, got) => {
    expect(() => checkRedisUrl(url, { name: 'connection' })).toThrow(message('connection', problem, got));
    expect(() => checkRedisUrl(url, { name: '--redis', readsQuery: false })).toThrow(message('--redis', problem, got));
  });

  it.each([
    ['redis://:S3CRET-PW@127.0.0.1:6380/tasks', 'redis://***@127.0.0.1:6380/tasks'],
    ['redis://h:6380?db=tasks', 'redis://h:6380?***'],
    ['redis://h:6380/99999999999999999999', 'redis://h:6380/99999999999999999999'],
    ['redis://h/-1', 'redis://h/-1'],
  ])('a URL handed to ioredis: refuses %s, whose database is no number (its path, else ?db=)', (url, got) => {
    const problem = 'whose database (its path, or `?db=`) is a whole number (/0, /1, ...)';
    expect(() => checkRedisUrl(url, { name: 'connection' })).toThrow(message('connection', problem, got));
  });

  it('a URL handed to ioredis: takes its query, refuses a fragment', () => {
    for (const url of ['redis://h:6380?db=3&family=6', 'rediss://app:p%25w@[::1]:6380/15', 'redis://h/']) {
      expect(checkRedisUrl(url, { name: 'connection' }).href).toBe(url);
    }
    expect(() => checkRedisUrl('redis://h:6380#x', { name: 'connection' })).toThrow(
      message('connection', 'without a fragment (`#`), which ioredis does not read', 'redis://h:6380#***'),
    );
  });

  it.each([
    [
      'redis://h:6380?db=2',
      'without a query or fragment (`?`, `#`), which `--redis` does not read',
      'redis://h:6380?***',
    ],
    ['redis://h:6380#x', 'without a query or fragment (`?`, `#`), which `--redis` does not read', 'redis://h:6380#***'],
    ['redis://h/1/2', 'whose path is a database number (/0, /1, ...) or nothing', 'redis://h/1/2'],
    ['redis://h/x?db=2', 'whose path is a database number (/0, /1, ...) or nothing', 'redis://h/x?***'],
  ])('a URL read for its address only: refuses %s', (url, problem, got) => {
    expect(() => checkRedisUrl(url, { name: '--redis', readsQuery: false })).toThrow(message('--redis', problem, got));
  });

  it('returns the URL parsed: host, port, credentials and database as written', () => {
    const url = checkRedisUrl('rediss://app:p%25w@[::1]:6380/15', { name: '--redis', readsQuery: false });
    expect([url.protocol, url.hostname, url.port, url.username, url.password, url.pathname]).toEqual([
      'rediss:',
      '[::1]',
      '6380',
      'app',
      'p%25w',
      '/15',
    ]);
  });
});
