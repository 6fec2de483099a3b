/** What `POST /notifications` takes. */
export interface Notification {
  to: string;
  subject: string;
  text: string;
}

/** Why a request body is not a notification: answered 400, never retried (a retry would not fix it). */
export class InvalidNotification extends Error {
  readonly code = 'InvalidNotification';
}

const FIELDS = ['to', 'subject', 'text'] as const;

/** Checks a parsed JSON body; throws {@link InvalidNotification} naming the first bad field. */
export function parseNotification(body: unknown): Notification {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidNotification('Expected a JSON object with `to`, `subject` and `text`');
  }
  const fields = body as Record<string, unknown>;
  for (const name of FIELDS) {
    const value = fields[name];
    if (typeof value !== 'string' || value.trim() === '') {
      throw new InvalidNotification(`Expected \`${name}\` to be a non-empty string, got \`${JSON.stringify(value)}\``);
    }
  }
  return { to: fields.to as string, subject: fields.subject as string, text: fields.text as string };
}
