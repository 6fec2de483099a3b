import express from 'express';

/** A tiny image: the bytes must reach the client exactly. */
export const AVATAR = Buffer.from('89504e470d0a1a0a0000000d49484452fffe0080', 'hex');

// The app's routes, unchanged by the migration. They read FC's context where fc-express's
// eventContext() middleware put it: req.eventContext.context.
export const routes = express.Router();
routes.get('/hello', (req, res) => {
  res.json({ hello: req.query.name ?? 'world', requestId: req.eventContext?.context.requestId });
});
routes.post('/login', express.json(), (req, res) => {
  res.cookie('session', 'abc123', { httpOnly: true });
  res.cookie('theme', 'dark');
  res.json({ user: req.body.user });
});
routes.get('/avatar.png', (_req, res) => {
  res.type('png').send(AVATAR);
});
routes.get('/whoami', (req, res) => {
  res.json({ ip: req.ip, functionName: req.eventContext?.context.function.name });
});
