import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { silentLogger } from '@fc-async/core';
import { createHandler } from '@fc-async/express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { FORMATS, ffmpegArgs, parseFormat } from '../src/formats.js';
import { createSampleVideo } from '../src/sample.js';
import { LocalStorage } from '../src/storage.js';
import { codecs, fcEvent, probe, tempDir } from './helpers.js';

let root: string;
let storage: LocalStorage;
let handler: ReturnType<typeof createHandler>;

beforeAll(async () => {
  root = await tempDir('formats');
  storage = new LocalStorage(join(root, 'buckets'));
  await createSampleVideo(storage.locate('videos', 'clip.mp4'), { seconds: 2 });
  handler = createHandler(createApp({ storage, logger: silentLogger, workDir: root }), { logger: silentLogger });
});

afterAll(async () => {
  await handler.close();
  await rm(root, { recursive: true, force: true });
});

describe('every dst_format', () => {
  // [format, what ffprobe names the container, video codecs, audio codecs, major brand]
  const table: [string, string, string[], string[], string?][] = [
    ['mp4', 'mov,mp4,m4a,3gp,3g2,mj2', ['h264'], ['aac'], 'isom'],
    ['mov', 'mov,mp4,m4a,3gp,3g2,mj2', ['h264'], ['aac'], 'qt  '],
    ['mkv', 'matroska,webm', ['h264'], ['aac']],
    ['webm', 'matroska,webm', ['vp8'], ['opus']],
    ['flv', 'flv', ['h264'], ['aac']],
    ['avi', 'avi', ['mpeg4'], ['mp3']],
    ['gif', 'gif', ['gif'], []],
    ['mp3', 'mp3', [], ['mp3']],
    ['m3u8', 'hls', ['h264'], ['aac']],
  ];

  it('covers the table', () => {
    expect(table.map(([format]) => format)).toEqual([...FORMATS]);
  });

  it.each(table)('%s: ffprobe reads %s', async (format, container, video, audio, brand) => {
    const result = await handler(
      fcEvent({ bucket: 'videos', object: 'clip.mp4', output_dir: format, dst_format: format }),
      {},
    );
    expect(result.statusCode).toBe(200);
    const [main] = JSON.parse(result.body).outputs;
    expect(main).toBe(`${format}/clip.${format}`);
    const p = await probe(storage.locate('videos', main));
    expect(p.format.format_name).toBe(container);
    expect(codecs(p, 'video')).toEqual(video);
    expect(codecs(p, 'audio')).toEqual(audio);
    if (brand) expect(p.format.tags?.major_brand).toBe(brand);
  });
});

describe('parseFormat', () => {
  it.each([
    ['mp4', 'mp4'],
    ['.M3U8', 'm3u8'],
    [' webm ', 'webm'],
    ['wav', undefined],
    [42, undefined],
  ])('%j → %j', (input, expected) => {
    expect(parseFormat(input)).toBe(expected);
  });
});

describe('ffmpegArgs', () => {
  it('asks for 10-second VOD segments next to the playlist for m3u8', () => {
    const args = ffmpegArgs({ input: '/w/in.mov', outDir: '/w/out', name: 'cat', format: 'm3u8' });
    const after = (flag: string) => args[args.indexOf(flag) + 1];
    expect(after('-hls_time')).toBe('10');
    expect(after('-hls_playlist_type')).toBe('vod');
    expect(after('-hls_segment_filename')).toBe('/w/out/cat_%03d.ts');
    expect(args.at(-1)).toBe('/w/out/cat.m3u8');
  });

  it('puts extra input options before -i', () => {
    const args = ffmpegArgs({ input: '/w/in.mov', outDir: '/w/out', name: 'cat', format: 'mp4', inputArgs: ['-re'] });
    expect(args.indexOf('-re')).toBeGreaterThan(-1);
    expect(args.indexOf('-re')).toBeLessThan(args.indexOf('-i'));
  });
});
