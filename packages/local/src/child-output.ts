import type { Readable } from 'node:stream';

/**
 * Calls `onLine` with each line of `stream` (without its `\n` or `\r\n`), at most `max` bytes of
 * it kept: the rest of a longer line is dropped as it arrives, and the line ends with `…`. What is
 * held never exceeds `max` bytes, however long a line runs without a newline (binary output too).
 */
export function boundedLines(stream: Readable, max: number, onLine: (line: string) => void): void {
  let held: Buffer[] = [];
  let size = 0;
  let cut = false;
  const hold = (part: Buffer) => {
    const room = max - size;
    if (part.length > room) cut = true;
    const kept = part.length > room ? part.subarray(0, room) : part;
    if (kept.length > 0) {
      held.push(kept);
      size += kept.length;
    }
  };
  const flush = () => {
    let text = Buffer.concat(held, size).toString('utf8');
    if (!cut && text.endsWith('\r')) text = text.slice(0, -1);
    onLine(cut ? `${text}…` : text);
    held = [];
    size = 0;
    cut = false;
  };
  stream.on('data', (chunk: Buffer | string) => {
    let rest = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    for (let nl = rest.indexOf(10); nl >= 0; nl = rest.indexOf(10)) {
      hold(rest.subarray(0, nl));
      flush();
      rest = rest.subarray(nl + 1);
    }
    hold(rest);
  });
  stream.once('end', () => {
    if (size > 0 || cut) flush();
  });
}
