import { serveExpress } from './custom-runtime.js';

// The custom runtime's start command (s.yaml `customRuntimeConfig.command`): listens on
// FC_CUSTOM_LISTEN_PORT (9000) on 0.0.0.0, answers /initialize and /pre-stop, stops on SIGTERM
// (running Nest's shutdown hooks).
await serveExpress({ async: { maxAsyncRetryAttempts: 2 } });
