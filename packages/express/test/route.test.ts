import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { expressRoute } from '../src/route.js';

// Span names and http.route are templates: a mount path's parameter values must not multiply them
// (one span name per tenant) nor reach the trace.

/** The route expressRoute reads for each path, once the app answered it. */
async function routesOf(app: express.Express, paths: string[]): Promise<(string | undefined)[]> {
  const seen: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    res.on('finish', () => seen.push(req));
    app(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    for (const path of paths)
      await (await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`)).text();
  } finally {
    server.close();
  }
  return seen.map((req) => expressRoute(req));
}

describe('expressRoute', () => {
  it('gives the mount pattern, not the values, under a mounted router with parameters', async () => {
    const app = express();
    const orders = express.Router({ mergeParams: true });
    orders.get('/orders/:id', (_req, res) => void res.send('ok'));
    app.use('/tenants/:tenantId', orders);
    const plain = express.Router();
    plain.get('/items/:id', (_req, res) => void res.send('ok'));
    app.use('/shops/:shop', plain);
    expect(
      await routesOf(app, ['/tenants/acme-corp/orders/7', '/tenants/globex/orders/8', '/shops/s1/items/2']),
    ).toEqual(['/tenants/:tenantId/orders/:id', '/tenants/:tenantId/orders/:id', '/shops/:shop/items/:id']);
  });

  it('keeps plain routes and fixed mount paths as they are', async () => {
    const app = express();
    app.get('/users/:id', (_req, res) => void res.send('ok'));
    const api = express.Router();
    api.get('/v1/ping', (_req, res) => void res.send('ok'));
    app.use('/api', api);
    expect(await routesOf(app, ['/users/1', '/api/v1/ping'])).toEqual(['/users/:id', '/api/v1/ping']);
  });
  it('one router reached through two mounts names the mount the request came through', async () => {
    const app = express();
    const orders = express.Router({ mergeParams: true });
    orders.get('/orders/:id', (_req, res) => void res.send('ok'));
    app.use('/admin', orders);
    app.use('/tenants/:tenantId', orders);
    expect(await routesOf(app, ['/admin/orders/1', '/tenants/acme/orders/2'])).toEqual([
      '/admin/orders/:id',
      '/tenants/:tenantId/orders/:id',
    ]);
  });

  it('a fixed mount segment equal to a parameter value stays as it is', async () => {
    const app = express();
    const sub = express();
    sub.get('/files/:name', (_req, res) => void res.send('ok'));
    app.use('/api', sub);
    expect(await routesOf(app, ['/api/files/api'])).toEqual(['/api/files/:name']);
  });

  it('a mount path with a trailing slash gives no double slash', async () => {
    const app = express();
    const r = express.Router();
    r.get('/orders', (_req, res) => void res.send('ok'));
    app.use('/t/:id/', r);
    expect(await routesOf(app, ['/t/5/orders'])).toEqual(['/t/:id/orders']);
  });
});
