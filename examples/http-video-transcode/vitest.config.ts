import { defineConfig } from 'vitest/config';

// ffmpeg runs for real in these tests: give each test room on a busy 2-core CI machine.
export default defineConfig({
  test: { testTimeout: 60_000, hookTimeout: 60_000 },
});
