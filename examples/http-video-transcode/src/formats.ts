import { join } from 'node:path';

/** The values `dst_format` accepts. */
export const FORMATS = ['mp4', 'mov', 'mkv', 'webm', 'flv', 'avi', 'gif', 'mp3', 'm3u8'] as const;

/**
 * A target format of the transcode.
 *
 * @example
 * ```ts
 * const format: DstFormat = 'm3u8';
 * ```
 */
export type DstFormat = (typeof FORMATS)[number];

/** Seconds per HLS segment, as in FC's http-video-transcode best practice. */
export const HLS_SEGMENT_SECONDS = 10;

const H264_AAC = ['-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '128k'];

/** Output options per format, without the output file. */
const OUTPUT_OPTIONS: Record<Exclude<DstFormat, 'm3u8'>, readonly string[]> = {
  mp4: [...H264_AAC, '-movflags', '+faststart'],
  mov: [...H264_AAC, '-movflags', '+faststart'],
  mkv: H264_AAC,
  flv: H264_AAC,
  webm: ['-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '1M', '-c:a', 'libopus'],
  avi: ['-c:v', 'mpeg4', '-q:v', '5', '-c:a', 'libmp3lame', '-q:a', '4'],
  gif: ['-vf', "fps=10,scale=w='min(480,iw)':h=-1:flags=lanczos", '-an', '-loop', '0'],
  mp3: ['-vn', '-c:a', 'libmp3lame', '-q:a', '4'],
};

/**
 * Whether `value` names a supported format (case-insensitive, a leading dot allowed).
 *
 * @example
 * ```ts
 * parseFormat('.MP4'); // 'mp4'
 * parseFormat('wav'); // undefined
 * ```
 */
export function parseFormat(value: unknown): DstFormat | undefined {
  if (typeof value !== 'string') return undefined;
  const format = value.trim().toLowerCase().replace(/^\./, '');
  return (FORMATS as readonly string[]).includes(format) ? (format as DstFormat) : undefined;
}

/**
 * The ffmpeg arguments that transcode the local file `input` into `outDir/<name>.<format>`; the
 * input may reference local files only (`-protocol_whitelist file`). `m3u8` writes a VOD
 * playlist and `<name>_000.ts`, `<name>_001.ts`… segments of {@link HLS_SEGMENT_SECONDS} seconds
 * (a key frame is forced at every boundary so segments cut on time).
 *
 * @example
 * ```ts
 * spawn(ffmpegPath, ffmpegArgs({ input: '/tmp/in.mov', outDir: '/tmp/out', name: 'cat', format: 'mp4' }));
 * ```
 */
export function ffmpegArgs(options: {
  input: string;
  outDir: string;
  name: string;
  format: DstFormat;
  /** Extra input options placed before `-i` (e.g. `-re`, `-threads 1`). */
  inputArgs?: readonly string[] | undefined;
}): string[] {
  const { input, outDir, name, format } = options;
  // The input is always a local file: whatever it references (an HLS playlist posing as a video)
  // may only be local too, never a URL.
  const head = [
    ...['-hide_banner', '-nostdin', '-y', '-loglevel', 'error'],
    ...(options.inputArgs ?? []),
    ...['-protocol_whitelist', 'file', '-i', input],
  ];
  if (format === 'm3u8') {
    return [
      ...head,
      ...H264_AAC,
      '-force_key_frames',
      `expr:gte(t,n_forced*${HLS_SEGMENT_SECONDS})`,
      '-f',
      'hls',
      '-hls_time',
      String(HLS_SEGMENT_SECONDS),
      '-hls_playlist_type',
      'vod',
      '-hls_segment_filename',
      join(outDir, `${name}_%03d.ts`),
      join(outDir, `${name}.m3u8`),
    ];
  }
  return [...head, ...OUTPUT_OPTIONS[format], join(outDir, `${name}.${format}`)];
}
