import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';

// Event functions that receive destination records: each appends its record to DEST_LOG
// (by default under .fc-async/, the folder fc-async dev keeps its own files in).
async function record(kind, event) {
  const line = JSON.stringify({ kind, record: JSON.parse(event.toString('utf8')) });
  const file = process.env.DEST_LOG ?? '.fc-async/destinations.jsonl';
  await mkdir(dirname(file), { recursive: true });
  await appendFile(file, `${line}\n`);
  return { received: kind };
}

export const succ = (event) => record('dest-succ', event);
export const fail = (event) => record('dest-fail', event);
