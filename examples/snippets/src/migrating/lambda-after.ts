// After: the same app on FC's built-in Node.js runtime. s.yaml: handler: index.handler
import { createHandler, getInvocation } from '@fc-async/express';
import express from 'express';

const app = express();
app.use(express.json());
app.post('/orders', (req, res) => {
  // This request's invocation, even when one instance serves several requests at once.
  res.status(201).json({ id: 42, requestId: getInvocation(req)?.requestId });
});

// Binary answers go base64 by their content type (textContentTypes): no `binary` list to keep.
export const handler = createHandler(app);
