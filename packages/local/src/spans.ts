import type { EmulatorLog } from './log.js';

interface FlushableProvider {
  getDelegate?(): unknown;
  forceFlush?(): Promise<void>;
}

/** A module name kept out of static imports: `@opentelemetry/api` is optional here. */
const OTEL_API = '@opentelemetry/api';

/**
 * Flushes the spans of the OpenTelemetry tracer provider the app registered, if any, within
 * `timeoutMs`. Without `@opentelemetry/api` or a registered SDK there is nothing to do.
 */
export async function flushSpans(timeoutMs: number, log: EmulatorLog): Promise<void> {
  let api: { trace?: { getTracerProvider(): unknown } };
  try {
    api = (await import(OTEL_API)) as typeof api;
  } catch {
    return;
  }
  const proxy = api.trace?.getTracerProvider() as FlushableProvider | undefined;
  const provider = (proxy?.getDelegate?.() ?? proxy) as FlushableProvider | undefined;
  if (typeof provider?.forceFlush !== 'function') return;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      provider.forceFlush(),
      new Promise((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
  } catch (error) {
    log.logger.warn('flushing spans failed', { error });
  } finally {
    clearTimeout(timer);
  }
}
