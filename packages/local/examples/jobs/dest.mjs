import { appendFile } from 'node:fs/promises';

// Event functions that receive destination records: each appends its record to DEST_LOG.
async function record(kind, event) {
  const line = JSON.stringify({ kind, record: JSON.parse(event.toString('utf8')) });
  await appendFile(process.env.DEST_LOG ?? 'destinations.jsonl', `${line}\n`);
  return { received: kind };
}

export const succ = (event) => record('dest-succ', event);
export const fail = (event) => record('dest-fail', event);
