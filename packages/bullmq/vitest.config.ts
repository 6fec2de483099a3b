import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // One redis-server on a free loopback port for the whole run (test/redis-server.ts).
    globalSetup: ['./test/redis-server.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
