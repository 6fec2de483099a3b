import { configError, isObject, shown } from './errors.js';

type Obj = Record<string, unknown>;

/**
 * The keys of the s.yaml blocks `fc-async dev` reads and whose keys are a small known set, as the
 * fc3 component (src/interface, src/schema.json) and the fc component (docs/zh/yaml) define them.
 * A key outside them gets a notice, not a refusal: files carry keys of newer component versions.
 */
const FC3_TRIGGER = [
  'triggerName',
  'triggerType',
  'triggerConfig',
  'qualifier',
  'description',
  'sourceArn',
  'invocationRole',
];
const FC2_TRIGGER = ['name', 'type', 'config', 'role', 'sourceArn', 'qualifier', 'description'];
const HTTP_CONFIG = ['methods', 'authType', 'authConfig', 'disableURLInternet'];
/** `statefulInvocation` is read as `asyncTask` (the FC 2.0 name). */
const FC3_ASYNC = [
  'destinationConfig',
  'maxAsyncEventAgeInSeconds',
  'maxAsyncRetryAttempts',
  'asyncTask',
  'statefulInvocation',
  'qualifier',
];
const FC2_ASYNC = ['destination', 'maxAsyncEventAgeInSeconds', 'maxAsyncRetryAttempts', 'statefulInvocation'];
const FC2_DESTINATION = ['onSuccess', 'onFailure'];
/**
 * `instanceLifecycleConfig` (FC 3.0: initializer, preStop; FC 2.0: preFreeze, preStop; an FC 2.0
 * one's initializer is refused, see checkFunction) and each hook (`command`: a custom container's).
 */
const LIFECYCLE = ['initializer', 'preStop', 'preFreeze'];
const LIFECYCLE_HOOK = ['handler', 'timeout', 'command'];

/**
 * Function props are an open set (FC adds fields often): only a key that is a near miss of one the
 * emulator reads, and that no component version names, gets a notice. `known` lists what the
 * fc3 component and the fc component docs name, so that a real key close to a read one (`role`,
 * `code`) is never taken for a typo.
 */
const FC3_READ = [
  'functionName',
  'code',
  'handler',
  'runtime',
  'region',
  'memorySize',
  'timeout',
  'environmentVariables',
  'triggers',
  'asyncInvokeConfig',
  'logConfig',
  'customRuntimeConfig',
  'customContainerConfig',
  'instanceLifecycleConfig',
  'layers',
  'customDomain',
];
const FC3_KNOWN = [
  ...FC3_READ,
  'function',
  'annotations',
  'artifact',
  'concurrencyConfig',
  'cpu',
  'customDNS',
  'description',
  'diskSize',
  'enableLongLiving',
  'endpoint',
  'gpuConfig',
  'instanceConcurrency',
  'instanceIsolationMode',
  'internetAccess',
  'nasConfig',
  'ossMountConfig',
  'provisionConfig',
  'role',
  'scalingConfig',
  'sessionAffinity',
  'sessionAffinityConfig',
  'supplement',
  'tags',
  'tracingConfig',
  'vpcBinding',
  'vpcConfig',
];
const FC2_PROPS_READ = ['region', 'service', 'function', 'triggers'];
const FC2_PROPS_KNOWN = [...FC2_PROPS_READ, 'customDomains'];
const FC2_FUNCTION_READ = [
  'name',
  'codeUri',
  'handler',
  'runtime',
  'memorySize',
  'timeout',
  'environmentVariables',
  'asyncConfiguration',
  'customRuntimeConfig',
  'customContainerConfig',
  'customHealthCheckConfig',
  'caPort',
  'initializer',
  'initializationTimeout',
  'instanceLifecycleConfig',
  'layers',
];
const FC2_FUNCTION_KNOWN = [
  ...FC2_FUNCTION_READ,
  'description',
  'ossBucket',
  'ossKey',
  'cpu',
  'diskSize',
  'instanceConcurrency',
  'instanceType',
  'gpuMemorySize',
  'customDNS',
];

/** The HTTP methods an FC HTTP trigger takes (`triggerConfig.methods`); FC refuses others at deploy. */
const HTTP_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'PATCH', 'OPTIONS'] as const;

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours. */
function distance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) (rows[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i++) {
    const row = rows[i] as number[];
    const up = rows[i - 1] as number[];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((up[j] as number) + 1, (row[j - 1] as number) + 1, (up[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        row[j] = Math.min(row[j] as number, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      }
    }
  }
  return (rows[a.length] as number[])[b.length] as number;
}

/**
 * The known key `key` most likely stands for: within edit distance `max` (at most 1 for a known
 * key of four letters or fewer, where two edits reach unrelated words: `role` → `code`), or, with
 * `prefix`, one that starts with it or that it starts with. `undefined` when none is close.
 *
 * @example
 * ```ts
 * closest('onFailur', ['onSuccess', 'onFailure']); // 'onFailure'
 * ```
 */
export function closest(
  key: string,
  known: readonly string[],
  { prefix = true, max = 2 }: { prefix?: boolean; max?: number } = {},
): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    // The length gap bounds the distance from below: a long key is never compared cell by cell.
    const gap = Math.abs(key.length - candidate.length);
    const d = gap > max ? gap : distance(key.toLowerCase(), candidate.toLowerCase());
    const near = d <= (candidate.length <= 4 ? Math.min(max, 1) : max);
    const prefixed = prefix && key.length >= 3 && (candidate.startsWith(key) || key.startsWith(candidate));
    if ((near || prefixed) && d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

const hint = (suggestion: string | undefined) => (suggestion ? `; did you mean ${suggestion}?` : '');

/** A notice for each key of the mapping `value` outside `known`, with the known key it is close to. */
function unknownKeys(value: unknown, known: readonly string[], where: string, notes: string[]): void {
  if (!isObject(value)) return;
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    notes.push(`${where}: unknown key ${key} (ignored)${hint(closest(key, known))}`);
  }
}

/** Notices for the unknown keys of an `instanceLifecycleConfig` and of its hooks: a misspelt hook is not run. */
function lifecycleKeys(value: unknown, where: string, notes: string[]): void {
  unknownKeys(value, LIFECYCLE, where, notes);
  if (!isObject(value)) return;
  for (const hook of LIFECYCLE) unknownKeys(value[hook], LIFECYCLE_HOOK, `${where}.${hook}`, notes);
}

/** A notice for each key of the open mapping `value` that is a near miss of a key it lacks in `read`. */
function nearMisses(
  value: unknown,
  lists: { read: readonly string[]; known: readonly string[]; present: Obj },
  where: string,
  notes: string[],
): void {
  if (!isObject(value)) return;
  for (const key of Object.keys(value)) {
    if (lists.known.includes(key)) continue;
    const suggestion = closest(key, lists.read, { prefix: false });
    if (suggestion && !Object.hasOwn(lists.present, suggestion)) {
      notes.push(`${where}: unknown key ${key} (ignored); did you mean ${suggestion}?`);
    }
  }
}

/** How a component spells a trigger: the keys of its type and config, and the keys it knows. */
interface TriggerKeys {
  typeKey: string;
  configKey: string;
  known: readonly string[];
}

/**
 * Checks the HTTP triggers of a function served: a notice for each unknown key of the entry and of
 * its config, and for an entry that has no type but a key close to it (the trigger is then ignored).
 * Throws `InvalidConfig` for a method FC does not take, naming the function.
 */
function checkTriggers(file: string, fn: string, triggers: unknown, where: string, keys: TriggerKeys, notes: string[]) {
  if (!Array.isArray(triggers)) return;
  triggers.forEach((trigger, index) => {
    if (!isObject(trigger)) return;
    const at = `${where}[${index}]`;
    if (trigger[keys.typeKey] === undefined) {
      const near = Object.keys(trigger).find((k) => closest(k, [keys.typeKey], { prefix: false }) === keys.typeKey);
      if (near) {
        const served = trigger[near] === 'http' ? `, so ${fn} gets no HTTP trigger from it` : '';
        notes.push(
          `${at}: has no ${keys.typeKey} but has ${near}; did you mean ${keys.typeKey}? (the trigger is ignored${served})`,
        );
      }
      return;
    }
    const type = trigger[keys.typeKey];
    if (type !== 'http') {
      // A type one letter away from http (`htpp`, `HTTP`) is a typo that makes an event function.
      if (typeof type === 'string' && closest(type, ['http'], { prefix: false }) === 'http') {
        notes.push(
          `${at}.${keys.typeKey}: ${shown(type)} is not a trigger type; did you mean http? (the trigger is ignored, so ${fn} gets no HTTP trigger from it)`,
        );
      }
      return;
    }
    unknownKeys(trigger, keys.known, at, notes);
    const config = trigger[keys.configKey];
    unknownKeys(config, HTTP_CONFIG, `${at}.${keys.configKey}`, notes);
    const methods = isObject(config) ? config.methods : undefined;
    if (!Array.isArray(methods)) return;
    for (const method of methods) {
      if (typeof method !== 'string' || (HTTP_METHODS as readonly string[]).includes(method.toUpperCase())) continue;
      throw configError(
        file,
        `${at}.${keys.configKey}.methods of function ${fn}: ${shown(method)} is not an HTTP method FC takes (${HTTP_METHODS.join(', ')})${hint(closest(method.toUpperCase(), HTTP_METHODS, { prefix: false, max: 1 }))}`,
      );
    }
  });
}

/**
 * Notices for keys of an fc3 function served that it ignores (unknown or misspelt) in its props,
 * HTTP triggers, `asyncInvokeConfig` and `instanceLifecycleConfig`. Throws `InvalidConfig` for an HTTP method FC does not take.
 */
export function fc3KeyNotes(file: string, fn: string, props: Obj, where: string): string[] {
  const notes: string[] = [];
  const merged = isObject(props.function) ? { ...props, ...props.function } : props;
  const lists = { read: FC3_READ, known: FC3_KNOWN, present: merged };
  nearMisses(props, lists, where, notes);
  nearMisses(props.function, lists, `${where}.function`, notes);
  const keys = { typeKey: 'triggerType', configKey: 'triggerConfig', known: FC3_TRIGGER };
  checkTriggers(file, fn, merged.triggers, `${where}.triggers`, keys, notes);
  unknownKeys(merged.asyncInvokeConfig, FC3_ASYNC, `${where}.asyncInvokeConfig`, notes);
  lifecycleKeys(merged.instanceLifecycleConfig, `${where}.instanceLifecycleConfig`, notes);
  return notes;
}

/**
 * Notices for keys of an fc (FC 2.0) function served that it ignores (unknown or misspelt) in its
 * props, `function`, HTTP triggers, `asyncConfiguration` and `instanceLifecycleConfig`. Throws `InvalidConfig` for an HTTP
 * method FC does not take.
 */
export function fc2KeyNotes(file: string, fn: string, props: Obj, where: string): string[] {
  const notes: string[] = [];
  nearMisses(props, { read: FC2_PROPS_READ, known: FC2_PROPS_KNOWN, present: props }, where, notes);
  const fnProps = isObject(props.function) ? props.function : {};
  const lists = { read: FC2_FUNCTION_READ, known: FC2_FUNCTION_KNOWN, present: fnProps };
  nearMisses(fnProps, lists, `${where}.function`, notes);
  const keys = { typeKey: 'type', configKey: 'config', known: FC2_TRIGGER };
  checkTriggers(file, fn, props.triggers, `${where}.triggers`, keys, notes);
  lifecycleKeys(fnProps.instanceLifecycleConfig, `${where}.function.instanceLifecycleConfig`, notes);
  const async = fnProps.asyncConfiguration;
  unknownKeys(async, FC2_ASYNC, `${where}.function.asyncConfiguration`, notes);
  if (isObject(async)) {
    unknownKeys(async.destination, FC2_DESTINATION, `${where}.function.asyncConfiguration.destination`, notes);
  }
  return notes;
}
