import { fileURLToPath } from 'node:url';
import { startEmulator } from '@fc-async/local';

// `npm run dev`: what `fc-async dev src/app.ts --concurrency 8 --max-queued-tasks 200` does, to
// send requests by hand and watch the tasks on the dashboard. Ctrl-C lets running tasks finish.
const emulator = await startEmulator({
  entry: fileURLToPath(new URL('./app.ts', import.meta.url)),
  concurrency: 8,
  maxQueuedTasks: 200,
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void emulator.close());
