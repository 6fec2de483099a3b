#!/usr/bin/env node
// The `fc-async` command. A file of its own, so that npm links it at install time, before
// `dist/` is built (in this repository, `npm ci` runs before `npm run build`).
import '../dist/cli.js';
