import { fcFunctionDestination, functionDestination, httpDestination, jsonlDestination } from '@fc-async/core';
import { createHandler } from '@fc-async/express';
import express from 'express';

const app = express();
app.post('/render', express.json(), async (req, res) => {
  res.json({ rendered: req.body.page });
});

// The webhook's key, with no default: a missing variable fails at start, never signs with a known key.
const webhookSecret = process.env.WEBHOOK_SECRET;
if (!webhookSecret) throw new Error('WEBHOOK_SECRET is not set: the key the webhook receiver checks');

export const handler = createHandler(app, {
  destinations: {
    // Success records to a signed webhook and a local audit file.
    onSuccess: [
      httpDestination('https://hooks.example.com/fc-async', { secret: webhookSecret }),
      jsonlDestination('./.fc-async/succeeded.jsonl'),
    ],
    // Failures (after the last retry, expired or stopped) to an FC event function and your code.
    onFailure: [
      // On FC the function role's temporary credentials: a key pair and its token, all three needed.
      // Without a key (a local run) this throws at start: set the three variables, or leave it out.
      fcFunctionDestination('acs:fc:cn-hangzhou:1234567890:functions/dest-fail', {
        accessKeyId: process.env.ALIBABA_CLOUD_ACCESS_KEY_ID ?? '',
        accessKeySecret: process.env.ALIBABA_CLOUD_ACCESS_KEY_SECRET ?? '',
        securityToken: process.env.ALIBABA_CLOUD_SECURITY_TOKEN,
      }),
      functionDestination((record) => {
        console.warn('render failed', record.requestContext.requestId, record.requestContext.condition);
      }),
    ],
  },
});
