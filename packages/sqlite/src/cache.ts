import type { TaskRecord } from '@fc-async/core';

/** Open tasks kept in memory at most; past it they are read from the file. */
const MAX_TASKS = 50_000;
/** Request bodies kept in memory at most (bytes): large payloads are read from the file. */
const MAX_BYTES = 64 * 1024 * 1024;

/**
 * The unfinished tasks in memory, bounded in count and in request-body bytes so that a long
 * backlog of large payloads stays on disk rather than in the heap. A record that does not fit
 * is not kept, and an older copy of it is dropped, so what is kept is never stale.
 */
export class OpenTasks {
  private readonly records = new Map<string, TaskRecord>();
  private bytes = 0;

  get(taskId: string): TaskRecord | undefined {
    return this.records.get(taskId);
  }

  set(record: TaskRecord): void {
    const previous = this.records.get(record.taskId);
    const bytes = this.bytes - (previous ? previous.payload.body.length : 0);
    const size = record.payload.body.length;
    if ((previous || this.records.size < MAX_TASKS) && bytes + size <= MAX_BYTES) {
      this.records.set(record.taskId, record);
      this.bytes = bytes + size;
    } else if (previous) {
      this.delete(record.taskId);
    }
  }

  delete(taskId: string): void {
    const previous = this.records.get(taskId);
    if (!previous) return;
    this.records.delete(taskId);
    this.bytes -= previous.payload.body.length;
  }

  clear(): void {
    this.records.clear();
    this.bytes = 0;
  }
}
