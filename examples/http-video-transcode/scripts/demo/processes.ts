import { readdir, readFile } from 'node:fs/promises';

/**
 * The pids of ffmpeg processes whose command line mentions `fragment` (an output file name), read
 * from /proc. `undefined` where there is no /proc (macOS, Windows).
 *
 * @example
 * ```ts
 * await ffmpegProcesses('long.webm'); // [] once the stopped task's ffmpeg is gone
 * ```
 */
export async function ffmpegProcesses(fragment: string): Promise<number[] | undefined> {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return undefined;
  }
  const pids: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const args = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (args[0]?.endsWith('ffmpeg') && args.some((arg) => arg.includes(fragment))) pids.push(Number(entry));
  }
  return pids;
}
