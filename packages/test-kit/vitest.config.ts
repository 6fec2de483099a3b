import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Generous bounds for a loaded machine; the SIGTERM cases start child processes.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
