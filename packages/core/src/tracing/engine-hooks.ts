import {
  type Attributes,
  type Context,
  context,
  type Exception,
  isSpanContextValid,
  type Link,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { NO_ACCOUNT, NO_REGION } from '../async/arn.js';
import type { TaskRecord } from '../async/backend.js';
import type { AttemptOutcome, EngineHooks } from '../async/engine.js';
import type { Destination } from '../destinations/types.js';
import { onAbort } from '../on-abort.js';
import { httpAttributes } from './attributes.js';
import { asException, errorType } from './invocation-span.js';
import type { TracingRequestInfo } from './options.js';
import { fromCarrier, toCarrier } from './propagation.js';
import { routeOfResponse } from './route.js';
import {
  ATTR_CLOUD_ACCOUNT_ID,
  ATTR_CLOUD_PLATFORM,
  ATTR_CLOUD_PROVIDER,
  ATTR_CLOUD_REGION,
  ATTR_CLOUD_RESOURCE_ID,
  ATTR_ERROR_TYPE,
  ATTR_FAAS_INVOCATION_ID,
  ATTR_FAAS_NAME,
  ATTR_FAAS_TRIGGER,
  ATTR_FC_ASYNC_ATTEMPT,
  ATTR_FC_ASYNC_CONDITION,
  ATTR_FC_ASYNC_DESTINATION,
  ATTR_FC_ASYNC_DESTINATION_ATTEMPT,
  ATTR_FC_ASYNC_DESTINATION_LABEL,
  ATTR_FC_ASYNC_INVOCATION_TYPE,
  ATTR_FC_ASYNC_QUALIFIER,
  ATTR_FC_ASYNC_SUPERSEDED,
  ATTR_FC_ASYNC_TASK_ID,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_MESSAGE_ID,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_MESSAGING_SYSTEM,
  CLOUD_PLATFORM_FC,
  CLOUD_PROVIDER_ALIBABA,
  FAAS_TRIGGER_PUBSUB,
  MESSAGING_SYSTEM_FC_ASYNC,
} from './semconv.js';
import type { TracingCore } from './tracing.js';

/** A task's record, possibly without its request (a recovered one, see `TaskStore.unfinished`). */
type TaskHead = Omit<TaskRecord, 'payload'>;

interface AttemptState {
  span: Span;
  /** The context the span started in (see `keepFinal`). */
  parent: Context;
  context: Context;
  info: TracingRequestInfo | undefined;
  outcome?: AttemptOutcome;
  /**
   * The task's condition, when the attempt was its last: set on the span once the store took the
   * attempt's end (see `EngineHooks.attemptWritten`), else the span says it was superseded.
   */
  condition?: string;
}

/** What a task's function ARN tells: the name its spans take, and its cloud and FaaS attributes. */
interface TaskFunction {
  /** The span name's function part and `messaging.destination.name`: `fc-async` for an ARN of another shape. */
  name: string;
  /** `faas.name`, when the ARN has one. */
  faasName: string | undefined;
  region: string | undefined;
  accountId: string | undefined;
  /** `cloud.resource_id`: the ARN, when it names a real region and account. */
  resourceId: string | undefined;
}

const ARN = /^acs:fc:([^:]*):([^:]*):functions\/(.+)$/;

/**
 * A task's function from its `functionArn` (`acs:fc:{region}:{accountId}:functions/{name}`), as
 * the SERVER span of an invocation on FC has it: only the record is read, so a task recovered
 * after a restart is traced the same way. The stand-ins of a local run name no cloud: left out.
 */
function parseTaskFunction(arn: string): TaskFunction {
  const m = ARN.exec(arn);
  if (!m) {
    const name = /functions\/(.+)$/.exec(arn)?.[1];
    return { name: name ?? 'fc-async', faasName: name, region: undefined, accountId: undefined, resourceId: undefined };
  }
  const name = m[3] as string;
  const region = m[1] && m[1] !== NO_REGION ? m[1] : undefined;
  const accountId = m[2] && m[2] !== NO_ACCOUNT ? m[2] : undefined;
  return { name, faasName: name, region, accountId, resourceId: region && accountId ? arn : undefined };
}

/** What every span of a task carries; `operation` adds the messaging attributes. */
function taskAttributes(task: TaskHead, fn: TaskFunction, operation?: 'send' | 'process'): Attributes {
  const attributes: Attributes = {
    [ATTR_FAAS_INVOCATION_ID]: task.requestId,
    [ATTR_FC_ASYNC_INVOCATION_TYPE]: 'Async',
    [ATTR_FC_ASYNC_TASK_ID]: task.taskId,
    [ATTR_FC_ASYNC_QUALIFIER]: task.qualifier,
    [ATTR_CLOUD_PROVIDER]: CLOUD_PROVIDER_ALIBABA,
    [ATTR_CLOUD_PLATFORM]: CLOUD_PLATFORM_FC,
  };
  if (fn.region) attributes[ATTR_CLOUD_REGION] = fn.region;
  if (fn.accountId) attributes[ATTR_CLOUD_ACCOUNT_ID] = fn.accountId;
  if (fn.resourceId) attributes[ATTR_CLOUD_RESOURCE_ID] = fn.resourceId;
  if (fn.faasName) attributes[ATTR_FAAS_NAME] = fn.faasName;
  if (operation) {
    attributes[ATTR_MESSAGING_SYSTEM] = MESSAGING_SYSTEM_FC_ASYNC;
    attributes[ATTR_MESSAGING_OPERATION_NAME] = operation;
    attributes[ATTR_MESSAGING_OPERATION_TYPE] = operation;
    attributes[ATTR_MESSAGING_DESTINATION_NAME] = fn.name;
    attributes[ATTR_MESSAGING_MESSAGE_ID] = task.taskId;
  }
  return attributes;
}

/**
 * The parent and links of a span that follows an accepted task: a child of its PRODUCER span
 * (kept with the task), linked to it; with `newTracePerAttempt`, a new root with only the link,
 * or `finalAttempt` (a destination call: the trace of the attempt whose outcome it delivers).
 * A task without a trace context gets `fallback` as parent.
 */
function follow(
  core: TracingCore,
  task: TaskHead,
  fallback: Context,
  finalAttempt?: Context,
): { parent: Context; links: Link[] } {
  if (!task.traceContext) return { parent: finalAttempt ?? fallback, links: [] };
  const { context: ctx, spanContext } = fromCarrier(task.traceContext);
  const links: Link[] = spanContext ? [{ context: spanContext }] : [];
  if (!core.options.newTracePerAttempt) return { parent: ctx, links };
  return { parent: finalAttempt ?? trace.deleteSpan(ctx), links };
}

function failed(span: Span, type: string, exception?: Exception): void {
  if (exception) span.recordException(exception);
  span.setAttribute(ATTR_ERROR_TYPE, type);
  span.setStatus({ code: SpanStatusCode.ERROR });
}

/** When the task's last attempt started, from its events (a lean record may have none). */
function lastRunningAt(task: Pick<TaskRecord, 'events'>): number | undefined {
  const events = task.events;
  if (!Array.isArray(events)) return undefined;
  for (let i = events.length - 1; i >= 0; i--) {
    if (events[i]?.status === 'Running') return events[i]?.timestamp;
  }
  return undefined;
}

/** How many final attempt contexts wait for their delivery (see `finals`); the oldest go first. */
const MAX_FINALS = 1024;

/** The engine hooks that trace local async tasks and destination calls. Never throw. */
export function createEngineHooks(core: TracingCore): EngineHooks {
  // Attempts under way, then told until the store took or refused their end (attemptWritten).
  const attempts = new WeakMap<TaskHead, AttemptState>();
  /**
   * `newTracePerAttempt`: the context of each task's final attempt span, by task id, for its
   * destination calls to nest in (the record the delivery gets is another object). Taken when a
   * delivery wraps its destinations; a task with none leaves its entry, so the map is bounded.
   * An entry keeps the span's identity only (its context over the attempt's parent), not the ended
   * span with its attributes and events: up to MAX_FINALS of those stayed reachable otherwise.
   */
  const finals = new Map<string, Context>();
  const keepFinal = (taskId: string, parent: Context, span: Span) => {
    if (!core.options.newTracePerAttempt) return;
    finals.delete(taskId);
    finals.set(taskId, trace.setSpanContext(parent, span.spanContext()));
    if (finals.size > MAX_FINALS) finals.delete(finals.keys().next().value as string);
  };
  /**
   * The final attempt's context of a task being delivered: kept here since it ended in this
   * process, else the one its record keeps (a delivery made again after a crash, see `deliveryContext`).
   */
  const finalContext = (task: TaskRecord): Context | undefined => {
    const kept = finals.get(task.taskId);
    if (kept !== undefined || task.deliveryTraceContext === undefined) return kept;
    const { context: ctx, spanContext } = fromCarrier(task.deliveryTraceContext);
    return spanContext ? ctx : undefined;
  };
  // One function, one ARN: the last one is remembered, so a span costs no parse.
  let lastArn: string | undefined;
  let lastFunction: TaskFunction | undefined;

  function functionOf(task: TaskHead): TaskFunction {
    if (task.functionArn !== lastArn || lastFunction === undefined) {
      lastFunction = parseTaskFunction(task.functionArn);
      lastArn = task.functionArn;
    }
    return lastFunction;
  }
  /**
   * A task's CONSUMER span, `process {function}`, in the trace its accept started (its links kept):
   * an attempt's when `attempt` is given (trigger and attempt number set), `http` adding the request's
   * attributes when the task comes with it, `condition` a task's end that no attempt tells.
   */
  function startProcessSpan(
    tracer: Tracer,
    task: TaskHead,
    options: { attempt?: number; http?: TaskRecord['payload']; condition?: string; startTime?: number } = {},
  ): { span: Span; parent: Context } {
    const { parent, links } = follow(core, task, ROOT_CONTEXT);
    const fn = functionOf(task);
    const base = taskAttributes(task, fn, 'process');
    const attributes = options.http ? httpAttributes(options.http, base) : base;
    if (options.attempt !== undefined) {
      attributes[ATTR_FAAS_TRIGGER] = FAAS_TRIGGER_PUBSUB;
      attributes[ATTR_FC_ASYNC_ATTEMPT] = options.attempt;
    }
    if (options.condition !== undefined) attributes[ATTR_FC_ASYNC_CONDITION] = options.condition;
    const { startTime } = options;
    const span = tracer.startSpan(
      `process ${fn.name}`,
      { kind: SpanKind.CONSUMER, attributes, links, ...(startTime === undefined ? {} : { startTime }) },
      parent,
    );
    return { span, parent };
  }

  function traceDestination(
    task: TaskRecord,
    side: 'onSuccess' | 'onFailure',
    condition: string,
    destination: Destination,
    given: Context | undefined,
  ): Destination {
    if (typeof destination !== 'function') return destination;
    const label = destination.label || (destination.name ? `function:${destination.name}` : undefined);
    // With a new trace per attempt, the span of the attempt whose outcome this delivers (taken now:
    // the delivery may retry after another task of the same id has run).
    const finalAttempt = core.options.newTracePerAttempt ? finalContext(task) : undefined;
    const start = (tracer: Tracer, ctx: Parameters<Destination>[1]): { span: Span; context: Context } => {
      // The context given (platform mode: the invocation's), as an active one exists only with a context manager.
      const { parent, links } = follow(core, task, given ?? context.active(), finalAttempt);
      const attributes = taskAttributes(task, functionOf(task));
      attributes[ATTR_FC_ASYNC_DESTINATION] = side;
      attributes[ATTR_FC_ASYNC_CONDITION] = condition;
      if (label) attributes[ATTR_FC_ASYNC_DESTINATION_LABEL] = label;
      if (ctx?.attempt !== undefined) attributes[ATTR_FC_ASYNC_DESTINATION_ATTEMPT] = ctx.attempt;
      const span = tracer.startSpan(`deliver ${side}`, { kind: SpanKind.INTERNAL, attributes, links }, parent);
      return { span, context: trace.setSpan(parent, span) };
    };
    const traced = async (record: Parameters<Destination>[0], ctx?: Parameters<Destination>[1]) => {
      const tracer = core.tracer();
      if (!tracer) return destination(record, ctx);
      let started: { span: Span; context: Context };
      try {
        started = start(tracer, ctx);
      } catch (error) {
        // A span processor's onStart (or a propagator) threw: the destination is called all the same, untraced.
        core.sdkFault('destination span start', error);
        return destination(record, ctx);
      }
      const { span } = started;
      // A call cut short (attempt timeout, close(), platform mode's bound) may never settle: its
      // span ends when its signal aborts, with the reason; a late settle leaves it as it is.
      let ended = false;
      const end = (failure?: { error: unknown }) => {
        if (ended) return;
        ended = true;
        try {
          if (failure) failed(span, errorType(failure.error), asException(failure.error));
        } catch (fault) {
          core.sdkFault('destination span status', fault);
        }
        core.endSpan(span);
      };
      const signal = ctx?.signal;
      const forget = signal ? onAbort(signal, () => end({ error: signal.reason })) : undefined;
      try {
        const result = await context.with(started.context, () => destination(record, ctx));
        end();
        return result;
      } catch (error) {
        end({ error });
        throw error;
      } finally {
        forget?.();
      }
    };
    // deliverRecord names a destination by its label, else by its function name: keep both.
    Object.defineProperty(traced, 'name', { value: destination.name });
    return Object.defineProperties(traced, {
      label: { value: destination.label },
      maxRetries: { value: destination.maxRetries },
    }) as Destination;
  }

  async function tracedAttempt<T>(
    tracer: Tracer,
    task: TaskRecord,
    attempt: number,
    run: () => Promise<T>,
  ): Promise<T> {
    let state: AttemptState;
    try {
      const { span, parent } = startProcessSpan(tracer, task, { attempt, http: task.payload });
      const hooked = core.options.requestHook !== undefined || core.options.responseHook !== undefined;
      const info = hooked ? { ...core.requestInfo('attempt', task.payload), taskId: task.taskId, attempt } : undefined;
      state = { span, parent, context: trace.setSpan(parent, span), info };
      attempts.set(task, state);
      if (info) core.requestHook(span, info);
    } catch (error) {
      core.sdkFault('attempt span start', error);
      return run();
    }
    try {
      const result = await context.with(state.context, run);
      // Ended once the store took or refused the attempt's end (attemptWritten), unless untold.
      if (state.outcome === undefined) endAttempt(task, state);
      return result;
    } catch (error) {
      failed(state.span, errorType(error), asException(error));
      endAttempt(task, state);
      throw error;
    }
  }

  function endAttempt(task: TaskHead, state: AttemptState): void {
    attempts.delete(task);
    const { span } = state;
    const response = state.outcome && 'response' in state.outcome ? state.outcome.response : undefined;
    if (state.info) core.responseHook(span, { ...state.info, response: core.responseView(response) });
    core.endSpan(span);
  }

  return {
    accepted(task, invocation) {
      try {
        const tracer = core.tracer();
        if (!tracer) return undefined;
        const server = core.spanOf(invocation);
        const parent = server?.context ?? context.active();
        const fn = functionOf(task);
        const producer = tracer.startSpan(
          `send ${fn.name}`,
          { kind: SpanKind.PRODUCER, attributes: taskAttributes(task, fn, 'send') },
          parent,
        );
        const traceContext = toCarrier(trace.setSpan(parent, producer));
        if (server) server.accepted(task.taskId, producer);
        else producer.end();
        const spanContext = producer.spanContext();
        return { traceContext, traceId: isSpanContextValid(spanContext) ? spanContext.traceId : undefined };
      } catch (error) {
        core.sdkFault('accept span start', error);
        return undefined;
      }
    },

    running(invocation, taskId) {
      // The SERVER span of an invocation FC runs: its task id, also when the caller sent none.
      try {
        core.spanOf(invocation)?.span.setAttribute(ATTR_FC_ASYNC_TASK_ID, taskId);
      } catch (error) {
        core.sdkFault('span attributes', error);
      }
    },

    attempt(task, attempt, run) {
      // Without a tracer the attempt runs as it is: no extra promise, no span.
      const tracer = core.tracer();
      return tracer ? tracedAttempt(tracer, task, attempt, run) : run();
    },

    attemptEnded(task, _attempt, outcome, willRetry) {
      const state = attempts.get(task);
      if (!state) return;
      try {
        state.outcome = outcome;
        const { span } = state;
        const response = 'response' in outcome ? outcome.response : undefined;
        if (response) {
          span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, response.statusCode);
          const route = routeOfResponse(response);
          if (route) span.setAttribute(ATTR_HTTP_ROUTE, route);
        }
        if (outcome.kind === 'failure') {
          failed(span, outcome.errorType, { name: outcome.errorType, message: outcome.message });
          if (!willRetry) state.condition = outcome.condition;
        } else {
          state.condition = outcome.kind === 'stopped' ? 'Stopped' : '';
        }
      } catch (error) {
        core.logger.warn('tracing failed to record an attempt', { error });
      }
    },

    attemptWritten(task, _attempt, accepted) {
      const state = attempts.get(task);
      if (!state) return;
      try {
        // Taken: the span tells the task's end when it was the last attempt. Refused: another end
        // (a stop written first, a newer attempt elsewhere) owns the task, and its span says so.
        if (!accepted) state.span.setAttribute(ATTR_FC_ASYNC_SUPERSEDED, true);
        else if (state.condition !== undefined) {
          state.span.setAttribute(ATTR_FC_ASYNC_CONDITION, state.condition);
          keepFinal(task.taskId, state.parent, state.span);
        }
      } catch (error) {
        core.logger.warn('tracing failed to record an attempt', { error });
      }
      endAttempt(task, state);
    },

    deliveryContext(task) {
      // Only the final attempt's span, told here, is kept: its end is being written.
      if (!core.options.newTracePerAttempt) return undefined;
      const state = attempts.get(task);
      if (state?.condition === undefined) return undefined;
      try {
        return toCarrier(state.context);
      } catch (error) {
        core.sdkFault('delivery trace context', error);
        return undefined;
      }
    },

    delivery(task, _side, _condition, run) {
      // Its destinations are wrapped (each took the final attempt's context): the entry is done.
      finals.delete(task.taskId);
      return run();
    },

    destination(task, side, condition, destination, parent) {
      // Without a tracer when the delivery starts, its destinations are called as they are.
      if (!core.tracer()) return destination;
      try {
        return traceDestination(task, side, condition, destination, parent);
      } catch (error) {
        core.logger.warn('tracing failed to wrap a destination', { error });
        return destination;
      }
    },

    attemptInterrupted(task, attempt, outcome, willRetry) {
      // The attempt's own span died with its process: this one stands for it, from its start when
      // the record tells it (its last Running event) to now. No HTTP attributes: the record may
      // come without its request.
      try {
        const tracer = core.tracer();
        if (!tracer) return;
        const { span, parent } = startProcessSpan(tracer, task, { attempt, startTime: lastRunningAt(task) });
        failed(span, outcome.errorType, { name: outcome.errorType, message: outcome.message });
        // Ended when the store took or refused this end (attemptWritten), as an attempt's own span.
        const state: AttemptState = { span, parent, context: trace.setSpan(parent, span), info: undefined, outcome };
        if (!willRetry) state.condition = outcome.condition;
        attempts.set(task, state);
      } catch (error) {
        core.sdkFault('span of an interrupted attempt', error);
      }
    },

    endedWithoutAttempt(task) {
      try {
        const tracer = core.tracer();
        if (!tracer) return;
        const { span, parent } = startProcessSpan(tracer, task, { condition: task.condition ?? '' });
        if (task.status === 'Expired') failed(span, 'EventAgeExceeded');
        keepFinal(task.taskId, parent, span);
        span.end();
      } catch (error) {
        core.sdkFault('span of a task that did not run', error);
      }
    },
  };
}
