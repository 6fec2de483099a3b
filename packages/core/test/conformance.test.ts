import { AssertionError } from 'node:assert';
import { MemoryTaskStore, type TaskPatch, type TaskQuery, type TaskRecord, type TaskStore } from '@fc-async/core';
import { type OpenTaskStore, taskStoreCases } from '@fc-async/core/conformance';
import { describe, expect, it } from 'vitest';

// The public TaskStore conformance table, imported as a backend author imports it: by its package
// subpath, from the built code (`npm test` builds first).

const openOn =
  (make: () => TaskStore): OpenTaskStore =>
  async () => {
    const store = make();
    // One process's memory: another store on the same storage is the same store.
    return { store, reopen: async () => store, prune: async () => 0 };
  };

describe('MemoryTaskStore', () => {
  // It prunes as tasks finish, with no pass of its own: it leaves out the cases that call `prune()`.
  it('leaves out only the pruning cases', () => {
    expect(taskStoreCases.filter((c) => c.usesPrune).map((c) => c.name)).toEqual([
      "lists as a model of the engine's operations after each of 300 random steps with pruning passes (seed 3)",
      'prunes finished tasks past retentionMs, then the oldest past maxTasks, never unfinished ones',
      'prunes a task ended by `transition` by the end time it was given, once its destination call is done',
      "prunes no task that took a refused task's id by the refused task's end time",
    ]);
  });
  for (const c of taskStoreCases.filter((c) => !c.usesPrune)) {
    it(c.name, () => c.run(openOn(() => new MemoryTaskStore())));
  }
});

describe('the table catches a store that breaks what the engine relies on', () => {
  const run = async (name: string, make: () => TaskStore) => {
    const c = taskStoreCases.find((c) => c.name.startsWith(name));
    if (!c) throw new Error(`no case named ${name}`);
    return c.run(openOn(make)).then(
      () => undefined,
      (error: unknown) => error,
    );
  };

  it('an update that skips a field patched to undefined, named in the error', async () => {
    class SkipsUndefined extends MemoryTaskStore {
      override update(taskId: string, patch: TaskPatch): void {
        super.update(taskId, Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)));
      }
    }
    const error = await run('update sets fields', () => new SkipsUndefined());
    expect(error).toBeInstanceOf(AssertionError);
    expect((error as Error).message).toMatch(/^update clears a field patched to undefined \(`deliveryPending`\)\n/);
  });

  it('a transition that is no compare-and-set', async () => {
    class Overwrites extends MemoryTaskStore {
      override transition(...[taskId, status, options]: Parameters<MemoryTaskStore['transition']>) {
        return super.transition(taskId, status, { ...options, from: [this.get(taskId)?.status ?? 'Enqueued'] });
      }
    }
    const error = await run('transition is a compare-and-set', () => new Overwrites());
    expect((error as Error).message).toMatch(/^transition from a status the task is not in is refused/);
  });

  it('unfinished() in another order than accepted', async () => {
    class Reversed extends MemoryTaskStore {
      override unfinished() {
        return super.unfinished().reverse();
      }
    }
    const error = await run('unfinished:', () => new Reversed());
    expect((error as Error).message).toMatch(/^unfinished\(\) lists the tasks not terminal/);
  });

  it('a page after the first that leaves out its first task, named with the seed, step and query', async () => {
    class SkipsOne extends MemoryTaskStore {
      override list(query: TaskQuery) {
        const page = super.list(query);
        return query.nextToken === undefined ? page : { ...page, tasks: page.tasks.slice(1) };
      }
    }
    const error = await run('lists as a model', () => new SkipsOne());
    expect(error).toBeInstanceOf(AssertionError);
    expect((error as Error).message).toMatch(/^seed 1, step \d+ \(.+\): list\(\{.*\}\), page 2 of \d+: /);
  });

  it('a store that does not replace an Invalid record fails only the cases marked replacesInvalid', async () => {
    class OldContract extends MemoryTaskStore {
      override insert(record: TaskRecord): boolean {
        return this.get(record.taskId) === undefined && super.insert(record);
      }
    }
    const failed: string[] = [];
    for (const c of taskStoreCases.filter((c) => !c.usesPrune)) {
      const error = await run(c.name, () => new OldContract());
      if (error) failed.push(c.name);
      if (c.replacesInvalid)
        expect((error as Error).message).toMatch(
          /^(inserts? (of the id of an Invalid task|in one turn: the Invalid id)|seed 4, step \d+ \(accept [\w-]+\): insert answers true)/,
        );
    }
    expect(failed).toEqual(taskStoreCases.filter((c) => c.replacesInvalid && !c.usesPrune).map((c) => c.name));
    expect(failed).toHaveLength(3);
  });

  it('a store that replaces the record of a task that is not Invalid', async () => {
    class ReplacesAny extends MemoryTaskStore {
      override insert(record: TaskRecord): boolean {
        const known = this.get(record.taskId);
        if (known) known.status = 'Invalid';
        return super.insert(record);
      }
    }
    const error = await run('refuses the id of a task in any status but Invalid', () => new ReplacesAny());
    expect((error as Error).message).toMatch(/^insert of the id of a task Enqueued resolves to false\n/);
  });

  it('a paging cursor that repeats a page', async () => {
    class Stuck extends MemoryTaskStore {
      override list(query: Parameters<MemoryTaskStore['list']>[0]) {
        return super.list({ ...query, nextToken: undefined });
      }
    }
    const error = await run(
      'lists exactly as the in-memory store pages (filters, order, cursor): 60',
      () => new Stuck(),
    );
    expect((error as Error).message).toMatch(/^list\(\{\}\), page 2: the tasks and their order\n/);
  });

  it('a paging cursor that is an offset into the listing', async () => {
    // The whole listing each time, cut at the position the token holds: tasks added ahead of it
    // or ended (under a status filter) shift the rest, so that a task is listed twice or never.
    class ByOffset extends MemoryTaskStore {
      override list({ nextToken, limit = 20, ...query }: TaskQuery) {
        const all: TaskRecord[] = [];
        let page = super.list({ ...query, limit: 100 });
        for (;;) {
          all.push(...page.tasks);
          if (!page.nextToken) break;
          page = super.list({ ...query, limit: 100, nextToken: page.nextToken });
        }
        const from = nextToken === undefined ? 0 : Number(nextToken);
        const more = all.length > from + limit;
        return { tasks: all.slice(from, from + limit), nextToken: more ? String(from + limit) : undefined };
      }
    }
    const error = await run('pages skip and repeat no task', () => new ByOffset());
    expect((error as Error).message).toMatch(
      /^list\(\{"limit":7\}\) walked while tasks were added and ended lists no task twice\n/,
    );
  });
});
