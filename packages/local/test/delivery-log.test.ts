import { describe, expect, it } from 'vitest';
import { createEmulatorLog, type DeliveryLine } from '../src/log.js';

function written(json: boolean, line: DeliveryLine): string {
  const chunks: string[] = [];
  const log = createEmulatorLog({ write: (text) => chunks.push(text), format: json ? 'json' : 'text' });
  log.delivery(line);
  log.flush();
  return chunks.join('').trimEnd();
}

const LINE: DeliveryLine = {
  function: 'jobs',
  requestId: '1-abc',
  taskId: 'order-7',
  destinationStatus: 'Failed',
  side: 'onFailure',
  destinations: [
    { label: 'function:notify', status: 'Succeeded', attempts: 1 },
    { label: 'http:hooks.example.com', status: 'Failed', attempts: 4 },
  ],
};

describe("the emulator's delivery line", () => {
  it('names the side, each destination (a failed one marked) and the task in the text format', () => {
    const text = written(false, LINE);
    expect(text).toMatch(
      /^\d{2}:\d{2}:\d{2}\.\d{3} jobs {11}Dest {2}Failed {4}onFailure function:notify, http:hooks\.example\.com \(failed\) +1-abc task order-7$/,
    );
  });

  it('carries the side and the outcome of each destination as fields in the JSON format', () => {
    expect(JSON.parse(written(true, LINE))).toMatchObject({
      kind: 'delivery',
      function: 'jobs',
      requestId: '1-abc',
      taskId: 'order-7',
      destinationStatus: 'Failed',
      side: 'onFailure',
      destinations: LINE.destinations,
    });
  });
});

describe("the emulator's JSON log with values JSON cannot hold", () => {
  it('logs an Error with a BigInt code and a value whose toJSON gives nothing, without throwing', () => {
    const chunks: string[] = [];
    const log = createEmulatorLog({ write: (text) => chunks.push(text), format: 'json' });
    const error = Object.assign(new Error('db down'), { code: 10n });
    expect(() => log.logger.error('uncaught exception in the app', { error, extra: { toJSON() {} } })).not.toThrow();
    log.flush();
    const line = JSON.parse(chunks.join('').trim()) as { message: string; error: unknown; extra: unknown };
    expect(line.message).toBe('uncaught exception in the app');
    expect(String(line.error)).toContain('db down');
    expect(String(line.error)).toContain('10n');
    expect(typeof line.extra).toBe('string');
  });
});
