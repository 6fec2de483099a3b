/**
 * FC's async invoke config as `s.yaml` and PutAsyncInvokeConfig give it (API 2023-03-30 names).
 *
 * @example
 * ```ts
 * const config: AsyncConfigInput = { maxAsyncRetryAttempts: 2, maxAsyncEventAgeInSeconds: 18000, asyncTask: true,
 *   destinationConfig: { onFailure: { destination: 'acs:fc:cn-hangzhou:123:functions/dest-fail' } } };
 * ```
 */
export interface AsyncConfigInput {
  /** 0..8. @default 3 */
  maxAsyncRetryAttempts?: number;
  /** 1..604800. @default 86400 */
  maxAsyncEventAgeInSeconds?: number;
  /** Task mode. Locally every async invocation is a task whatever this says. */
  asyncTask?: boolean;
  destinationConfig?: {
    onSuccess?: { destination: string };
    onFailure?: { destination: string };
  };
}

/**
 * One function the emulator serves: where its code is, how FC calls it, and its async config.
 *
 * @example
 * ```ts
 * const spec: FunctionSpec = { name: 'transcode', file: '/app/code/index.js', exportName: 'handler',
 *   handler: 'index.handler', http: { methods: ['POST'] }, style: 'fc3' };
 * ```
 */
export interface FunctionSpec {
  /** FC function name. */
  name: string;
  /** Absolute path of the module to load. */
  file: string;
  /** The export to use; `undefined` picks `handler`, then `default`, then `app`. */
  exportName?: string | undefined;
  /** FC's `handler` setting (`index.handler`), as reported in `x-fc-function-handler`. */
  handler: string;
  /** The HTTP trigger, when the function has one; without it the function is an event function. */
  http?: { methods?: string[] | undefined } | undefined;
  /** FC 3.0 (`handler(event, context)`) or FC 2.0 (`handler(req, resp, context)` for HTTP). */
  style: 'fc3' | 'fc2';
  /** FC 2.0: the name of the function's service (`service.name`), in `context.service.name`. */
  serviceName?: string | undefined;
  runtime?: string | undefined;
  region?: string | undefined;
  /** MB. */
  memorySize?: number | undefined;
  /** Seconds; the attempt timeout of async invocations. */
  timeout?: number | undefined;
  environmentVariables?: Record<string, string> | undefined;
  asyncConfig?: AsyncConfigInput | undefined;
  /**
   * The Simple Log Service project and logstore of `logConfig` (FC 2.0: the service's), sent as
   * `x-fc-service-logproject` / `x-fc-service-logstore` and in `context.service`; absent when the
   * s.yaml names none (`logConfig: auto` names them at deploy).
   */
  logConfig?: { project: string; logstore: string } | undefined;
  /**
   * A Node.js function's lifecycle hooks (`instanceLifecycleConfig`; FC 2.0 `initializer`): the
   * initializer runs once its module has loaded, before the function is served; `preStop` runs on
   * shutdown, once its tasks have drained. Not for a custom runtime (see `customRuntime`).
   */
  lifecycle?: { initializer?: LifecycleHook | undefined; preStop?: LifecycleHook | undefined } | undefined;
  /**
   * A custom runtime (`runtime: custom*`): the HTTP server process the emulator starts, with
   * `file` its code folder (the working folder of `command`).
   */
  customRuntime?:
    | {
        /** `customRuntimeConfig.command` then `.args`, or the code folder's `bootstrap`. */
        command: string[];
        /** The port of `customRuntimeConfig.port` / `caPort`: FC's; locally the emulator picks a free one. */
        port: number;
        /** `POST /initialize` once started, within `timeout` seconds. */
        initializer?: { timeout: number } | undefined;
        /** `GET /pre-stop` before the process is stopped, within `timeout` seconds. */
        preStop?: { timeout: number } | undefined;
        /**
         * `customRuntimeConfig.healthCheckConfig` (FC 2.0: `customHealthCheckConfig`): how start-up
         * is judged, as FC judges it; without it the emulator waits up to 30 s for the port.
         */
        healthCheck?: HealthCheck | undefined;
      }
    | undefined;
}

/**
 * A lifecycle hook of a Node.js function: its handler as the s.yaml names it (`index.initialize`),
 * the module that holds it, its export, and its timeout in seconds.
 *
 * @example
 * ```ts
 * const hook: LifecycleHook = { handler: 'index.initialize', file: '/app/index.js', exportName: 'initialize', timeout: 3 };
 * ```
 */
export interface LifecycleHook {
  handler: string;
  file: string;
  exportName: string;
  timeout: number;
}

/**
 * FC's custom health check of a custom runtime, in seconds: probes (a connection, and with
 * `httpGetUrl` a `GET` answered 2xx within `timeoutSeconds`) start `initialDelaySeconds` after
 * the start, one every `periodSeconds`; `successThreshold` passes in a row make it ready,
 * `failureThreshold` failures in a row fail the start.
 *
 * @example
 * ```ts
 * const check: HealthCheck = { httpGetUrl: '/ready', initialDelaySeconds: 0, periodSeconds: 1,
 *   timeoutSeconds: 1, failureThreshold: 5, successThreshold: 1 };
 * ```
 */
export interface HealthCheck {
  httpGetUrl?: string | undefined;
  initialDelaySeconds: number;
  periodSeconds: number;
  timeoutSeconds: number;
  failureThreshold: number;
  successThreshold: number;
}

/** FC's rule for function names. */
export const FUNCTION_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
