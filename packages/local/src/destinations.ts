import { accessSync, constants, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import {
  type DestinationContext as DeliveryContext,
  type Destination,
  DestinationError,
  type DestinationRecord,
  type Destinations,
  FcAsyncError,
  jsonlDestination,
  makeFolderSync,
  maskUrl,
} from '@fc-async/core';
import { shown } from './errors.js';
import type { LocalFunction } from './function.js';
import { asyncLimitOf } from './limits.js';
import type { EmulatorLog } from './log.js';

/** What a destination ARN names. */
export type ArnTarget =
  | { kind: 'fc'; functionName: string; serviceName?: string | undefined }
  | { kind: 'mns' | 'eventbridge' | 'rocketmq'; functionName?: undefined };

// A function name holds no `:` (FC: letters, digits, `_` and `-`), so one after it starts a
// qualifier (`functions/dest:LATEST`), as `/{qualifier}` does (`functions/dest/prod`).
const FC_ARN = /^acs:fc:[^:]*:[^:]*:(?:services\/([^/]+)\/)?functions\/([^/:]+)(?::[^/:]+)?(?:\/[^/]+)?$/;

/**
 * Reads a destination ARN: an FC function (FC 3.0 `functions/{name}`, FC 2.0
 * `services/{service}/functions/{name}`, either with a qualifier: `{name}:{qualifier}` or
 * `{name}/{qualifier}`, `{service}.{qualifier}`), an MNS queue or topic, an EventBridge bus, or a
 * RocketMQ topic; `undefined` for anything else. The qualifier is not kept: the emulator serves
 * one version of each function.
 */
export function parseDestinationArn(arn: string): ArnTarget | undefined {
  const fc = FC_ARN.exec(arn);
  // FC 2.0's service may carry a qualifier (`svc.LATEST`): the service is what comes before it.
  if (fc) return { kind: 'fc', functionName: fc[2] as string, serviceName: fc[1]?.split('.')[0] };
  if (arn.startsWith('acs:mns:')) return { kind: 'mns' };
  if (arn.startsWith('acs:eventbridge:')) return { kind: 'eventbridge' };
  if (/^acs:(mq|rocketmq|ons):/.test(arn)) return { kind: 'rocketmq' };
  return undefined;
}

/**
 * Why `arn` cannot be a destination (`is not an FC, MNS, EventBridge or RocketMQ ARN: ...`), or
 * `undefined` when {@link parseDestinationArn} reads it: the words of PutAsyncInvokeConfig and s.yaml alike.
 */
export function destinationArnProblem(arn: string): string | undefined {
  if (parseDestinationArn(arn)) return undefined;
  return `is not an FC, MNS, EventBridge or RocketMQ ARN: ${shown(arn, (typed) => maskedTarget(String(typed)).slice(0, 128))}`;
}

/**
 * A destination value that is no ARN, fit for a message: a mistyped ARN (`acs:...`) as it is,
 * anything else as {@link maskUrl} shows it, as a webhook's URL put there holds its password
 * and token.
 */
function maskedTarget(value: string): string {
  return value.startsWith('acs:') ? value : maskUrl(value);
}

/** Where destination records go when their target is not a function of this emulator. */
export interface DestinationContext {
  functions: ReadonlyMap<string, LocalFunction>;
  outDir: string;
  log: EmulatorLog;
}

/**
 * The payload limit FC's destinations page lists for each kind of destination: 128 KB for a
 * function, 64 KB for MNS and EventBridge, 4 MB for RocketMQ.
 */
const PAYLOAD_LIMITS: Readonly<Record<ArnTarget['kind'], number>> = {
  fc: 128 * 1024,
  mns: 64 * 1024,
  eventbridge: 64 * 1024,
  rocketmq: 4 * 1024 * 1024,
};

const KIND_NAMES: Readonly<Record<ArnTarget['kind'], string>> = {
  fc: 'an FC function',
  mns: 'MNS',
  eventbridge: 'EventBridge',
  rocketmq: 'RocketMQ',
};

/** The limit of a record to a function whose engine does not tell its async limit: FC's 128 KB. */
const DEFAULT_RECORD_LIMIT = PAYLOAD_LIMITS.fc;

/**
 * Holds the records a JSONL file stands in for a destination with to that destination's payload
 * limit on FC ({@link PAYLOAD_LIMITS}, the bytes of the record's JSON): a record past it is not
 * appended, and the delivery fails at once, not retried, as one to a function of the file does
 * (ours: FC's page says only that a delivery near the limit may fail). Locally written, such a
 * record would show a pipeline working that loses it on FC.
 */
function heldToLimit(jsonl: Destination, kind: ArnTarget['kind']): Destination {
  const limit = PAYLOAD_LIMITS[kind];
  return Object.assign(
    function deliverWithinLimit(record: DestinationRecord, context?: DeliveryContext) {
      let bytes = 0;
      try {
        bytes = Buffer.byteLength(JSON.stringify(record));
      } catch {
        // A record JSON cannot hold: the file's own delivery refuses it, with its own words.
      }
      if (bytes > limit) {
        throw new DestinationError(
          'DestinationInvokeError',
          `the record is ${bytes} bytes, above the payload limit of ${KIND_NAMES[kind]} as a destination on FC, ${limit} (EntityTooLarge): not appended`,
          { retryable: false, status: 400 },
        );
      }
      return jsonl(record, context);
    },
    { maxRetries: jsonl.maxRetries, label: jsonl.label },
  );
}

/**
 * Invokes a local function asynchronously with the record as its event, as FC does. A record past
 * the target's async payload limit (its `async.maxAsyncPayloadBytes`, FC's 128 KB by default; FC's
 * destinations page lists 128 KB for function destinations) is not sent: the delivery fails at once,
 * not retried, as a 4xx of FC's (ours: FC does not say what it does with such a record; it is
 * never cut to fit here).
 */
function localFunctionDestination(target: LocalFunction): Destination {
  const name = target.spec.name;
  return Object.assign(
    async function deliverToFunction(record: unknown) {
      const body = Buffer.from(JSON.stringify(record));
      const limit = asyncLimitOf(target.engine) ?? DEFAULT_RECORD_LIMIT;
      if (body.length > limit) {
        throw new DestinationError(
          'DestinationInvokeError',
          `${name} was not invoked: the record is ${body.length} bytes, above its async payload limit of ${limit} (EntityTooLarge)`,
          { retryable: false, status: 400 },
        );
      }
      const call = {
        method: 'POST',
        url: '/',
        headers: { 'content-type': 'application/json', 'x-fc-invocation-type': 'Async' },
        body,
      };
      const { result } = await target.invoke(call);
      if (result.statusCode !== 202) {
        const status = result.statusCode;
        throw new DestinationError('DestinationInvokeError', `${name} did not accept the record (HTTP ${status})`, {
          retryable: status === 429 || status >= 500,
          status,
        });
      }
    },
    { maxRetries: 3, label: `fc:${name}` },
  );
}

/** What an ARN names among the emulator's functions: `local` when it is one of them. */
function resolveArn(arn: string, functions: DestinationContext['functions']) {
  const target = parseDestinationArn(arn);
  const named = target?.kind === 'fc' ? functions.get(target.functionName) : undefined;
  // An FC 2.0 ARN names the service too: a function of that name in another service is not it.
  const otherService =
    named !== undefined &&
    target?.kind === 'fc' &&
    target.serviceName !== undefined &&
    named.spec.serviceName !== undefined &&
    named.spec.serviceName !== target.serviceName;
  return { target, named, otherService, local: otherService ? undefined : named };
}

/**
 * The functions a record sent to `from` goes on to, through their destinations, until one of
 * them is `owner`: `[from, ..., owner]`, or `undefined` when no chain from `from` comes back.
 */
function pathBack(
  owner: string,
  from: LocalFunction,
  functions: DestinationContext['functions'],
): string[] | undefined {
  const seen = new Set<string>();
  const walk = (fn: LocalFunction): string[] | undefined => {
    if (fn.spec.name === owner) return [owner];
    if (seen.has(fn.spec.name)) return undefined;
    seen.add(fn.spec.name);
    for (const side of ['onSuccess', 'onFailure'] as const) {
      const arn = fn.asyncConfig?.destinationConfig?.[side]?.destination;
      const next = arn ? resolveArn(arn, functions).local : undefined;
      const rest = next ? walk(next) : undefined;
      if (rest) return [fn.spec.name, ...rest];
    }
    return undefined;
  };
  return walk(from);
}

function destinationFor(owner: string, side: string, arn: string, ctx: DestinationContext): Destination {
  const { target, named, otherService, local } = resolveArn(arn, ctx.functions);
  if (local && local.spec.name === owner) {
    ctx.log.notice(
      `${owner} ${side} → ${owner} itself: each record is the event of the next call and quotes the one before, so the chain runs until a record passes the async payload limit`,
    );
  } else if (local) {
    // A cycle through other functions runs the same chain: say so as for a function that names itself.
    const back = pathBack(owner, local, ctx.functions);
    if (back) {
      ctx.log.notice(
        `${owner} ${side} → ${back.join(' → ')}: a cycle; each record is the event of the next call and quotes the one before, so a chain that goes round ends once a record passes the async payload limit`,
      );
    }
  }
  if (local?.spec.http) {
    // FC's docs: only event functions can be destinations (an HTTP function's trigger is its way in).
    ctx.log.notice(
      `${owner} ${side} → ${local.spec.name}: an HTTP function; FC takes event functions only as destinations, so this one works here but not on FC`,
    );
  }
  if (local) return localFunctionDestination(local);
  writableFolder(ctx.outDir);
  const file = join(ctx.outDir, `${owner}.${side}.jsonl`);
  const why =
    otherService && target?.kind === 'fc'
      ? `service ${target.serviceName} is not in the file (its ${target.functionName} is in service ${named?.spec.serviceName})`
      : target?.kind === 'fc'
        ? `function ${target.functionName} is not served here`
        : `${target?.kind ?? 'this destination'} is not reachable locally`;
  const kind = target?.kind ?? 'fc';
  ctx.log.notice(
    `${owner} ${side} → ${arn}: ${why}; records are appended to ${relative(process.cwd(), file)}, up to ${KIND_NAMES[kind]}'s payload limit on FC (${PAYLOAD_LIMITS[kind]} bytes)`,
  );
  const jsonl = jsonlDestination(file);
  return heldToLimit(kind === 'eventbridge' ? asCloudEvents(jsonl) : jsonl, kind);
}

/**
 * EventBridge gets FC's record as the `data` of a CloudEvent whose `type` says how the task ended
 * (`fc:AsyncInvoke:succeeded` or `fc:AsyncInvoke:failed`); the other attributes are ours.
 */
function asCloudEvents(jsonl: Destination): Destination {
  return Object.assign(
    function deliverToEventBridge(record: DestinationRecord, context?: DeliveryContext) {
      const { requestId, functionArn, condition } = record.requestContext;
      const event = {
        specversion: '1.0',
        id: requestId,
        source: 'acs.fc',
        type: condition === '' ? 'fc:AsyncInvoke:succeeded' : 'fc:AsyncInvoke:failed',
        subject: functionArn,
        time: new Date(record.timestamp).toISOString(),
        datacontenttype: 'application/json',
        data: record,
      };
      return jsonl(event as unknown as DestinationRecord, context);
    },
    { maxRetries: jsonl.maxRetries, label: `eventbridge:${jsonl.label}` },
  );
}

/**
 * Makes sure destination records can be appended in `dir` before any is due: found only at the
 * first record, an unwritable folder would lose it.
 */
function writableFolder(dir: string): void {
  try {
    makeFolderSync(dir);
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error(`${dir} is not a folder`), { code: 'ENOTDIR' });
    accessSync(dir, constants.W_OK);
  } catch (cause) {
    const code = (cause as { code?: string }).code ?? 'error';
    throw new FcAsyncError(
      'OutDirNotWritable',
      `Destination records cannot be written to ${dir} (${code}); choose a writable folder with --out-dir`,
      { statusCode: 500, cause },
    );
  }
}

/**
 * Puts a function's async config in force on its engine: retries, event age and destinations
 * (FC's defaults, 3 retries and 86400 s, when the config is deleted).
 */
export function applyAsyncConfig(fn: LocalFunction, ctx: DestinationContext): void {
  const config = fn.asyncConfig;
  const destinations: Destinations = {};
  for (const side of ['onSuccess', 'onFailure'] as const) {
    const arn = config?.destinationConfig?.[side]?.destination;
    if (arn) destinations[side] = destinationFor(fn.spec.name, side, arn, ctx);
  }
  // What the config leaves out falls back to the handler's own options: FC's defaults for the
  // handlers the emulator builds, the entry's own for an fc-async handler it exports.
  fn.engine.configure({
    maxAsyncRetryAttempts: config?.maxAsyncRetryAttempts,
    maxAsyncEventAgeInSeconds: config?.maxAsyncEventAgeInSeconds,
    destinations: config?.destinationConfig ? destinations : undefined,
  });
}
