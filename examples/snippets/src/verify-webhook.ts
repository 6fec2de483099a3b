import { type DestinationRecord, SIGNATURE_HEADER, verifyDestinationSignature } from '@fc-async/core';
import express from 'express';

// The receiving end of httpDestination(url, { secret }): check the signature on the raw bytes.
// The key both ends share, with no default: a missing variable stops the receiver rather than
// letting it accept records signed with a key anyone can read here.
const secret = process.env.WEBHOOK_SECRET;
if (!secret) throw new Error('WEBHOOK_SECRET is not set: the key httpDestination signs records with');
const receiver = express();
// A record holds the whole answer (and the request, base64 when binary): raise express.raw's
// 100 KB default to your largest, or a bigger record is refused 413 and, a 4xx, never retried.
// Any content type: the sender of a forged request chooses it, and the bytes are checked anyway.
receiver.post('/fc-async', express.raw({ type: () => true, limit: '50mb' }), (req, res) => {
  // No body at all leaves req.body unset: nothing to check, nothing signed.
  const body: unknown = req.body;
  const ok =
    Buffer.isBuffer(body) &&
    verifyDestinationSignature(body, req.get(SIGNATURE_HEADER), secret, {
      toleranceSeconds: 300,
    });
  if (!ok) {
    res.status(401).end();
    return;
  }
  // At least once, as FC delivers: a post answered after its timeout comes again. Key your work
  // on the request id so that a second copy changes nothing.
  const record = JSON.parse(body.toString('utf8')) as DestinationRecord;
  console.log(record.requestContext.condition === '' ? 'succeeded' : 'failed', record.requestContext.requestId);
  res.status(204).end();
});

export default receiver;
