import type { Logger } from '@fc-async/core';

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  fields?: Record<string, unknown>;
}

/** A logger that keeps what it is given, for assertions. */
export function recordingLogger(): Logger & { entries: LogEntry[]; text(): string } {
  const entries: LogEntry[] = [];
  const at = (level: LogEntry['level']) => (message: string, fields?: Record<string, unknown>) => {
    entries.push({ level, message, fields });
  };
  return {
    entries,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    text: () =>
      entries
        .map(
          (e) =>
            `${e.level} ${e.message} ${JSON.stringify(e.fields, (_k, v) => (v instanceof Error ? { message: v.message, stack: v.stack } : v))}`,
        )
        .join('\n'),
  };
}
