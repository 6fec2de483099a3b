import { describe, expect, it } from 'vitest';
import type { LocalFunction } from '../src/function.js';
import { FunctionRegistry } from '../src/registry.js';

/** Just what routing reads of a function. */
const fn = (name: string, http = true) => ({ spec: { name, http: http ? {} : undefined } }) as unknown as LocalFunction;

describe('FunctionRegistry.route', () => {
  it('routes by Host for each request, whatever the Host of the one before', () => {
    const [a, b, events] = [fn('a'), fn('b'), fn('events', false)];
    const registry = new FunctionRegistry([a, b, events]);
    const hosts = ['a.localhost:9000', 'b.localhost:9000', '127.0.0.1:9000', 'a.localhost:9000', 'events.localhost'];
    const routed = [...hosts, ...hosts].map((host) => registry.route(host, '/b/x?q=1'));
    const expected = [
      { fn: a, url: '/b/x?q=1' },
      { fn: b, url: '/b/x?q=1' },
      { fn: b, url: '/x?q=1' },
      { fn: a, url: '/b/x?q=1' },
      // An event function has no HTTP trigger: the path prefix decides.
      { fn: b, url: '/x?q=1' },
    ];
    expect(routed).toEqual([...expected, ...expected]);
    expect(registry.route(undefined, '/a')).toEqual({ fn: a, url: '/' });
    expect(registry.route('', '/nope/x')).toBeUndefined();
  });

  it('sends every path to the only HTTP function unless the Host names another', () => {
    const [only, other] = [fn('only'), fn('other', false)];
    const registry = new FunctionRegistry([only, other]);
    expect(registry.route('127.0.0.1:9000', '/other/x')).toEqual({ fn: only, url: '/other/x' });
    expect(registry.route('other.localhost:9000', '/x')).toEqual({ fn: only, url: '/x' });
    expect(registry.route('only.localhost:9000', '/x')).toEqual({ fn: only, url: '/x' });
  });
});
