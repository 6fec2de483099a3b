import { describe, expect, it } from 'vitest';
import { createEmulatorLog } from '../src/log.js';

// docs/local-dev.md: in the text format, control characters in a logged value (a path a client
// chose) are escaped, so that they cannot forge a line or send escape codes to the terminal.
const FORGED = '/a\n12:00:00.000 echo           Sync  200       GET /admin \u001b[2J\u009b31m';

/** C0 and C1 control characters and DEL, tab aside (each line is checked on its own). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/;

function textLines(write: (log: ReturnType<typeof createEmulatorLog>) => void): string[] {
  const chunks: string[] = [];
  const log = createEmulatorLog({ write: (text) => chunks.push(text) });
  write(log);
  log.flush();
  return chunks.join('').split('\n').slice(0, -1);
}

describe('text log: control characters a client chose, in messages and stacks', () => {
  it("keeps a handler's context.logger message with a client's path on one line, without escape codes", () => {
    // A plain FC handler's context.logger writes its text as the entry's message.
    const lines = textLines((log) => log.logger.info(`request for ${FORGED}`, { function: 'echo' }));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\d{2}:\d{2}:\d{2}\.\d{3} INFO {2}request for \/a\\n12:00:00\.000 echo/);
    expect(lines[0]).toContain('\\u001b[2J\\u009b31m');
    expect(lines[0]).not.toMatch(CONTROL);
  });

  it("prints an error's stack frames only: a message spanning lines (a client's body) forges no line", () => {
    // JSON.parse quotes the body it failed on, line breaks and escape codes included.
    let error: Error | undefined;
    try {
      JSON.parse(`x${FORGED}`);
    } catch (e) {
      error = e as Error;
    }
    const lines = textLines((log) => log.logger.error('invocation failed', { requestId: '1-x', error }));
    expect(lines[0]).toMatch(/^\d{2}:\d{2}:\d{2}\.\d{3} ERROR invocation failed requestId=1-x error="SyntaxError: /);
    for (const line of lines.slice(1)) expect(line).toMatch(/^ {4}at /);
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) expect(line).not.toMatch(CONTROL);
  });
});
