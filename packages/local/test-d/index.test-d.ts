import {
  type AsyncConfigInput,
  type Emulator,
  type EmulatorOptions,
  type FunctionSpec,
  type HealthCheck,
  type LifecycleHook,
  type LogFormat,
  loadServerlessConfig,
  type ServerlessConfig,
  type ServerlessConfigOptions,
  type SignatureResult,
  type SignedRequest,
  signAcsRequest,
  startEmulator,
  verifyAcsSignature,
} from '@fc-async/local';
import { expectAssignable, expectError, expectType } from 'tsd';

const options: EmulatorOptions = {
  entry: 'app.ts',
  port: 0,
  controlPort: 0,
  logFormat: 'json',
  store: 'sqlite:tasks.db',
};
expectType<Promise<Emulator>>(startEmulator(options));
expectType<Promise<Emulator>>(startEmulator());
expectError(startEmulator({ port: '9000' }));
expectError(startEmulator({ logFormat: 'yaml' }));
expectAssignable<LogFormat>('text');

declare const emulator: Emulator;
expectType<string>(emulator.triggerUrl);
expectType<readonly string[]>(emulator.functions);
expectType<Promise<void>>(emulator.close({ timeoutMs: 1000 }));

const yamlOptions: ServerlessConfigOptions = { region: 'cn-hangzhou', accountId: '123', env: {} };
expectType<Promise<ServerlessConfig>>(loadServerlessConfig('s.yaml', yamlOptions));
declare const config: ServerlessConfig;
expectType<FunctionSpec[]>(config.functions);
expectType<AsyncConfigInput | undefined>(config.functions[0]?.asyncConfig);

const request: SignedRequest = { method: 'GET', path: '/2023-03-30/functions/f/async-tasks', headers: {} };
const result = verifyAcsSignature(request, (id) => (id === 'ak' ? 'sk' : undefined));
expectType<SignatureResult>(result);
if (result.ok) expectType<string>(result.accessKeyId);
else expectType<string>(result.code);
const seenNonces = new Set<string>();
expectType<SignatureResult>(
  verifyAcsSignature(request, () => 'sk', {
    checkNonce: (nonce, expiresAt) => expiresAt > Date.now() && !seenNonces.has(nonce),
  }),
);
expectError(verifyAcsSignature(request, () => 'sk', { checkNonce: (nonce: number) => nonce > 0 }));
expectType<Record<string, string>>(signAcsRequest(request, { accessKeyId: 'ak', accessKeySecret: 'sk' }));
expectError(signAcsRequest(request, { accessKeyId: 'ak' }));

// A custom runtime's health check, as s.yaml gives it.
expectType<HealthCheck | undefined>(config.functions[0]?.customRuntime?.healthCheck);

// The bounds of the control plane's live streams and of the bodies held at once.
expectType<Promise<Emulator>>(
  startEmulator({ entry: 'app.ts', maxEventStreams: 8, maxBufferedBodyBytes: 64 * 1024 * 1024 }),
);
expectError(startEmulator({ maxEventStreams: '8' }));
expectError(startEmulator({ maxBufferedBodyBytes: '64MB' }));
// The log project and logstore FC sends in x-fc-service-logproject / x-fc-service-logstore.
expectType<{ project: string; logstore: string } | undefined>(config.functions[0]?.logConfig);

// A Node.js function's lifecycle hooks, as s.yaml gives them.
expectType<LifecycleHook | undefined>(config.functions[0]?.lifecycle?.initializer);
expectType<number | undefined>(config.functions[0]?.lifecycle?.preStop?.timeout);
expectError<LifecycleHook>({ handler: 'index.initialize', file: '/app/index.js', exportName: 'initialize' });
