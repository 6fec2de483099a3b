import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleFunctions } from '../scripts/bundle.js';
import { createSampleVideo } from '../src/sample.js';
import { fcEvent, probe, readRecords, tempDir } from './helpers.js';

const run = promisify(execFile);
let root: string;
let folders: Awaited<ReturnType<typeof bundleFunctions>>;

beforeAll(async () => {
  root = await tempDir('bundle');
  folders = await bundleFunctions({ outDir: join(root, 'dist') });
  await createSampleVideo(join(root, 'buckets', 'videos', 'in', 'clip.mp4'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/**
 * Calls the built code folders the way FC's nodejs20 runtime does: `require('<code>/index.js').handler(event, context)`,
 * in a fresh process with FC's variables, outside any node_modules, without FFMPEG_PATH.
 */
async function onFc(script: string): Promise<unknown> {
  const file = join(root, `call-${Math.random().toString(36).slice(2)}.cjs`);
  await writeFile(file, script);
  const { stdout } = await run(process.execPath, [file], {
    cwd: root,
    env: {
      PATH: process.env.PATH,
      FC_FUNCTION_NAME: 'transcode',
      FC_REGION: 'cn-hangzhou',
      STORAGE_ROOT: join(root, 'buckets'),
      DEST_RECORDS_DIR: join(root, 'records'),
    },
  });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? 'null');
}

describe('npm run build:fc (the code folders s.yaml deploys)', () => {
  it('writes one CommonJS index.js per function, and ffmpeg beside transcode', async () => {
    expect(Object.keys(folders)).toEqual(['transcode', 'dest-succ', 'dest-fail']);
    for (const folder of Object.values(folders)) {
      expect(JSON.parse(await readFile(join(folder, 'package.json'), 'utf8')).type).toBe('commonjs');
      expect(existsSync(join(folder, 'index.js'))).toBe(true);
    }
    expect((await stat(join(folders.transcode, 'bin', 'ffmpeg'))).mode & 0o111).not.toBe(0);
  });

  it('transcode runs as index.handler with a Buffer event, using its own ffmpeg', async () => {
    const event = fcEvent({ bucket: 'videos', object: 'in/clip.mp4', output_dir: 'out', dst_format: 'mp4' });
    const result = (await onFc(`
      let installer = 'not resolvable';
      try { installer = require.resolve('@ffmpeg-installer/ffmpeg'); } catch {}
      const { handler } = require(${JSON.stringify(join(folders.transcode, 'index.js'))});
      handler(Buffer.from(${JSON.stringify(event.toString('base64'))}, 'base64'), { requestId: '1-a', function: { name: 'transcode' } })
        .then((r) => console.log(JSON.stringify({ installer, statusCode: r.statusCode, body: JSON.parse(r.body) })));
    `)) as { installer: string; statusCode: number; body: { outputs: string[] } };
    expect(result).toMatchObject({ installer: 'not resolvable', statusCode: 200, body: { outputs: ['out/clip.mp4'] } });
    expect((await probe(join(root, 'buckets', 'videos', 'out', 'clip.mp4'))).format.format_name).toContain('mp4');
  });

  it('on FC, a failed async invocation throws, so that FC retries it and calls dest-fail', async () => {
    const event = fcEvent(
      { bucket: 'videos', object: 'in/missing.mp4', output_dir: 'out', dst_format: 'mp4' },
      { 'X-Fc-Invocation-Type': 'Async' },
    );
    const result = await onFc(`
      const { handler } = require(${JSON.stringify(join(folders.transcode, 'index.js'))});
      handler(Buffer.from(${JSON.stringify(event.toString('base64'))}, 'base64'), { requestId: '1-b' })
        .then((r) => console.log(JSON.stringify({ returned: r.statusCode })), (e) => console.log(JSON.stringify({ thrown: e.code })));
    `);
    expect(result).toEqual({ thrown: 'UnhandledInvocationError' });
  });

  it('dest-fail runs as index.handler and keeps the record FC sends it', async () => {
    const record = {
      timestamp: 1,
      requestContext: {
        requestId: '1-c',
        functionArn: 'acs:fc:cn-hangzhou:1:functions/transcode',
        condition: 'UnhandledInvocationError',
        approximateInvokeCount: 3,
      },
      requestPayload: '{}',
      responseContext: { statusCode: 404, functionError: 'UnhandledInvocationError' },
      responsePayload: '{}',
    };
    const result = await onFc(`
      const { handler } = require(${JSON.stringify(join(folders['dest-fail'], 'index.js'))});
      handler(Buffer.from(${JSON.stringify(JSON.stringify(record))}), {}).then((r) => console.log(JSON.stringify(r)));
    `);
    expect(result).toEqual({
      file: join(root, 'records', 'dest-fail.jsonl'),
      requestId: '1-c',
      condition: 'UnhandledInvocationError',
    });
    expect(await readRecords(join(root, 'records', 'dest-fail.jsonl'))).toEqual([record]);
  });
});
