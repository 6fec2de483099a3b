import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runFfmpeg } from '../src/ffmpeg.js';
import { waitFor } from './helpers.js';

/** The fields of `pid`'s /proc stat line after its name: state, parent, process group... */
const statOf = (pid: number | 'self') => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
const groupOf = (pid: number | 'self') => Number(statOf(pid)[2]);
/** Gone, or a zombie waiting for whoever reaps orphans (a container's first process may never). */
const gone = (pid: number) => {
  try {
    return statOf(pid)[0] === 'Z';
  } catch {
    return true;
  }
};

describe('runFfmpeg', () => {
  it('runs the binary in a process group of its own, out of a terminal Ctrl-C, stopped by the signal', async () => {
    const controller = new AbortController();
    let pid = 0;
    const run = runFfmpeg({
      binary: 'sleep',
      args: ['30'],
      signal: controller.signal,
      onSpawn: (p) => {
        pid = p;
      },
    });
    await waitFor(() => (pid > 0 ? pid : undefined), 'the process to start', 5000);
    expect(groupOf(pid)).toBe(pid);
    expect(groupOf(pid)).not.toBe(groupOf('self'));
    controller.abort(new Error('stopped'));
    await expect(run).rejects.toMatchObject({ code: 'TranscodeStopped' });
    expect(gone(pid)).toBe(true);
  });

  it('is killed when the process that started it exits', async () => {
    const ffmpeg = new URL('../src/ffmpeg.ts', import.meta.url).href;
    const script = `
      import { runFfmpeg } from ${JSON.stringify(ffmpeg)};
      runFfmpeg({ binary: 'sleep', args: ['30'], onSpawn: (pid) => { console.log(pid); setTimeout(() => process.exit(0), 100); } });
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    await new Promise((resolve) => child.on('exit', resolve));
    const pid = Number(out.trim());
    expect(pid).toBeGreaterThan(0);
    await waitFor(() => gone(pid), 'sleep to be killed', 5000);
  });
});
