import { ffprobePath } from './binaries.js';
import { runFfmpeg } from './ffmpeg.js';

/**
 * What ffprobe reports about a media file (the fields this example reads).
 *
 * @example
 * ```ts
 * const p: ProbeResult = { format: { format_name: 'hls', duration: '2.0' }, streams: [{ codec_type: 'video', codec_name: 'h264' }] };
 * ```
 */
export interface ProbeResult {
  format: { format_name: string; duration?: string; tags?: Record<string, string> };
  streams: { codec_type: string; codec_name: string }[];
}

/**
 * Runs ffprobe (`ffprobePath()`) on a file. The static npm build segfaults in iconv when it finds
 * the system's gconv modules (MPEG-TS service names, so every HLS segment); `GCONV_PATH` is
 * pointed at a folder that does not exist, and ffprobe then keeps such strings as they are.
 *
 * @example
 * ```ts
 * (await probeFile('/tmp/buckets/videos/out/cat.m3u8')).format.format_name; // 'hls'
 * ```
 */
export async function probeFile(file: string, binary: string = ffprobePath()): Promise<ProbeResult> {
  const { stdout } = await runFfmpeg({
    binary,
    args: ['-v', 'error', '-of', 'json', '-show_format', '-show_streams', file],
    env: { ...process.env, GCONV_PATH: '/nonexistent/gconv' },
  });
  return JSON.parse(stdout) as ProbeResult;
}

/**
 * The codec names of one kind of stream.
 *
 * @example
 * ```ts
 * codecNames(await probeFile('out/cat.mp4'), 'video'); // ['h264']
 * ```
 */
export function codecNames(probe: ProbeResult, type: 'video' | 'audio'): string[] {
  return probe.streams.filter((s) => s.codec_type === type).map((s) => s.codec_name);
}
