import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { FUNCTIONS } from '../scripts/bundle.js';
import { TRANSCODE_ASYNC } from '../src/config.js';

interface Props {
  functionName: string;
  runtime: string;
  handler: string;
  code: string;
  timeout: number;
  triggers?: { triggerType: string; triggerConfig: { authType: string; methods: string[] } }[];
  asyncInvokeConfig?: Record<string, unknown> & {
    destinationConfig: { onSuccess: { destination: string }; onFailure: { destination: string } };
  };
}

const file = parse(await readFile(new URL('../s.yaml', import.meta.url), 'utf8'));
const resources = file.resources as Record<string, { component: string; props: Props }>;
const transcode = resources.transcode?.props as Props;

describe('s.yaml (Serverless Devs, component fc3)', () => {
  it('deploys the destinations before the function whose async config names them', () => {
    expect(file.edition).toBe('3.0.0');
    expect(Object.keys(resources)).toEqual(['dest-succ', 'dest-fail', 'transcode']);
    for (const resource of Object.values(resources)) expect(resource.component).toBe('fc3');
  });

  it('deploys each function from the folder `npm run build:fc` writes, with the built-in nodejs20 runtime', () => {
    for (const [name, resource] of Object.entries(resources)) {
      expect(name in FUNCTIONS).toBe(true);
      expect(resource.props).toMatchObject({
        functionName: name,
        runtime: 'nodejs20',
        handler: 'index.handler',
        code: `./dist/${name}`,
      });
    }
  });

  it('builds the code folders before the first function deploys', async () => {
    const first = Object.values(resources)[0] as { actions?: Record<string, { run: string; path: string }[]> };
    expect(first.actions?.['pre-deploy']).toEqual([{ run: 'npm run build:fc', path: './' }]);
    const manifest = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
    expect(manifest.scripts['build:fc']).toBe('tsx scripts/build.ts');
  });

  it('gives transcode an anonymous HTTP trigger taking POST', () => {
    expect(transcode.triggers).toEqual([
      expect.objectContaining({
        triggerType: 'http',
        triggerConfig: { authType: 'anonymous', methods: expect.arrayContaining(['POST']) },
      }),
    ]);
  });

  it('configures async invocation as the best practice does, the same as the handler', () => {
    expect(transcode.asyncInvokeConfig).toMatchObject({
      asyncTask: true,
      maxAsyncRetryAttempts: TRANSCODE_ASYNC.maxAsyncRetryAttempts,
      maxAsyncEventAgeInSeconds: TRANSCODE_ASYNC.maxAsyncEventAgeInSeconds,
    });
    expect([
      transcode.asyncInvokeConfig?.maxAsyncRetryAttempts,
      transcode.asyncInvokeConfig?.maxAsyncEventAgeInSeconds,
    ]).toEqual([2, 18000]);
    expect(transcode.timeout).toBe(TRANSCODE_ASYNC.timeoutSeconds);
  });

  it('sends outcomes to the event functions dest-succ and dest-fail of this file', () => {
    const { onSuccess, onFailure } = transcode.asyncInvokeConfig?.destinationConfig ?? ({} as never);
    const arn = /^acs:fc:\$\{vars\.region\}:\$\{config\('AccountID'\)\}:functions\/([\w-]+)$/;
    expect(onSuccess.destination.match(arn)?.[1]).toBe('dest-succ');
    expect(onFailure.destination.match(arn)?.[1]).toBe('dest-fail');
    // FC only accepts event functions as destinations: no trigger.
    expect(resources['dest-succ']?.props.triggers).toBeUndefined();
    expect(resources['dest-fail']?.props.triggers).toBeUndefined();
  });
});
