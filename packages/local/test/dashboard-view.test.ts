import { describe, expect, it } from 'vitest';
import {
  clockOffset,
  durationText,
  formatTime,
  prettyPayload,
  prettyResponse,
  sameRun,
} from '../assets/dashboard/view.js';

// The dashboard's pure functions (assets/dashboard/view.js), as the page runs them.

const at = (y: number, mo: number, d: number, h: number, mi: number, s: number) =>
  new Date(y, mo - 1, d, h, mi, s).getTime();

describe('formatTime', () => {
  it('shows the time alone on the day of now, the date too on another day, one 24-hour format', () => {
    const now = at(2025, 3, 9, 20, 0, 0);
    expect(formatTime(at(2025, 3, 9, 7, 5, 3), now)).toBe('07:05:03');
    expect(formatTime(at(2025, 3, 6, 23, 59, 59), now)).toBe('2025-03-06 23:59:59');
    expect(formatTime(at(2025, 3, 9, 13, 0, 0), now, true)).toBe('2025-03-09 13:00:00');
    expect(formatTime(undefined, now)).toBe('');
  });
});

describe('durationText', () => {
  it("counts a task under way by the server's clock, and never below zero", () => {
    expect(durationText({ status: 'Running', startedTime: 10_000 }, 12_500)).toBe('2500 ms…');
    expect(durationText({ status: 'Running', startedTime: 10_000 }, 9_990)).toBe('0 ms…');
    // The clock offset is a midpoint of two readings: half a millisecond shows as a whole one.
    expect(durationText({ status: 'Running', startedTime: 10_000 }, 30_167.5)).toBe('20168 ms…');
    expect(durationText({ status: 'Succeeded', startedTime: 10_000, durationMs: 42 }, 99_999)).toBe('42 ms');
    expect(durationText({ status: 'Enqueued' }, 99_999)).toBe('');
  });

  it('takes the offset of a browser 2 minutes behind from an answer read half-way', () => {
    const browserSent = 1_000_000;
    const offset = clockOffset(browserSent + 120_000 + 50, browserSent, browserSent + 100);
    expect(offset).toBe(120_000);
    expect(durationText({ status: 'Running', startedTime: browserSent + 120_000 }, browserSent + 1_000 + offset)).toBe(
      '1000 ms…',
    );
  });
});

describe('sameRun', () => {
  it('tells another run of a task id by its request id or start', () => {
    const a = { status: 'Succeeded', requestId: 'r1', startedTime: 1 };
    expect(sameRun(a, { ...a })).toBe(true);
    expect(sameRun(a, { ...a, requestId: 'r2' })).toBe(false);
    expect(sameRun(a, { ...a, startedTime: 2 })).toBe(false);
  });
});

describe('prettyPayload', () => {
  it("shows an event function's event as JSON, a `method` field or not", () => {
    const event = '{"method":"sms","url":"x","to":"+86"}';
    expect(prettyPayload(event, false)).toBe(JSON.stringify(JSON.parse(event), null, 2));
    expect(prettyPayload('not json', false)).toBe('not json');
  });

  it("shows an HTTP function's task as its request", () => {
    const request = JSON.stringify({
      method: 'POST',
      url: '/jobs?x=1',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
      isBase64Encoded: false,
    });
    expect(prettyPayload(request, true)).toBe('POST /jobs?x=1\ncontent-type: application/json\n\n{\n  "a": 1\n}');
    expect(prettyPayload(JSON.stringify({ method: 'GET', url: '/', body: 'AAE=', isBase64Encoded: true }), true)).toBe(
      'GET /\n\n(base64) AAE=',
    );
    expect(prettyResponse('')).toBe('(none)');
  });
});
