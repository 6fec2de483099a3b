import { readFile, stat } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ASYNC_CONFIG, PRE_STOP_TIMEOUT_MS } from '../src/config.js';

const file = parse(await readFile(new URL('../s.yaml', import.meta.url), 'utf8'));
const resource = file.resources.reports as { component: string; actions: Record<string, unknown>; props: Props };
const props = resource.props;

interface Props {
  runtime: string;
  code: string;
  customRuntimeConfig: { command: string[]; port: number };
  instanceLifecycleConfig: { initializer: { timeout: number }; preStop: { timeout: number } };
  asyncInvokeConfig: { asyncTask: boolean; maxAsyncRetryAttempts: number; maxAsyncEventAgeInSeconds: number };
}

describe('s.yaml (Serverless Devs, component fc3)', () => {
  it('deploys dist/ on a custom runtime started by its bootstrap, listening on 9000', () => {
    expect(file.edition).toBe('3.0.0');
    expect(resource.component).toBe('fc3');
    expect(props.runtime).toBe('custom.debian10');
    expect(props.code).toBe('./dist');
    expect(props.customRuntimeConfig).toEqual({ command: ['/code/bootstrap'], port: 9000 });
  });

  it('builds dist/ before deploying', async () => {
    expect(resource.actions['pre-deploy']).toEqual([{ run: 'npm run build:fc', path: './' }]);
    const manifest = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
    expect(manifest.scripts['build:fc']).toBe('tsx scripts/build.ts');
  });

  it('has the async config fc-async is told (src/config.ts)', () => {
    expect(props.asyncInvokeConfig).toEqual({ asyncTask: true, ...ASYNC_CONFIG });
  });

  it('turns the lifecycle hooks on, with a PreStop timeout above the pre-stop budget', () => {
    expect(props.instanceLifecycleConfig.initializer.timeout).toBeGreaterThan(0);
    expect(props.instanceLifecycleConfig.preStop.timeout * 1000).toBeGreaterThan(PRE_STOP_TIMEOUT_MS);
  });

  it('keeps bootstrap executable in the source tree', async () => {
    expect((await stat(new URL('../bootstrap', import.meta.url))).mode & 0o111).not.toBe(0);
  });
});
