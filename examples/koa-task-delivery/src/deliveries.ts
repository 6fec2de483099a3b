import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** The proof that a task's notification went out. */
export interface Delivery {
  /** The task id (the request id for a task without one): the same in every attempt of a task. */
  key: string;
  messageId: string;
  deliveredAt: string;
}

/**
 * Remembers which tasks were delivered: the dedup store. It must outlive the process and be
 * shared by every instance that may run the task (FC runs a retry on any instance): in
 * production a Redis `SET key value NX` or a table with the key as primary key, whose atomic
 * insert also settles two attempts of one task running at once.
 */
export interface DeliveryStore {
  find(key: string): Promise<Delivery | undefined>;
  record(delivery: Delivery): Promise<void>;
}

/**
 * A store in a JSONL file: enough for one machine and for this example (no database to run).
 * `find` reads the whole file, which is fine for thousands of lines, not millions.
 */
export function fileDeliveryStore(file: string): DeliveryStore {
  return {
    async find(key) {
      const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return '';
        throw error;
      });
      for (const line of text.split('\n')) {
        if (line === '') continue;
        const delivery = JSON.parse(line) as Delivery;
        if (delivery.key === key) return delivery;
      }
      return undefined;
    },
    async record(delivery) {
      await mkdir(dirname(file), { recursive: true });
      await appendFile(file, `${JSON.stringify(delivery)}\n`);
    },
  };
}
