import { maskUrl } from './logger.js';

/**
 * What {@link checkRedisUrl} names and reads.
 *
 * @example
 * ```ts
 * const check: RedisUrlCheck = { name: '--redis', readsQuery: false };
 * checkRedisUrl('redis://127.0.0.1:6379/2', check);
 * ```
 */
export interface RedisUrlCheck {
  /** The option or flag the message names: `connection`, `--redis`. */
  name: string;
  /**
   * Whether the URL's query reaches ioredis, which reads it as connection options (`?db=2` the
   * database when the path names none): a URL handed to ioredis as written. `false` when only
   * host, port, credentials and database are taken from it: a query or fragment is refused.
   * @default true
   */
  readsQuery?: boolean | undefined;
}

/**
 * Refuses a `redis://` or `rediss://` URL that ioredis would read otherwise than it looks, and
 * returns it parsed (WHATWG `URL` parses it as ioredis does): `redis:127.0.0.1:6380` (no `//`)
 * or `redis://:pw@/0` names no host, so ioredis would connect to its default 127.0.0.1:6379; a
 * path that is no database number (`/tasks`) would leave the tasks in db 0; a `%` that starts no
 * escape throws `URI malformed` from inside ioredis; a fragment is dropped. The `TypeError` names
 * `check.name` and masks the URL (see {@link maskUrl}): `Expected \`--redis\` to be a redis:// or
 * rediss:// URL naming a host (redis://HOST:PORT/DB), got \`redis***\``. No Redis client is loaded.
 *
 * @example
 * ```ts
 * checkRedisUrl('redis://10.0.0.5:6379/2', { name: 'connection' }).host; // '10.0.0.5:6379'
 * checkRedisUrl('redis://10.0.0.5:6379/tasks', { name: 'connection' }); // throws TypeError
 * ```
 */
export function checkRedisUrl(value: string, check: RedisUrlCheck): URL {
  const readsQuery = check.readsQuery ?? true;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  let problem: string | undefined;
  if (url === undefined) problem = portProblem(value);
  else if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') problem = '';
  else problem = redisUrlProblem(url, check.name, readsQuery);
  if (url === undefined || problem !== undefined) {
    throw new TypeError(
      `Expected \`${check.name}\` to be a redis:// or rediss:// URL${problem && ` ${problem}`}, got \`${maskUrl(value)}\``,
    );
  }
  return url;
}

/** Why `URL` refused the value: a port past 65535 is worth naming, the rest is just no URL. */
function portProblem(value: string): string {
  const port = /^rediss?:\/\/[^/?#]*:(\d+)(?:[/?#]|$)/i.exec(value)?.[1];
  return port !== undefined && Number(port) > 65_535 ? 'with a port from 1 to 65535' : '';
}

/** What keeps a redis:// URL from saying what ioredis connects to. */
function redisUrlProblem(url: URL, name: string, readsQuery: boolean): string | undefined {
  if (!url.host) return 'naming a host (redis://HOST:PORT/DB)';
  if (url.port === '0') return 'with a port from 1 to 65535';
  // ioredis takes the path's database first, else a `?db=` of the query.
  const path = url.pathname.slice(1);
  if (readsQuery) {
    const db = path !== '' ? path : url.searchParams.get('db');
    if (db !== null && db !== '' && !isDbNumber(db)) {
      return 'whose database (its path, or `?db=`) is a whole number (/0, /1, ...)';
    }
    if (url.hash) return 'without a fragment (`#`), which ioredis does not read';
  } else {
    if (path !== '' && !isDbNumber(path)) return 'whose path is a database number (/0, /1, ...) or nothing';
    if (url.search || url.hash) return `without a query or fragment (\`?\`, \`#\`), which \`${name}\` does not read`;
  }
  try {
    decodeURIComponent(url.username);
    decodeURIComponent(url.password);
  } catch {
    return 'with its user name and password percent-encoded (a `%` written `%25`)';
  }
  return undefined;
}

const isDbNumber = (db: string) => /^\d+$/.test(db) && Number.isSafeInteger(Number(db));
