import { afterEach, describe, expect, it } from 'vitest';
import { startEmulator } from '../src/index.js';
import { fixture } from './helpers.js';

// Two entries exporting the fc-async handler a module they share made: Node loads that module once,
// so the functions share one async engine here (one task list: beta's tasks were listed, and
// refreshed the dashboard, under alpha too), unlike on FC. The start says so.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('functions whose entries export one fc-async handler', () => {
  it('are named at start as sharing its engine; a function with an instance of its own is not', async () => {
    const logged: string[] = [];
    const emulator = await startEmulator({
      config: fixture('shared-engine/s.yaml'),
      port: 0,
      controlPort: 0,
      output: (line) => logged.push(line),
    });
    cleanups.push(() => emulator.close({ timeoutMs: 1000 }));
    const notices = logged
      .flatMap((chunk) => chunk.split('\n'))
      .filter((line) => line.includes('share its async engine'));
    expect(notices).toHaveLength(1);
    expect(notices[0]).toContain('alpha, beta: their entries export one fc-async handler');
    expect(notices[0]).not.toContain('gamma');
    // What the notice is about: beta's task is in alpha's list.
    const res = await fetch(`${emulator.triggerUrl}/beta/`, {
      method: 'POST',
      headers: { 'x-fc-invocation-type': 'Async', 'x-fc-async-task-id': 'b_1' },
    });
    expect(res.status).toBe(202);
    const list = (await (await fetch(`${emulator.controlUrl}/2023-03-30/functions/alpha/async-tasks`)).json()) as {
      tasks: { taskId: string }[];
    };
    expect(list.tasks.map((t) => t.taskId)).toEqual(['b_1']);
  });
});
