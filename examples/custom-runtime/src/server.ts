import { listen } from '@fc-async/express';
import { app, initialize } from './app.js';
import { PRE_STOP_TIMEOUT_MS } from './config.js';

// What `bootstrap` runs. listen() serves the app the way FC expects: port FC_CUSTOM_LISTEN_PORT
// (9000) on 0.0.0.0, POST /initialize runs `onInitialize`, GET /pre-stop lets queued and running
// tasks finish, and SIGTERM shuts down gracefully, then exits 0.
await listen(app, {
  onInitialize: initialize,
  preStopTimeoutMs: PRE_STOP_TIMEOUT_MS,
  // FC needs 0.0.0.0 (the default); LISTEN_HOST=127.0.0.1 keeps a local run on this machine.
  host: process.env.LISTEN_HOST || undefined,
});
