import { bundleServer } from './bundle.js';

// `npm run build:fc` (s.yaml runs it before deploying): dist/, the code folder FC gets as /code.
console.log(`built ${await bundleServer()}: bootstrap, server.mjs`);
