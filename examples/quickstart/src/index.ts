import { createHandler } from '@fc-async/express';
import { app } from './app.js';

// FC 3.0 (handler(event, context)) and FC 2.0 (handler(req, resp, context)) both call this.
export const handler = createHandler(app, {
  async: { maxAsyncRetryAttempts: 2 },
  destinations: {
    onSuccess: (record) => console.log('onSuccess', record.requestContext.requestId, record.responsePayload),
    onFailure: (record) => console.log('onFailure', record.requestContext.requestId, record.requestContext.condition),
  },
});
