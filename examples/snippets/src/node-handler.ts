import { createFcHandler, getInvocation } from '@fc-async/core';

// Any Node request listener works: this is what http.createServer() would take.
export const handler = createFcHandler((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ path: req.url, requestId: getInvocation(req)?.requestId }));
});
