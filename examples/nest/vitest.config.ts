import { defineConfig } from 'vitest/config';

// Hang guards sized for a busy 2-core CI machine; speed is measured by `npm run bench`, not here.
export default defineConfig({ test: { testTimeout: 30_000, hookTimeout: 60_000 } });
