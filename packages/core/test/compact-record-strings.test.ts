import { describe, expect, it } from 'vitest';
import { decodeCompactRecord, encodeCompactRecord, type TaskRecord } from '../src/index.js';

const record: TaskRecord = {
  taskId: 'task-1',
  requestId: 'req-1',
  status: 'Failed',
  functionArn: 'acs:fc:cn-hangzhou:123:functions/f',
  qualifier: 'LATEST',
  alreadyRetriedTimes: 0,
  acceptedAt: 1_764_000_000_000,
  attempts: 1,
  events: [],
  payload: { method: 'POST', url: '/', headers: {}, body: Buffer.alloc(0) },
};

// The codec quotes a string that needs no escape itself rather than calling JSON.stringify: these
// are the strings where the two could differ.
describe('the compact record codec and awkward strings', () => {
  it.each([
    ['plain', 'LATEST'],
    ['empty', ''],
    ['a quote', 'say "hi"'],
    ['a backslash', 'C:\\tmp'],
    ['control characters', 'a\nb\tc\u0000d\u001fe'],
    ['DEL and U+2028', 'a\u007fb\u2028c'],
    ['a surrogate pair', 'cat 🐈'],
    ['a lone high surrogate', 'x\ud800y'],
    ['a lone low surrogate', 'x\udc00y'],
  ])('writes a string with %s as JSON.stringify does, and reads it back', (_, text) => {
    const written = encodeCompactRecord({
      ...record,
      taskId: text,
      qualifier: text,
      events: [{ eventId: 1, status: 'Failed', timestamp: 1, eventDetail: text }],
    });
    const quoted = JSON.stringify(text);
    expect(written).toContain(`"i":${quoted},`);
    expect(written).toContain(`"l":${quoted},`);
    expect(written).toContain(`[1,"Failed",1,${quoted}]`);
    const read = decodeCompactRecord(written);
    expect([read.taskId, read.qualifier, read.events[0]?.eventDetail]).toEqual([text, text, text]);
  });
});
