import { ProxyTracerProvider, type Tracer, type TracerProvider, trace } from '@opentelemetry/api';
import type { Logger } from '../logger.js';
import { TRACER_NAME } from './semconv.js';

let noopProvider: TracerProvider | undefined;

/**
 * True for the API's no-op provider, also behind the global proxy: no SDK registered, so no span
 * would ever record. Checked per invocation (an SDK may register after the handler was made);
 * costs a property read or two.
 */
export function isNoopProvider(provider: TracerProvider): boolean {
  noopProvider ??= new ProxyTracerProvider().getDelegate();
  let p = provider;
  const delegate = (p as Partial<ProxyTracerProvider>).getDelegate;
  if (typeof delegate === 'function') p = delegate.call(p);
  return p === noopProvider || p.constructor?.name === 'NoopTracerProvider';
}

/** The tracer of a fixed provider, or of whatever the global one is at each call. */
export class TracerSource {
  private provider: TracerProvider | undefined;
  /** What {@link provider} delegated to when {@link tracer} was taken (itself without a proxy). */
  private delegate: TracerProvider | undefined;
  private tracer: Tracer | undefined;

  constructor(private readonly fixed: TracerProvider | undefined) {}

  /** The provider in force: the configured one, else the global one. */
  current(): TracerProvider {
    return this.fixed ?? trace.getTracerProvider();
  }

  /**
   * The tracer, or `undefined` when spans would not record (no SDK). Called per invocation: while
   * the provider and its delegate are those of the last call, it returns what that call found.
   */
  get(): Tracer | undefined {
    const provider = this.current();
    const getDelegate = (provider as Partial<ProxyTracerProvider>).getDelegate;
    const delegate = typeof getDelegate === 'function' ? getDelegate.call(provider) : provider;
    if (provider === this.provider && delegate === this.delegate) return this.tracer;
    this.provider = provider;
    this.delegate = delegate;
    this.tracer = isNoopProvider(delegate) ? undefined : provider.getTracer(TRACER_NAME);
    return this.tracer;
  }

  /**
   * Calls the provider's `forceFlush()` (the SDK's, behind the global proxy) and waits for it
   * at most `timeoutMs`. Never rejects: a failure or a timeout is logged.
   */
  async flush(timeoutMs: number, logger: Logger): Promise<void> {
    if (timeoutMs <= 0) return;
    let provider = this.current() as TracerProvider & { forceFlush?: () => Promise<void>; getDelegate?: () => unknown };
    if (typeof provider.forceFlush !== 'function' && typeof provider.getDelegate === 'function') {
      provider = provider.getDelegate() as typeof provider;
    }
    if (typeof provider.forceFlush !== 'function') return;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
        timer.unref?.();
      });
      const result = await Promise.race([
        Promise.resolve(provider.forceFlush()).then(() => 'flushed' as const),
        timeout,
      ]);
      if (result === 'timeout') logger.warn('span flush timed out', { timeoutMs });
    } catch (error) {
      // The SDK rejects with the array of its span processors' errors: each one's text, not `[{}]`.
      logger.warn('span flush failed', Array.isArray(error) ? { reason: error.map(reasonOf).join('; ') } : { error });
    } finally {
      clearTimeout(timer);
    }
  }
}

/** An error's own words, whatever was thrown. */
function reasonOf(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
