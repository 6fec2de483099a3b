// Before: an FC 2.0 HTTP function wrapped by @webserverless/fc-express. s.yaml: handler: index.handler
import { eventContext, Server } from '@webserverless/fc-express';
import express from 'express';
import { routes } from './routes.js';

const app = express();
app.set('trust proxy', true);
app.use(eventContext()); // req.eventContext = { context }: FC's context, credentials included
app.use(routes);

const server = new Server(app); // an HTTP server on a Unix socket in /tmp, started on the first call
export const handler = (req: unknown, resp: unknown, context: unknown) => server.httpProxy(req, resp, context);
