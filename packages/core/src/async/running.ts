import { first, type HeaderBag, type Invocation, memoryOf } from '../invocation.js';
import { LazyAbort } from '../lazy-abort.js';
import { NO_ACCOUNT, NO_REGION } from './arn.js';
import type { TaskRecord } from './backend.js';

/**
 * An attempt under way: whether a stop was asked for, what to do on one, and its abort
 * signal, made on first use.
 */
export class Running extends LazyAbort {
  stopRequested = false;
  /** Aborted by a graceful shutdown past its deadline: not the function's failure, not counted. */
  cutByShutdown = false;
  onStop: (() => void) | undefined = undefined;
  /** Ends the attempt now, whatever its app does: a shutdown's last word to an app that ignores its abort. */
  giveUp: (() => void) | undefined = undefined;
  /** Given up by a shutdown while its app still ran: the app may go on in this process. */
  abandoned = false;
}

interface ArnParts {
  region: string;
  accountId: string;
  functionName: string;
}

let lastArn = '';
let lastParts: ArnParts = { region: '', accountId: '', functionName: '' };

/** `acs:fc:{region}:{accountId}:functions/{name}` taken apart; the last one is remembered (one function, one ARN). */
function parseArn(arn: string): ArnParts {
  if (arn === lastArn) return lastParts;
  const m = /^acs:fc:([^:]*):([^:]*):functions\/(.+)$/.exec(arn);
  // The ARN's stand-ins for a region and an account FC did not give read as a sync call's: none.
  const region = m?.[1] ?? '';
  const accountId = m?.[2] ?? '';
  lastParts = {
    region: region === NO_REGION ? '' : region,
    accountId: accountId === NO_ACCOUNT ? '' : accountId,
    functionName: m?.[3] ?? '',
  };
  lastArn = arn;
  return lastParts;
}

/** A replayed request's headers: their names are lower-case. */
type Headers = Readonly<HeaderBag>;

/**
 * The invocation an attempt of a queued task runs with; `signal` is the attempt's, made when first
 * read. FC gives an attempt the context it gives a sync call: what the task's ARN leaves out (an
 * account or region it only stands in for, the memory, the version) comes from where a sync call's
 * comes, the FC headers of the accepted request (`x-fc-account-id`, `x-fc-function-memory`...),
 * then the environment (`FC_ACCOUNT_ID`, `FC_FUNCTION_MEMORY_SIZE`...).
 */
class ReplayedInvocation implements Invocation {
  readonly type = 'Async' as const;
  readonly requestId: string;
  readonly taskId: string;
  readonly attempt: number;
  readonly source = 'local-queue';
  readonly region: string;
  readonly accountId: string;
  readonly functionName: string;
  readonly qualifier: string;
  readonly versionId: string | undefined;
  readonly memoryMB: number | undefined;
  readonly instanceId: string | undefined;
  /** The attempt's own bound (`async.timeoutSeconds`), which ends it as the function's timeout ends one on FC. */
  readonly timeoutSeconds: number;
  readonly #running: Running;

  constructor(
    record: TaskRecord,
    attempt: number,
    running: Running,
    instanceId: string | undefined,
    timeoutSeconds: number,
    headers: Headers,
    env: Readonly<Record<string, string | undefined>>,
  ) {
    const arn = parseArn(record.functionArn);
    this.requestId = record.requestId;
    this.taskId = record.taskId;
    this.attempt = attempt;
    // The ARN's stand-in (`local`, `0`) may be the real one too (`--account-id 0`): the headers say.
    this.region = arn.region || (first(headers['x-fc-region']) ?? env.FC_REGION ?? '');
    this.accountId = arn.accountId || (first(headers['x-fc-account-id']) ?? env.FC_ACCOUNT_ID ?? '');
    this.functionName = arn.functionName;
    this.qualifier = record.qualifier;
    this.versionId = first(headers['x-fc-version-id']) || undefined;
    this.memoryMB = memoryOf(first(headers['x-fc-function-memory']), env);
    this.instanceId = instanceId;
    this.timeoutSeconds = timeoutSeconds;
    this.#running = running;
  }

  get signal(): AbortSignal {
    return this.#running.signal;
  }
}

/**
 * The invocation context of one attempt of `record`, which the engine ends after `timeoutSeconds`;
 * `headers` are those of its replayed request, `env` the handler's.
 */
export function replayInvocation(
  record: TaskRecord,
  attempt: number,
  running: Running,
  instanceId: string | undefined,
  timeoutSeconds: number,
  headers: Headers = {},
  env: Readonly<Record<string, string | undefined>> = {},
): Invocation {
  return new ReplayedInvocation(record, attempt, running, instanceId, timeoutSeconds, headers, env);
}
