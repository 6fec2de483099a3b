// After: the same app under fc-async. s.yaml: handler: index.handler, on FC 2.0 or FC 3.0.
import { createHandler } from '@fc-async/express';
import express from 'express';
import { eventContext } from './event-context.js';
import { routes } from './routes.js';

const app = express();
app.set('trust proxy', true);
app.use(eventContext()); // the same req.eventContext.context, from fc-async (no credentials)
app.use(routes);

// FC 2.0's handler(req, resp, context) and FC 3.0's handler(event, context) both call it.
export const handler = createHandler(app);
