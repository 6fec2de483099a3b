import { defineConfig } from 'vitest/config';

// Loading the OpenTelemetry Node SDK takes seconds on a busy CI machine.
export default defineConfig({ test: { testTimeout: 60_000, hookTimeout: 60_000 } });
