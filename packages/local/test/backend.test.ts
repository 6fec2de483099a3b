import { bullmq } from '@fc-async/bullmq';
import { createFcHandler, memory, silentLogger } from '@fc-async/core';
import { describe, expect, it, vi } from 'vitest';
import {
  backendFactory,
  clusterConnection,
  DEFAULT_REDIS_PREFIX,
  functionPrefix,
  gateBackends,
  parseStoreSpec,
  redisOptions,
} from '../src/backend.js';
import { failure } from '../src/errors.js';
import { freePort } from '../src/ports.js';

const notInstalled =
  (pkg: string) =>
  async (specifier: string): Promise<Record<string, unknown>> => {
    if (specifier === pkg) {
      throw Object.assign(new Error(`Cannot find package '${pkg}' imported from x`), { code: 'ERR_MODULE_NOT_FOUND' });
    }
    return {};
  };

describe('--store and --redis', () => {
  it('reads memory, sqlite:PATH and Redis URLs', () => {
    expect(parseStoreSpec(undefined, undefined)).toEqual({ kind: 'memory' });
    expect(parseStoreSpec('memory', undefined)).toEqual({ kind: 'memory' });
    expect(parseStoreSpec('sqlite:/tmp/t.db', undefined)).toEqual({ kind: 'sqlite', path: '/tmp/t.db' });
    expect(parseStoreSpec(undefined, 'redis://u:p%40ss@h:6380/2')).toMatchObject({ kind: 'redis' });
    // `--store memory` is the default spelled out: --redis with it is not two stores.
    expect(parseStoreSpec('memory', 'redis://h')).toMatchObject({ kind: 'redis' });
  });

  it('refuses a sqlite:PATH starting with ~, which no shell expands after `sqlite:`', () => {
    expect(() => parseStoreSpec('sqlite:~/tasks.db', undefined)).toThrow(/not starting with `~`.*sqlite:\$HOME/);
  });

  // sqlite() refuses these, but the PATH resolved against the folder was a file named `:memory:`
  // (or `   `) made there: a task file where none was asked for, or left empty by a failed open.
  it.each(['sqlite::memory:', 'sqlite:file::memory:', 'sqlite:file::memory:?cache=shared', 'sqlite:   '])(
    'refuses %j, which names no task file, and makes none',
    (store) => {
      expect(() => parseStoreSpec(store, undefined)).toThrow(
        `Expected \`--store\` to be \`memory\` or \`sqlite:PATH\` with PATH a file (an in-memory SQLite database keeps nothing: use --store memory), got \`${store}\``,
      );
    },
  );

  it.each([
    [['postgres://x', undefined], /Expected `--store` to be `memory` or `sqlite:PATH`, got `postgres:\/\/x`/],
    [['sqlite:', undefined], /Expected `--store`/],
    [[undefined, 'http://h'], /Expected `--redis` to be a redis:\/\/ or rediss:\/\/ URL/],
    [[undefined, 'not a url'], /Expected `--redis`/],
    [['sqlite:/tmp/x.db', 'redis://h'], /either `--store` or `--redis`/],
  ] as const)('refuses %j', ([store, redis], message) => {
    expect(() => parseStoreSpec(store, redis)).toThrow(message);
  });

  it('keeps a password or token out of the message about a mistyped URL', () => {
    for (const redis of [
      'redis//:S3CRET-PW@127.0.0.1:6379',
      'http://user:S3CRET-PW@h',
      'redis ://h?password=S3CRET-PW',
    ]) {
      let message = '';
      try {
        parseStoreSpec(undefined, redis);
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toMatch(/^Expected `--redis` to be a redis:\/\/ or rediss:\/\/ URL, got `.*\*\*\*/);
      expect(message).not.toContain('S3CRET');
    }
  });

  // ioredis would read each otherwise than it looks: another Redis (no `//`: 127.0.0.1:6379), db 0
  // (a path or query it does not take as the database), or `URI malformed` naming no flag (a `%`).
  it.each([
    ['redis:127.0.0.1:6380', 'naming a host (redis://HOST:PORT/DB), got `redis***`'],
    ['redis:///0', 'naming a host (redis://HOST:PORT/DB), got `redis***`'],
    [
      'redis://:S3CRET-PW@127.0.0.1:6380/tasks',
      'whose path is a database number (/0, /1, ...) or nothing, got `redis://***@127.0.0.1:6380/tasks`',
    ],
    ['redis://h/1/2', 'whose path is a database number (/0, /1, ...) or nothing, got `redis://h/1/2`'],
    ['redis://h/-1', 'whose path is a database number (/0, /1, ...) or nothing, got `redis://h/-1`'],
    [
      'redis://:50%off-S3CRET-PW@h:6380',
      'with its user name and password percent-encoded (a `%` written `%25`), got `redis://***@h:6380`',
    ],
    [
      'redis://h:6380?db=2',
      'without a query or fragment (`?`, `#`), which `--redis` does not read, got `redis://h:6380?***`',
    ],
    ['redis://h:0', 'with a port from 1 to 65535, got `redis://h:0`'],
    ['redis://:S3CRET-PW@h:70000', 'with a port from 1 to 65535, got `redis***`'],
    ['redis://u:S3CRET-PW@h:70000', 'with a port from 1 to 65535, got `redis***`'],
    // No credentials: the URL as typed, so that the wrong port shows.
    ['redis://h:99999', 'with a port from 1 to 65535, got `redis://h:99999`'],
    ['redis://cache.internal:65536/2', 'with a port from 1 to 65535, got `redis://cache.internal:65536/2`'],
  ])('refuses %s, naming the flag and masking the URL', (redis, problem) => {
    expect(() => parseStoreSpec(undefined, redis)).toThrow(
      new TypeError(`Expected \`--redis\` to be a redis:// or rediss:// URL ${problem}`),
    );
  });

  it('takes an IPv6 host, a user name, rediss:// and a database number', () => {
    const spec = parseStoreSpec(undefined, 'rediss://app:p%25w@[::1]:6380/15');
    expect(spec.kind === 'redis' && redisOptions(spec.url)).toEqual({
      host: '::1',
      port: 6380,
      username: 'app',
      password: 'p%w',
      db: 15,
      tls: {},
    });
  });

  it('turns a Redis URL into connection options', () => {
    expect(redisOptions(new URL('rediss://user:p%40ss@cache.local:6380/3'))).toEqual({
      host: 'cache.local',
      port: 6380,
      username: 'user',
      password: 'p@ss',
      db: 3,
      tls: {},
    });
    expect(redisOptions(new URL('redis://localhost'))).toEqual({ host: 'localhost', port: 6379 });
  });

  it('--redis-cluster: the nodes by address, the credentials and TLS of any of their URLs for every node', () => {
    const spec = parseStoreSpec(
      undefined,
      ['rediss://app:p%25w@[::1]:6380/0', 'rediss://10.0.0.6:6381', 'rediss://app:p%25w@cache.local'],
      '/',
      undefined,
      true,
    );
    expect(spec.kind === 'redis-cluster' && clusterConnection(spec.nodes)).toEqual({
      cluster: [
        { host: '::1', port: 6380 },
        { host: '10.0.0.6', port: 6381 },
        { host: 'cache.local', port: 6379 },
      ],
      redisOptions: { username: 'app', password: 'p%w', tls: {} },
      // With TLS, the host names as given: a certificate names the host, not its address.
      dnsLookup: expect.any(Function),
    });
    const plain = parseStoreSpec(undefined, ['redis://10.0.0.5:6379'], '/', undefined, true);
    expect(plain.kind === 'redis-cluster' && clusterConnection(plain.nodes)).toEqual({
      cluster: [{ host: '10.0.0.5', port: 6379 }],
    });
  });

  // @fc-async/sqlite and @fc-async/bullmq are separate packages: only the path where they are
  // missing is tested here, through an injected importer.
  it.each([
    [
      { kind: 'sqlite', path: '/tmp/t.db' } as const,
      '@fc-async/sqlite',
      /--store sqlite:PATH needs the package @fc-async\/sqlite, which is not installed \(or not built\): npm install @fc-async\/sqlite/,
    ],
    [
      { kind: 'redis', url: new URL('redis://h') } as const,
      '@fc-async/bullmq',
      /--redis needs the package @fc-async\/bullmq, which is not installed \(or not built\): npm install @fc-async\/bullmq/,
    ],
  ])('explains a missing backend package (%j)', async (spec, pkg, message) => {
    const error = await backendFactory(spec, ['f'], notInstalled(pkg)).then(
      () => undefined,
      (e: unknown) => e as { code: string; message: string },
    );
    expect(error?.code).toBe('BackendMissing');
    expect(error?.message).toMatch(message);
  });

  it('passes one SQLite file and one BullMQ prefix per function', async () => {
    const calls: unknown[][] = [];
    const importer = async () => ({
      sqlite: (...args: unknown[]) => calls.push(['sqlite', ...args]),
      bullmq: (...args: unknown[]) => calls.push(['bullmq', ...args]),
    });
    const sqliteFor = await backendFactory({ kind: 'sqlite', path: '/data/tasks.db' }, ['a', 'b'], importer);
    sqliteFor('a');
    const single = await backendFactory({ kind: 'sqlite', path: '/data/tasks.db' }, ['a'], importer);
    single('a');
    const redisFor = await backendFactory({ kind: 'redis', url: new URL('redis://h:1') }, ['a'], importer);
    redisFor('a');
    expect(calls).toEqual([
      ['sqlite', '/data/tasks.a.db'],
      ['sqlite', '/data/tasks.db'],
      ['bullmq', { connection: { host: 'h', port: 1 }, prefix: 'fc-async:a' }],
    ]);
  });

  it('passes each function <--redis-prefix>:<function> as its BullMQ prefix', async () => {
    const calls: unknown[] = [];
    const importer = async () => ({ bullmq: (options: unknown) => calls.push(options) });
    const spec = parseStoreSpec(undefined, 'redis://h:1', '/', '{fc-async}');
    expect(spec).toMatchObject({ kind: 'redis', prefix: '{fc-async}' });
    const redisFor = await backendFactory(spec, ['a', 'b'], importer);
    redisFor('a');
    redisFor('b');
    // The first call is the check of the prefix itself.
    expect(calls.slice(1)).toEqual([
      { connection: { host: 'h', port: 1 }, prefix: '{fc-async}:a' },
      { connection: { host: 'h', port: 1 }, prefix: '{fc-async}:b' },
    ]);
  });

  it('gives a function bullmq() would refuse under <prefix>:<function> (tasks, a long name) a prefix it takes', async () => {
    const long = `transcode_${'x'.repeat(54)}`; // 64 characters, FC's longest name
    const names = ['task', 'tasks', long, `${long.slice(0, 60)}_y`];
    for (const prefix of [DEFAULT_REDIS_PREFIX, '{fc-async}', 'p'.repeat(53)]) {
      const prefixes = names.map((name) => functionPrefix(prefix, name));
      for (const p of prefixes) {
        expect(p.startsWith(`${prefix}:`)).toBe(true);
        expect(() => bullmq({ connection: 'redis://h:1', prefix: p })).not.toThrow();
      }
      expect(new Set(prefixes).size).toBe(names.length);
      expect(names.map((name) => functionPrefix(prefix, name))).toEqual(prefixes); // the same at every start
    }
    expect(functionPrefix('fc-async', 'tasks')).toMatch(/^fc-async:tasks-[0-9a-f]{8}$/);
    // Any other name keeps <prefix>:<function>, which a deployment sharing the Redis names.
    expect(functionPrefix('fc-async', 'transcode')).toBe('fc-async:transcode');
    expect(functionPrefix('{fc-async}', 'my-tasks')).toBe('{fc-async}:my-tasks');
    const spec = parseStoreSpec(undefined, 'redis://h:1', '/', 'p'.repeat(54));
    await expect(backendFactory(spec, ['a'])).rejects.toThrow(
      /^Expected `--redis-prefix` to be at most 53 characters \(each function's prefix is `<prefix>:<function>`, at most 64\)/,
    );
  });

  it("refuses a function named as another's cut name, which would share its BullMQ queue", async () => {
    const cut = functionPrefix(DEFAULT_REDIS_PREFIX, 'tasks').slice(`${DEFAULT_REDIS_PREFIX}:`.length);
    const importer = async () => ({ bullmq: () => ({}) });
    const spec = parseStoreSpec(undefined, 'redis://h:1', '/');
    await expect(backendFactory(spec, ['tasks', 'api', cut], importer)).rejects.toThrow(
      `Functions \`tasks\` and \`${cut}\` would share the BullMQ prefix \`fc-async:${cut}\` (a name that is cut gets a hash of itself): rename one of them`,
    );
    // Each name once, and a name listed twice (one function), is fine.
    await expect(backendFactory(spec, ['tasks', 'api', 'tasks'], importer)).resolves.toBeTypeOf('function');
  });

  it.each([
    // 53, not bullmq()'s 64: the flag's prefix is followed by :<function>.
    ['{fc-async', /^Expected `--redis-prefix` to be 1 to 53 letters, .*, got `\{fc-async`$/],
    ['{a}{b}', /^Expected `--redis-prefix` to be 1 to 53 letters, .*, got `\{a\}\{b\}`$/],
    ['shop:tasks', /^Expected `--redis-prefix` not to end in a 'task' or 'tasks' segment/],
  ])('refuses --redis-prefix %s as bullmq() refuses it, naming the flag', async (prefix, message) => {
    const spec = parseStoreSpec(undefined, 'redis://h:1', '/', prefix);
    await expect(backendFactory(spec, ['a'])).rejects.toThrow(message);
  });

  it('refuses --redis-prefix without --redis', () => {
    expect(() => parseStoreSpec(undefined, undefined, '/', '{fc-async}')).toThrow(/`--redis-prefix` .* `--redis URL`/);
    expect(() => parseStoreSpec('sqlite:/t.db', undefined, '/', '{fc-async}')).toThrow(/`--redis-prefix`/);
  });

  it('says when a backend package does not export its factory', async () => {
    await expect(backendFactory({ kind: 'sqlite', path: '/t.db' }, ['f'], async () => ({}))).rejects.toThrow(
      /@fc-async\/sqlite does not export sqlite\(\)/,
    );
  });
});

describe('a start the backend stopped', () => {
  it('is told with its cause: where Redis was looked for and why it did not answer', async () => {
    const port = await freePort(); // nothing listens there
    const backend = bullmq({ connection: `redis://127.0.0.1:${port}`, connectTimeoutMs: 300 });
    const error = await Promise.resolve(backend.create({ concurrency: 1, logger: silentLogger })).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(failure(error)).toBe(`Redis did not answer within 300 ms (connect ECONNREFUSED 127.0.0.1:${port})`);
    expect(failure(new Error('plain'))).toBe('plain');
    expect(failure('text')).toBe('text');
  });
});

describe('a backend held back until the emulator opens it', () => {
  it('does not count the wait for the open against the engine start bound (an entry that loads for long)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const gate = gateBackends(() => memory());
      const handler = createFcHandler(() => undefined, {
        logger: silentLogger,
        async: { mode: 'local', backend: gate.backendFor('f') },
      });
      // Past the 30 s the engine gives a backend that names no bound of its own.
      await vi.advanceTimersByTimeAsync(31_000);
      gate.open();
      vi.useRealTimers();
      await expect(handler.engine?.whenReady()).resolves.toBeUndefined();
      await handler.close();
    } finally {
      vi.useRealTimers();
    }
  });
});
