import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { freePort } from './http-load.js';

/**
 * The dashboard during a pulse of async requests (not part of `npm run bench`: it needs Chromium).
 *
 *   npx tsx bench/src/dashboard-load.ts [--cli label=path/to/dist/cli.js]... [--runs 3]
 *     [--apps work,slow] [--tabs 0,1,3,s8] [--requests 20000] [--ms 5000]
 *
 * Each run starts `fc-async dev` (each `--cli` given, the built one of @fc-async/local by default)
 * serving bench/src/dashboard-load-app.ts, opens `tabs` dashboard tabs in one headless Chromium
 * (they share one event stream through the page's SharedWorker; `sN`: N raw readers of the
 * stream and no browser, the hub's own cost), and sends async POSTs over 16
 * keep-alive loopback connections as fast as they go, until `requests` answers or `ms`. Per run:
 * 202s a second, the emulator's CPU per 202, the browser's CPU, the tabs' long tasks, how often a
 * tab lost its stream ("reconnecting…") and reloaded, how long a change of the status filter
 * took to show (to Failed: no task matches; back to all), and whether, after the load, each tab
 * shows what ListAsyncTasks answers (and how long after the load's end it did). Runs alternate
 * the builds given; the summary gives medians and ranges.
 *
 * The filter is changed in the first tab, brought to the front first, as a tab a user clicks in
 * is: headless Chromium gives a page behind others its frames 300-900 ms late, though it says it is
 * visible (an idle static page too; the front one gets them in 1-16 ms). The filter's time is
 * until the page's DOM shows it, polled every 5 ms from the change, and then until the next frame
 * (`frame`). For a closer look: DASHLOAD_PROF=dir (the emulator's CPU profile),
 * DASHLOAD_TABPROF=file (the first tab's, during the load), DASHLOAD_PROCS=1 (the browser's CPU per
 * process), DASHLOAD_FETCH=1 (the filter's list request: queued in the browser, and answered),
 * DASHLOAD_TRACE=1 (the first tab's list requests and list changes around each filter change).
 */

const CONNECTIONS = 16;
const require = createRequire(import.meta.url);
const APP = join(dirname(fileURLToPath(import.meta.url)), 'dashboard-load-app.ts');
const BODY = '{"job":"pulse"}';

function args() {
  const argv = process.argv.slice(2);
  const get = (name: string) => argv.flatMap((a, i) => (a === `--${name}` ? [argv[i + 1] ?? ''] : []));
  const clis = get('cli').map((spec) => {
    const at = spec.indexOf('=');
    return at > 0 ? { label: spec.slice(0, at), path: spec.slice(at + 1) } : { label: spec, path: spec };
  });
  if (clis.length === 0)
    clis.push({ label: 'built', path: join(dirname(require.resolve('@fc-async/local/package.json')), 'dist/cli.js') });
  const list = (name: string, fallback: string) => (get(name)[0] ?? fallback).split(',');
  return {
    clis,
    runs: Number(get('runs')[0] ?? 3),
    apps: list('apps', 'work,slow'),
    tabs: list('tabs', '0,1,3'),
    requests: Math.min(30_000, Number(get('requests')[0] ?? 20_000)),
    ms: Number(get('ms')[0] ?? 5000),
  };
}

/** User plus system CPU of one process so far, ms (Linux /proc; 0 when it is gone). */
function cpuOf(pid: number | string | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

/** CPU of every process whose command line holds `marker` (the browser's user data dir), ms. */
function cpuOfAll(marker: string): number {
  let sum = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker)) sum += cpuOf(pid);
    } catch {
      // gone meanwhile
    }
  }
  return sum;
}

/** Each browser process's CPU so far and its kind (`--type`), for a look at where the browser's CPU goes. */
function processes(marker: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes(marker)) continue;
      const type = /--type=([a-z-]+)/.exec(cmd)?.[1] ?? 'browser';
      const sub = /--utility-sub-type=([\w.]+)/.exec(cmd)?.[1] ?? '';
      out.push(`${pid} ${type} ${sub} ${cpuOf(pid)} ms`);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Async POSTs over `CONNECTIONS` keep-alive connections until `max` answers or `ms`. */
async function pulse(port: number, path: string, max: number, ms: number) {
  const request = Buffer.from(
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Fc-Invocation-Type: Async\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`,
  );
  const byStatus: Record<number, number> = {};
  let sent = 0;
  let answered = 0;
  const start = performance.now();
  const end = start + ms;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      socket.setNoDelay(true);
      let buffer: Buffer = Buffer.alloc(0);
      const next = () => {
        if (sent >= max || performance.now() >= end) socket.end();
        else {
          sent++;
          socket.write(request);
        }
      };
      socket.on('connect', next);
      socket.on('data', (chunk: Buffer) => {
        buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
        for (;;) {
          const headEnd = buffer.indexOf('\r\n\r\n');
          if (headEnd < 0) return;
          const head = buffer.toString('latin1', 0, headEnd);
          const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
          if (buffer.length < headEnd + 4 + length) return;
          buffer = buffer.subarray(headEnd + 4 + length);
          const status = Number(head.slice(9, 12));
          byStatus[status] = (byStatus[status] ?? 0) + 1;
          answered++;
          next();
        }
      });
      socket.on('error', reject);
      socket.on('close', () => resolve());
    });
  await Promise.all(Array.from({ length: CONNECTIONS }, one));
  return { byStatus, answered, ms: performance.now() - start };
}

async function waitFor(what: string, probe: () => Promise<boolean>, ms: number) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

// Page scripts as text: tsx's transform would name their inner functions with a helper the page lacks.
/** In each tab before its scripts: long tasks, and each time the header says the stream is lost. */
const INIT = `{
  const stats = { longTasks: 0, longMs: 0, maxLongMs: 0, reconnecting: 0 };
  window.__load = stats;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      stats.longTasks++;
      stats.longMs += entry.duration;
      stats.maxLongMs = Math.max(stats.maxLongMs, entry.duration);
    }
  }).observe({ type: 'longtask' });
  document.addEventListener('DOMContentLoaded', () => {
    const live = document.getElementById('live');
    new MutationObserver(() => {
      if (live.textContent === 'reconnecting…') stats.reconnecting++;
    }).observe(live, { childList: true, characterData: true, subtree: true });
  });
}`;

/** With DASHLOAD_TRACE, in each tab: each list request's start, answer and body, and each change of the list, by time. */
const TRACE = `{
  const trace = [];
  window.__trace = trace;
  const fetchOf = window.fetch;
  window.fetch = async (url, init) => {
    const u = new URL(String(url), location.href);
    const what = u.pathname.endsWith('/async-tasks') ? 'list ' + (u.searchParams.get('status') ?? 'all') : u.pathname;
    trace.push([performance.now(), 'sent', what]);
    const res = await fetchOf(url, init);
    trace.push([performance.now(), 'answered', what]);
    const text = res.text.bind(res);
    res.text = async () => {
      const body = await text();
      trace.push([performance.now(), 'read', what]);
      return body;
    };
    return res;
  };
  document.addEventListener('DOMContentLoaded', () => {
    const rows = () => document.querySelectorAll('#tasks > tr').length;
    const noMatch = document.getElementById('no-match');
    new MutationObserver(() => trace.push([performance.now(), 'rows ' + rows()])).observe(document.getElementById('tasks'), { childList: true });
    new MutationObserver(() => trace.push([performance.now(), noMatch.hidden ? 'no-match hidden' : 'no-match shown'])).observe(noMatch, { attributes: true });
  });
}`;

/** The trace (see TRACE) from 500 ms before the last filter change on, in ms from it. */
const TRACE_SINCE_CHANGE =
  'JSON.stringify(window.__trace.filter((e) => e[0] > window.__t0 - 500).map((e) => [Math.round(e[0] - window.__t0), ...e.slice(1)]))';

/**
 * Sets the status filter and answers the ms until the list shows it (Failed: none match; '': rows)
 * and until the next frame after that.
 */
const filter = (status: string) => `new Promise((resolve) => {
  const status = ${JSON.stringify(status)};
  const select = document.getElementById('status');
  const t0 = performance.now();
  window.__t0 = t0;
  select.value = status;
  select.dispatchEvent(new Event('change'));
  const noMatch = document.getElementById('no-match');
  const check = () => {
    const rows = document.querySelectorAll('#tasks > tr').length;
    const shown = status === 'Failed' ? rows === 0 && !noMatch.hidden : rows > 0;
    if (shown || performance.now() - t0 > 30000) {
      const dom = shown ? performance.now() - t0 : NaN;
      // The list request's own times: before it was sent (queued in the browser) and until its answer.
      const fetches = performance.getEntriesByType('resource').filter((e) => e.startTime >= t0 && e.name.includes('/async-tasks?'));
      const first = fetches[0];
      window.__filterFetch = first ? { queued: first.requestStart - first.startTime, answered: first.responseEnd - first.requestStart } : undefined;
      requestAnimationFrame(() => resolve({ dom, frame: shown ? performance.now() - t0 : NaN }));
    }
    else setTimeout(check, 5);
  };
  check();
})`;

const SHOWN_ROWS =
  "[...document.querySelectorAll('#tasks > tr')].map((tr) => tr.dataset.taskId + ':' + tr.dataset.status)";

interface RunResult {
  perSec: number;
  /** Answers of any status a second (past the queue's bound, 429s come fast). */
  answeredPerSec: number;
  other: Record<number, number>;
  cpuUsPer202: number;
  browserCpuMs: number;
  browserUsPer202: number;
  longTasks: number;
  longMs: number;
  maxLongMs: number;
  reconnects: number;
  reloads: number;
  /** ms until the DOM showed the filter to Failed, and until the next frame after that. */
  filterMs: number;
  filterFrameMs: number;
  /** The same for the filter back to all statuses. */
  allMs: number;
  allFrameMs: number;
  /** ms after the load's end until every tab showed what ListAsyncTasks answers; NaN: never within 20 s. */
  matchMs: number;
}

/** `n` raw readers of /api/events (no browser): each one's bytes read, and whether it was cut. */
function rawStreams(port: number, n: number) {
  const streams = Array.from({ length: n }, () => {
    const stream = { bytes: 0, cut: false, socket: connect(port, '127.0.0.1') };
    stream.socket.write(`GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    stream.socket.on('data', (chunk: Buffer) => {
      stream.bytes += chunk.length;
    });
    stream.socket.on('close', () => {
      stream.cut = true;
    });
    stream.socket.on('error', () => {});
    return stream;
  });
  return {
    cuts: () => streams.filter((s) => s.cut).length,
    close: () => {
      for (const s of streams) s.socket.destroy();
    },
  };
}

async function run(cli: string, app: string, viewers: string, requests: number, ms: number): Promise<RunResult> {
  // "3": three tabs of one browser; "s8": eight raw stream readers, no browser.
  const tabs = viewers.startsWith('s') ? 0 : Number(viewers);
  const streamCount = viewers.startsWith('s') ? Number(viewers.slice(1)) : 0;
  const port = await freePort();
  const controlPort = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...(process.env.DASHLOAD_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.DASHLOAD_PROF] : []),
      cli,
      'dev',
      APP,
      '--name',
      'load',
      '--port',
      String(port),
      '--control-port',
      String(controlPort),
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const control = `http://127.0.0.1:${controlPort}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'fc-async-dashload-'));
  let context: BrowserContext | undefined;
  let cleanupRaw = () => {};
  try {
    await waitFor('the emulator', async () => (await fetch(`http://127.0.0.1:${port}/health`)).ok, 30_000);
    const pages: Page[] = [];
    const functionLoads: number[] = [];
    if (tabs > 0) {
      context = await chromium.launchPersistentContext(dataDir, {
        executablePath: '/usr/bin/chromium',
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
        viewport: { width: 1400, height: 800 },
      });
      await context.addInitScript({ content: INIT });
      if (process.env.DASHLOAD_TRACE) await context.addInitScript({ content: TRACE });
      for (let i = 0; i < tabs; i++) {
        const page = i === 0 ? (context.pages()[0] ?? (await context.newPage())) : await context.newPage();
        functionLoads.push(0);
        page.on('request', (r) => {
          if (r.url().endsWith('/api/functions')) functionLoads[i] = (functionLoads[i] ?? 0) + 1;
        });
        await page.goto(`${control}/`);
        await page.locator('#live', { hasText: /^live$/ }).waitFor({ timeout: 20_000 });
        pages.push(page);
      }
    }
    const raw = rawStreams(controlPort, streamCount);
    cleanupRaw = raw.close;
    await new Promise((r) => setTimeout(r, streamCount > 0 ? 200 : 0));
    const baseLoads = [...functionLoads];
    const cpu0 = cpuOf(child.pid);
    const browser0 = tabs > 0 ? cpuOfAll(dataDir) : 0;
    // DASHLOAD_TABPROF=file.cpuprofile: a CPU profile of the first tab's main thread during the load.
    const cdp = process.env.DASHLOAD_TABPROF && pages[0] ? await context?.newCDPSession(pages[0]) : undefined;
    if (cdp) {
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.start');
    }
    const load = pulse(port, app === 'slow' ? '/slow' : '/work', requests, ms);
    let failed = { dom: Number.NaN, frame: Number.NaN };
    let all = { dom: Number.NaN, frame: Number.NaN };
    const first = pages[0];
    if (first) {
      await new Promise((r) => setTimeout(r, Math.min(1500, ms / 3)));
      // The tab clicked in is the front one (see the header).
      await first.bringToFront();
      for (const status of ['Failed', '']) {
        const took = await first.evaluate<{ dom: number; frame: number }>(filter(status));
        if (status) failed = took;
        else all = took;
        if (process.env.DASHLOAD_FETCH)
          console.log(`filter list request (${status || 'all'})`, await first.evaluate('window.__filterFetch'));
        if (process.env.DASHLOAD_TRACE)
          console.log(`trace (${status || 'all'})`, await first.evaluate(TRACE_SINCE_CHANGE));
      }
    }
    const result = await load;
    if (cdp && process.env.DASHLOAD_TABPROF) {
      const { profile } = await cdp.send('Profiler.stop');
      writeFileSync(process.env.DASHLOAD_TABPROF, JSON.stringify(profile));
    }
    const cpuMs = cpuOf(child.pid) - cpu0;
    const browserCpuMs = tabs > 0 ? cpuOfAll(dataDir) - browser0 : 0;
    if (process.env.DASHLOAD_PROCS) console.log(processes(dataDir).join('\n'));
    const loadEnd = Date.now();
    let matchMs = Number.NaN;
    if (pages.length > 0) {
      const url = `${control}/2023-03-30/functions/load/async-tasks?sortOrderByTime=desc&limit=50&returnPayload=false`;
      const deadline = loadEnd + 20_000;
      while (Date.now() < deadline) {
        const listed = ((await (await fetch(url)).json()) as { tasks: { taskId: string; status: string }[] }).tasks;
        const want = JSON.stringify(listed.map((t) => `${t.taskId}:${t.status}`));
        const shown = await Promise.all(pages.map((p) => p.evaluate<string[]>(SHOWN_ROWS)));
        if (shown.every((s) => JSON.stringify(s) === want)) {
          matchMs = Date.now() - loadEnd;
          break;
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const stats = await Promise.all(
      pages.map((p) =>
        p.evaluate<{ longTasks: number; longMs: number; maxLongMs: number; reconnecting: number }>('window.__load'),
      ),
    );
    const accepted = result.byStatus[202] ?? 0;
    const other = Object.fromEntries(Object.entries(result.byStatus).filter(([s]) => s !== '202'));
    return {
      perSec: accepted / (result.ms / 1000),
      answeredPerSec: result.answered / (result.ms / 1000),
      other,
      cpuUsPer202: (cpuMs * 1000) / Math.max(1, accepted),
      browserCpuMs,
      browserUsPer202: (browserCpuMs * 1000) / Math.max(1, accepted),
      longTasks: stats.reduce((s, x) => s + x.longTasks, 0),
      longMs: stats.reduce((s, x) => s + x.longMs, 0),
      maxLongMs: Math.max(0, ...stats.map((x) => x.maxLongMs)),
      reconnects: stats.reduce((s, x) => s + x.reconnecting, 0) + raw.cuts(),
      reloads: functionLoads.reduce((s, n, i) => s + n - (baseLoads[i] ?? 0), 0),
      filterMs: failed.dom,
      filterFrameMs: failed.frame,
      allMs: all.dom,
      allFrameMs: all.frame,
      matchMs,
    };
  } finally {
    cleanupRaw();
    await context?.close().catch(() => {});
    if (process.env.DASHLOAD_PROF) {
      // A profile is written on a clean exit only.
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    } else child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
const fmt = (xs: number[], digits = 0) => {
  const ok = xs.filter((x) => !Number.isNaN(x));
  const nan = xs.length - ok.length;
  if (ok.length === 0) return 'n/a';
  const range = `${Math.min(...ok).toFixed(digits)}–${Math.max(...ok).toFixed(digits)}`;
  return `${median(ok).toFixed(digits)} (${range})${nan ? ` +${nan}×none` : ''}`;
};

async function main() {
  const opts = args();
  const results = new Map<string, RunResult[]>();
  for (let r = 0; r < opts.runs; r++) {
    for (const app of opts.apps) {
      for (const tabs of opts.tabs) {
        const order = r % 2 === 0 ? opts.clis : [...opts.clis].reverse();
        for (const cli of order) {
          const key = `${app} tabs=${tabs} ${cli.label}`;
          const res = await run(cli.path, app, tabs, opts.requests, opts.ms);
          results.set(key, [...(results.get(key) ?? []), res]);
          console.log(
            `run ${r + 1} ${key}: ${JSON.stringify(res, (_k, v) => (typeof v === 'number' ? Math.round(v * 10) / 10 : v))}`,
          );
        }
      }
    }
  }
  console.log('\nmedian (min–max) over runs');
  for (const [key, rs] of results) {
    const col = (f: (x: RunResult) => number, d = 0) => fmt(rs.map(f), d);
    console.log(
      `${key.padEnd(22)} 202/s ${col((x) => x.perSec)} (answers/s ${col((x) => x.answeredPerSec)}) | CPU µs/202 ${col((x) => x.cpuUsPer202, 1)} | browser CPU ms ${col((x) => x.browserCpuMs)} (µs/202 ${col((x) => x.browserUsPer202)}) | long tasks ${col((x) => x.longTasks)} (${col((x) => x.longMs)} ms, max ${col((x) => x.maxLongMs)}) | reconnects ${col((x) => x.reconnects)} reloads ${col((x) => x.reloads)} | filter→Failed ${col((x) => x.filterMs)} ms (frame ${col((x) => x.filterFrameMs)}), →all ${col((x) => x.allMs)} ms (frame ${col((x) => x.allFrameMs)}) | matches ListAsyncTasks after ${col((x) => x.matchMs)} ms | other statuses ${JSON.stringify(rs.map((x) => x.other))}`,
    );
  }
}

await main();
