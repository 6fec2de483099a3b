import { type Context, type Exception, type Span, SpanStatusCode } from '@opentelemetry/api';
import { cutErrorText, ERROR_TEXT_CAP } from '../app-errors.js';
import { isFcAsyncError } from '../errors.js';
import type { Invocation } from '../invocation.js';
import type { BridgeResponse } from '../response.js';
import { setInvocationAttributes } from './attributes.js';
import { closeSpan, openSpan } from './open-spans.js';
import type { TracingRequest, TracingRequestInfo } from './options.js';
import { formatTraceparent } from './propagation.js';
import { routeOfResponse } from './route.js';
import { ATTR_ERROR_TYPE, ATTR_FC_ASYNC_TASK_ID, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_HTTP_ROUTE } from './semconv.js';
import type { TracingCore } from './tracing.js';

/**
 * How an invocation ended, for {@link InvocationSpan.end}: the response (or only its status), the
 * route the framework matched, the error it threw, and whether the invocation counts as failed
 * although its status is below 500 (an async invocation on FC that `isFailure` rejected).
 *
 * @example
 * ```ts
 * import type { ServerResponse } from 'node:http';
 * declare const span: InvocationSpan;
 * declare const res: ServerResponse;
 * span.end({ statusCode: res.statusCode, route: '/users/:id' });
 * ```
 */
export interface InvocationSpanEnd {
  response?: BridgeResponse | undefined;
  statusCode?: number | undefined;
  route?: string | undefined;
  error?: unknown;
  failed?: boolean | undefined;
}

/**
 * The SERVER span of one invocation, from {@link Tracing.startInvocationSpan}: what the handler
 * uses, and what middleware for custom runtimes can use to trace the same way.
 *
 * @example
 * ```ts
 * import type { IncomingMessage, ServerResponse } from 'node:http';
 * declare const tracing: Tracing;
 * declare const invocation: Invocation;
 * declare const req: IncomingMessage, res: ServerResponse, next: () => void;
 * const span = tracing.startInvocationSpan({ method: req.method!, url: req.url!, headers: req.headers });
 * if (span) {
 *   span.setInvocation(invocation);
 *   res.on('finish', () => span.end({ statusCode: res.statusCode }));
 *   span.run(() => next());
 * } else next();
 * ```
 */
export interface InvocationSpan {
  /** The SERVER span itself. */
  readonly span: Span;
  /** A context with the span active: what the app runs in. */
  readonly context: Context;
  /** Adds the invocation's attributes (request id, task id, cloud, FaaS) and calls `requestHook`. */
  setInvocation(invocation: Invocation): void;
  /** Calls `fn` with the span active, so that the app's spans nest under it. */
  run<T>(fn: () => T): T;
  /** Keeps an error for {@link InvocationSpan.end}, which records it when the invocation failed. */
  recordError(error: unknown): void;
  /**
   * Ends the span once (later calls do nothing): status code, route (also in the name,
   * `{METHOD} {route}`), status ERROR with the exception for a throw or a 5xx, `responseHook`.
   * On the 202 of an accepted task it adds `traceparent` to the response headers.
   */
  end(result?: InvocationSpanEnd): void;
}

let coldStart = true;

/** `faas.coldstart`: true for the first traced invocation of the process only. */
export function takeColdStart(): boolean {
  const cold = coldStart;
  coldStart = false;
  return cold;
}

/**
 * The exception a span records: the error itself, or a copy with its name and message cut at
 * `ERROR_TEXT_CAP` (see `cutErrorText`) when either is longer, the stack's first line (which repeats
 * them) cut alike, its `code` kept; a plain one for a non-Error throw, a thrown string cut the same way.
 */
export function asException(error: unknown): Exception {
  if (!(error instanceof Error)) return new Error(typeof error === 'string' ? cutErrorText(error) : `non-error thrown`);
  const name = errorName(error);
  try {
    const message = String(error.message);
    if (name.length <= ERROR_TEXT_CAP && message.length <= ERROR_TEXT_CAP) return error;
    const cut = cutErrorText(message);
    const copy: Exception = {
      name,
      message: cut,
      stack: cutStack(error.stack, error.name, message, `${name}: ${cut}`),
    };
    // The SDK types the exception event by its code when there is one (a driver's `ER_PARSE_ERROR`):
    // kept, so that a long message does not change the type of the same error.
    const code = codeOf(error);
    if (code !== undefined) copy.code = code;
    return copy;
  } catch {
    return { name, message: 'The error could not be read' };
  }
}

/** An error's `code`, a number or a string (cut as a name is), as the exception event's type takes it. */
function codeOf(error: Error): string | number | undefined {
  try {
    const code: unknown = (error as { code?: unknown }).code;
    if (typeof code === 'number') return code;
    return typeof code === 'string' ? cutErrorText(code) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A stack whose first line (`{name}: {message}`, as V8 writes it) carried a name or message past
 * the cap, with that line as `header`; a stack that does not start so is cut whole, as a message is.
 */
function cutStack(stack: unknown, name: unknown, message: string, header: string): string | undefined {
  if (typeof stack !== 'string') return undefined;
  const whole = `${String(name)}: ${message}`;
  if (stack.startsWith(whole)) return header + stack.slice(whole.length);
  return cutErrorText(stack);
}

/** An error's name, cut as a function's `errorType` answer is (see `cutErrorText`); `'Error'` when it has none. */
function errorName(error: Error): string {
  try {
    const name = error.name;
    return typeof name === 'string' && name !== '' ? cutErrorText(name) : 'Error';
  } catch {
    return 'Error';
  }
}

/** `error.type` of an error: an fc-async error's code, else the error's name (cut, see `cutErrorText`). */
export function errorType(error: unknown): string {
  if (isFcAsyncError(error)) return error.code;
  return error instanceof Error ? errorName(error) : 'Error';
}

/** Function error bodies longer than this are not read (FC's runtimes write a short `{ errorMessage }`). */
const FUNCTION_ERROR_CAP = 64 * 1024;

/**
 * The error of an FC function error answer: `x-fc-error-type` set (no app sets `X-Fc-*`), and
 * the `{ errorMessage, errorType }` body a runtime writes for a handler that threw; what an
 * attempt's span records for the same answer.
 */
function functionErrorOf(response: BridgeResponse | undefined): { name: string; message: string } | undefined {
  if (response?.headers['x-fc-error-type'] === undefined) return undefined;
  const body = response.body;
  if (body.length === 0 || body.length > FUNCTION_ERROR_CAP) return undefined;
  try {
    const parsed: unknown = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const { errorMessage, errorType: name } = parsed as Record<string, unknown>;
    if (typeof errorMessage !== 'string') return undefined;
    // Cut as the attempt's span and the task's record cut them.
    return {
      name: typeof name === 'string' && name !== '' ? cutErrorText(name) : 'Error',
      message: cutErrorText(errorMessage),
    };
  } catch {
    return undefined;
  }
}

export class InvocationSpanImpl implements InvocationSpan {
  private invocation: Invocation | undefined;
  private info: TracingRequestInfo | undefined;
  private error: unknown;
  private ended = false;
  /** The route the app matched, and the response it answered then (see {@link keepRoute}). */
  private route: string | undefined;
  private routeResponse: BridgeResponse | undefined;
  /** The PRODUCER span of a task accepted in this invocation (local async). */
  producer: Span | undefined;

  constructor(
    readonly span: Span,
    readonly context: Context,
    private readonly method: string,
    private readonly request: TracingRequest,
    readonly core: TracingCore,
    /** The `faas.invocation_id` set when the span started, if any. */
    private readonly requestId?: string,
  ) {}

  setInvocation(invocation: Invocation): void {
    this.invocation = invocation;
    openSpan(invocation, this);
    setInvocationAttributes(this.span, invocation, this.requestId, this.core.functionName);
    if (this.core.options.requestHook) this.core.requestHook(this.span, this.hookInfo());
  }

  /** The route the app matched when it answered `response`: the span takes it if it ends with that response. */
  keepRoute(response: BridgeResponse, route: string): void {
    this.routeResponse = response;
    this.route = route;
  }

  /** What the hooks get; built only when there is a hook. */
  private hookInfo(): TracingRequestInfo {
    this.info ??= this.core.requestInfo('invocation', this.request);
    this.info.invocation = this.invocation;
    return this.info;
  }

  run<T>(fn: () => T): T {
    return this.core.withContext(this.context, fn);
  }

  recordError(error: unknown): void {
    this.error = error;
  }

  /** Marks the task accepted in this invocation (its id, and the PRODUCER span to end with it). */
  accepted(taskId: string, producer: Span): void {
    this.producer = producer;
    this.span.setAttribute(ATTR_FC_ASYNC_TASK_ID, taskId);
  }

  end(result: InvocationSpanEnd = {}): void {
    if (this.ended) return;
    this.ended = true;
    const { span, producer } = this;
    try {
      const response = result.response;
      const status = result.statusCode ?? response?.statusCode;
      const route =
        result.route ??
        (response !== undefined && response === this.routeResponse ? this.route : routeOfResponse(response));
      if (route) {
        span.setAttribute(ATTR_HTTP_ROUTE, route);
        span.updateName(`${this.method} ${route}`);
      }
      if (status !== undefined) span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
      const error = result.error ?? this.error;
      if (status === undefined || status >= 500 || result.failed) {
        // A handler's throw that its runtime answered (the emulator's built-in runtimes): as thrown here.
        const thrown = error === undefined ? functionErrorOf(response) : undefined;
        const type =
          error !== undefined
            ? errorType(error)
            : thrown
              ? thrown.name
              : status !== undefined && status >= 500
                ? String(status)
                : 'UnhandledInvocationError';
        if (error !== undefined) span.recordException(asException(error));
        else if (thrown) span.recordException(thrown);
        span.setAttribute(ATTR_ERROR_TYPE, type);
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      if (producer) {
        if (status === 202 && response) {
          response.headers.traceparent = formatTraceparent(span.spanContext());
        } else {
          producer.setAttribute(ATTR_ERROR_TYPE, error !== undefined ? errorType(error) : String(status ?? 'Failure'));
          producer.setStatus({ code: SpanStatusCode.ERROR });
        }
      }
      if (this.core.options.responseHook)
        this.core.responseHook(span, { ...this.hookInfo(), response: this.core.responseView(response), error });
    } catch (error) {
      this.core.logger.warn('tracing failed to end a span', { error });
    } finally {
      this.core.endSpan(producer);
      this.core.endSpan(span);
      if (this.invocation) closeSpan(this.invocation, this);
    }
  }
}
