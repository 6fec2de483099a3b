import { type DestinationRecord, SIGNATURE_HEADER, verifyDestinationSignature } from '@fc-async/core';
import express from 'express';

// The receiving end of httpDestination(url, { secret }): check the signature on the raw bytes.
const receiver = express();
receiver.post('/fc-async', express.raw({ type: 'application/json' }), (req, res) => {
  const ok = verifyDestinationSignature(
    req.body,
    req.get(SIGNATURE_HEADER),
    process.env.WEBHOOK_SECRET ?? 'dev-secret',
    {
      toleranceSeconds: 300,
    },
  );
  if (!ok) {
    res.status(401).end();
    return;
  }
  const record = JSON.parse(req.body.toString('utf8')) as DestinationRecord;
  console.log(record.requestContext.condition === '' ? 'succeeded' : 'failed', record.requestContext.requestId);
  res.status(204).end();
});

export default receiver;
