// The fc-async dev dashboard: lists a function's async tasks through the emulator's FC API
// (ListAsyncTasks, GetAsyncTask, StopAsyncTask) and refreshes on the live event stream
// (/api/events, shared by all tabs through events-worker.js). No dependencies, no build step;
// every value is written with textContent.

import { clockOffset, durationText, formatTime, prettyPayload, prettyResponse, sameRun, UNDER_WAY } from './view.js';

const API = '/2023-03-30/functions';
const ACTIVE = new Set(['Enqueued', 'Dequeued', 'Running', 'Retrying']);
const $ = (id) => document.getElementById(id);

const PAGE = 50;
/** FC's longest task id; a request id, the id of a task given none, is shorter. */
const MAX_TASK_ID = 128;
/** Wait before opening the live stream again after the control plane refused it (its Retry-After: 5). */
const REFUSED_RETRY_MS = 5000;

const state = {
  fn: '',
  tasks: [],
  nextToken: undefined,
  /** Pages shown: the first plus those added with Load more, kept through live refreshes. */
  pages: 1,
  filtered: false,
  selected: undefined,
  timer: undefined,
  /** Number of the latest list load: an older one that answers late is dropped. */
  seq: 0,
  /** The load that was the newest when a refresh was last asked for (see `scheduleRefresh`). */
  wantedAt: 0,
  loading: Promise.resolve(),
  /** What showed the error: a refresh's own error goes with the next refresh, an action's stays. */
  errorFrom: undefined,
  /** The look again after a failed load (see `load`), while one is pending. */
  retry: undefined,
  /** The functions with an HTTP trigger. */
  http: new Set(),
  /** The open task's record as last shown. */
  shown: undefined,
  /** The server's clock minus the browser's (see `api`): running durations count by the server's. */
  skew: 0,
};

/**
 * One `<tr>` per task of the function shown, updated in place (a click in progress survives a
 * live refresh); keyed by function and task id, as two functions may each have a task of one id.
 */
const rows = new Map();
const rowKey = (taskId) => `${state.fn}/${taskId}`;

async function api(path, init) {
  const sentAt = Date.now();
  const res = await fetch(path, { headers: { accept: 'application/json' }, ...init });
  // The server's time, in a list's answer (ours): how far the browser's clock is off.
  const serverTime = Number(res.headers.get('x-fc-async-now'));
  if (serverTime > 0) state.skew = clockOffset(serverTime, sentAt, Date.now());
  const text = await res.text();
  const body = text ? JSON.parse(text) : {};
  if (!res.ok) {
    const message = `${body.Code ?? res.status}: ${body.Message ?? res.statusText}`;
    throw Object.assign(new Error(message), { code: body.Code });
  }
  return body;
}

function showError(error, from = 'action') {
  const el = $('error');
  el.textContent = error ? String(error.message ?? error) : '';
  el.hidden = !error;
  state.errorFrom = error ? from : undefined;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'class') node.className = value;
    else if (key.startsWith('data-') || key.startsWith('aria-')) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child ?? '');
  return node;
}

/** Attempts made: FC's `alreadyRetriedTimes` + 1 once one ran (an attempt a shutdown cut short runs again under its number). */
const attempts = (task) => (task.events.some((e) => e.status === 'Running') ? (task.alreadyRetriedTimes ?? 0) + 1 : 0);
const duration = (task) => durationText(task, Date.now() + state.skew);
/** On the browser's day: the day its user reads as today. */
const time = (ms, withDate = false) => formatTime(ms, Date.now(), withDate);

function stopButton(taskId) {
  const button = el('button', {
    type: 'button',
    class: 'stop',
    textContent: 'Stop',
    'aria-label': `Stop task ${taskId}`,
  });
  button.addEventListener('click', (event) => {
    event.stopPropagation();
    stop(taskId, button);
  });
  return button;
}

/** Sets a text only when it changed, so that the node under the pointer, or a selection in it, stays. */
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function row(task) {
  let tr = rows.get(rowKey(task.taskId));
  if (!tr) {
    tr = el(
      'tr',
      { 'data-task-id': task.taskId },
      el('td', {}, el('span', { class: 'badge status' })),
      el('td', { class: 'mono task', textContent: task.taskId, title: task.taskId }),
      el('td', { class: 'mono request' }),
      el('td', { class: 'num' }),
      el('td', { class: 'started' }),
      el('td', { class: 'num duration' }),
      el('td'),
      el('td'),
    );
    // Opened with a click, or from the keyboard: a row takes the focus and Enter or Space opens it.
    tr.tabIndex = 0;
    tr.addEventListener('click', () => select(task.taskId));
    tr.addEventListener('keydown', (event) => {
      if (event.target !== tr || (event.key !== 'Enter' && event.key !== ' ')) return;
      event.preventDefault();
      select(task.taskId);
    });
    rows.set(rowKey(task.taskId), tr);
  }
  // Every cell from the record: an id used again (a restart, another run) is another task.
  const cells = tr.cells;
  tr.dataset.status = task.status;
  tr.classList.toggle('selected', task.taskId === state.selected);
  const badge = cells[0].firstChild;
  badge.className = `badge status ${task.status}`;
  setText(badge, task.status);
  setText(cells[2], task.requestId ?? '');
  cells[2].title = task.requestId ?? '';
  setText(cells[3], String(attempts(task)));
  setText(cells[4], time(task.startedTime));
  setText(cells[5], duration(task));
  setText(cells[6], task.destinationStatus ?? '');
  const button = cells[7].firstChild;
  if (ACTIVE.has(task.status) && !button) cells[7].append(stopButton(task.taskId));
  else if (!ACTIVE.has(task.status) && button) button.remove();
  return tr;
}

/** Where the focus goes when its row leaves the list: the next row that stays, else the one before, else the list. */
function focusAfter(tr, keep) {
  for (let next = tr.nextElementSibling; next; next = next.nextElementSibling) if (keep.has(next)) return next;
  for (let prev = tr.previousElementSibling; prev; prev = prev.previousElementSibling) if (keep.has(prev)) return prev;
  return $('list');
}

function render() {
  const tbody = $('tasks');
  const keys = new Set();
  const wanted = [];
  for (const task of state.tasks) {
    // A task that moved between two pages of one load is listed once.
    if (keys.has(rowKey(task.taskId))) continue;
    keys.add(rowKey(task.taskId));
    wanted.push(row(task));
  }
  const keep = new Set(wanted);
  const active = document.activeElement;
  const focusedRow = active?.closest('#tasks > tr') ?? undefined;
  const refocus = focusedRow && !keep.has(focusedRow) ? focusAfter(focusedRow, keep) : undefined;
  // The rows that left go first: the rows that stay are then in order, and are not moved (a
  // moved element loses the focus).
  for (const tr of [...tbody.rows]) if (!keep.has(tr)) tr.remove();
  let at = tbody.firstElementChild;
  for (const tr of wanted) {
    if (tr === at) at = at.nextElementSibling;
    else tbody.insertBefore(tr, at);
  }
  for (const key of rows.keys()) if (!keys.has(key)) rows.delete(key);
  if (refocus) refocus.focus();
  else if (focusedRow && active.isConnected && document.activeElement !== active) active.focus();
  const empty = state.tasks.length === 0 && !state.filtered;
  // An event function (no HTTP trigger) cannot be sent a request: say how its tasks come.
  const http = state.http.has(state.fn);
  $('empty').hidden = !empty || !http;
  $('empty-event').hidden = !empty || http;
  $('no-match').hidden = state.tasks.length > 0 || !state.filtered;
  $('more').hidden = !state.nextToken;
}

/** The filters as they are now: a load reads them once, so that its pages are of one query. */
function filters() {
  const status = $('status').value;
  const prefix = $('prefix').value.trim();
  return { ...(status ? { status } : {}), ...(prefix ? { prefix } : {}) };
}

function query(filter, extra) {
  // returnPayload=false (the emulator's own parameter): the list shows no answers, the detail view reads them.
  return new URLSearchParams({ sortOrderByTime: 'desc', returnPayload: 'false', ...filter, ...extra });
}

/**
 * As many tasks as the pages shown, from the top, all of the query `filter` (a token is bound to
 * its query); `undefined` once a newer load started.
 */
async function listTasks(seq, filter) {
  // A prefix longer than any task id (a paste gone wrong) matches none; sent, its URL could pass
  // the server's limit on a request's head, and the list would keep the rows of the last filter.
  if (filter.prefix !== undefined && filter.prefix.length > MAX_TASK_ID) return { tasks: [], nextToken: undefined };
  const want = state.pages * PAGE;
  const fn = state.fn;
  const tasks = [];
  let nextToken;
  do {
    const extra = { limit: String(Math.min(100, want - tasks.length)), ...(nextToken ? { nextToken } : {}) };
    const page = await api(`${API}/${encodeURIComponent(fn)}/async-tasks?${query(filter, extra)}`);
    if (seq !== state.seq) return undefined;
    tasks.push(...(page.tasks ?? []));
    nextToken = page.nextToken;
  } while (nextToken && tasks.length < want);
  return { tasks, nextToken };
}

async function load(seq) {
  try {
    const filter = filters();
    const page = await listTasks(seq, filter);
    if (!page) return;
    state.tasks = page.tasks;
    state.nextToken = page.nextToken;
    state.filtered = Object.keys(filter).length > 0;
    render();
    const selected = state.selected;
    if (selected && !settledAsShown(selected)) {
      await showDetail(selected).catch((error) => {
        if (error.code !== 'AsyncTaskNotFound') throw error;
        // The selected task is gone (its retention ended, or the emulator restarted): close it.
        if (state.selected === selected) closeDetail();
      });
    }
    if (seq === state.seq && state.errorFrom === 'refresh') showError();
  } catch (error) {
    if (seq !== state.seq) return;
    // The function is gone (a restart without it): the list of functions again, and another one.
    if (error.code === 'FunctionNotFound' && (await loadFunctions().catch(() => false))) return;
    showError(error, 'refresh');
    // A store that is down (RedisUnavailable) sends no events: look again, so that the error goes
    // once it is back. One look pending at a time, however many loads failed meanwhile.
    if (state.retry === undefined) {
      state.retry = setTimeout(() => {
        state.retry = undefined;
        if (state.errorFrom === 'refresh') scheduleRefresh();
      }, 2000);
    }
  }
}

/** Loads the list (and the selected task) again; a load still under way is dropped. */
function refresh() {
  if (!state.fn) return Promise.resolve();
  state.loading = load(++state.seq);
  return state.loading;
}

/** New filters, or another function: back to the first page. */
function filtersChanged() {
  state.pages = 1;
  refresh();
}

async function loadMore() {
  const hadFocus = document.activeElement === $('more');
  state.pages += 1;
  await refresh();
  // The last page hides the button: the focus goes to the last row rather than to the page.
  if (hadFocus && $('more').hidden) $('tasks').lastElementChild?.focus();
}

/**
 * Many events arrive at once under load: refresh at most every 250 ms, and never while a load is
 * under way (a load of many pages would otherwise be dropped by the next, again and again).
 */
function scheduleRefresh() {
  // What asked for it happened while load number `state.seq` was the newest: a load begun later shows it.
  state.wantedAt = state.seq;
  if (state.timer) return;
  state.timer = setTimeout(async () => {
    // Every load begun meanwhile (a filter changed, Load more) ends and shows first, rather than
    // being dropped by this one: under a pulse, that kept a new filter from showing.
    for (let loading; loading !== state.loading; ) {
      loading = state.loading;
      await loading;
    }
    state.timer = undefined;
    if (state.wantedAt >= state.seq) refresh();
  }, 250);
}

async function stop(taskId, button) {
  // A stop cannot be undone (a long transcode is lost with it): asked first, as FC's console does.
  if (!confirm(`Stop task ${taskId}?\n\nA running attempt is aborted; the task ends Stopped and is not run again.`)) {
    return;
  }
  const hadFocus = button !== undefined && document.activeElement === button;
  if (button) button.disabled = true;
  showError();
  try {
    await api(`${API}/${encodeURIComponent(state.fn)}/async-tasks/${encodeURIComponent(taskId)}/stop`, {
      method: 'PUT',
    });
  } catch (error) {
    // FC's answer (the task already ended, say) stays on screen through live refreshes.
    showError(error);
    if (button) button.disabled = false;
  }
  await refresh();
  // The button goes with the task's end: the focus goes to its row (or stays in the open task).
  if (hadFocus && !button.isConnected) rows.get(rowKey(taskId))?.focus();
  else if (hadFocus && button.hidden) $('detail-title').focus();
}

/**
 * Whether the open task ended and the list shows it as it was shown: a finished task changes no
 * more, so a live refresh does not download it again (its answer may be megabytes, fetched on
 * every event of a burst). One the list no longer shows is looked up (it may be gone).
 */
function settledAsShown(taskId) {
  const shown = state.shown;
  if (shown?.taskId !== taskId || UNDER_WAY.has(shown.status)) return false;
  const row = state.tasks.find((t) => t.taskId === taskId);
  // Another run of the id (the emulator restarted, the id was used again) is another task.
  return (
    row !== undefined &&
    sameRun(row, shown) &&
    row.status === shown.status &&
    row.destinationStatus === shown.destinationStatus
  );
}

async function showDetail(taskId) {
  const fn = state.fn;
  const task = await api(`${API}/${encodeURIComponent(fn)}/async-tasks/${encodeURIComponent(taskId)}`);
  // Another task was selected (or the detail closed, or another function shown) while this one loaded.
  if (taskId !== state.selected || fn !== state.fn) return;
  state.shown = task;
  $('detail').hidden = false;
  setText($('detail-title'), task.taskId);
  const stopButton = $('detail-stop');
  stopButton.hidden = !ACTIVE.has(task.status);
  stopButton.disabled = false;
  stopButton.setAttribute('aria-label', `Stop task ${task.taskId}`);
  stopButton.onclick = () => stop(task.taskId, stopButton);
  const fields = [
    ['Status', el('span', { class: `badge ${task.status}`, textContent: task.status })],
    ['Request id', task.requestId],
    ['Function', task.functionArn],
    ['Attempts', String(attempts(task))],
    ['Started', time(task.startedTime, true)],
    ['Duration', duration(task), 'detail-duration'],
    ['Destination', task.destinationStatus ?? ''],
    ['Error', task.taskErrorMessage ?? ''],
    ['Trace id', task.traceId ?? '(tracing off)'],
  ];
  $('detail-fields').replaceChildren(
    ...fields.flatMap(([k, v, id]) => [
      el('dt', { textContent: k }),
      el('dd', { class: 'mono', ...(id ? { id } : {}) }, v),
    ]),
  );
  $('detail-events').replaceChildren(
    ...task.events.map((e) =>
      el(
        'li',
        { 'data-status': e.status },
        el('time', { textContent: time(e.timestamp) }),
        el('span', { class: `badge ${e.status}`, textContent: e.status }),
        e.eventDetail ? ` ${e.eventDetail}` : '',
      ),
    ),
  );
  // Unchanged texts stay as they are, so that a selection in them survives live refreshes.
  // An event function's payload is its event, whatever its fields (a `method` one too).
  setText($('detail-request'), prettyPayload(task.taskPayload, state.http.has(fn)));
  setText($('detail-response'), prettyResponse(task.returnPayload));
}

async function select(taskId) {
  state.selected = taskId;
  render();
  try {
    await showDetail(taskId);
    // Into the open task, so that a keyboard or screen reader user is where it shows.
    if (taskId === state.selected) $('detail-title').focus();
  } catch (error) {
    showError(error);
  }
}

function closeDetail() {
  const was = state.selected;
  state.selected = undefined;
  state.shown = undefined;
  $('detail').hidden = true;
  render();
  // Back to the row it was opened from.
  if (was !== undefined) rows.get(rowKey(was))?.focus();
}

/** The live stream's state in the header: 'open' (and a refresh, as events may have been missed) or 'error'. */
function streamState(live, value) {
  if (value === 'open') {
    live.textContent = 'live';
    live.className = 'live on';
    // (Re)connected, maybe to an emulator restarted with other functions (--watch): read them again.
    loadFunctions()
      .catch((error) => showError(error, 'refresh'))
      .finally(scheduleRefresh);
  } else if (value === 'error') {
    live.textContent = 'reconnecting…';
    live.className = 'live off';
  }
}

/** Events of the stream (each one's data), in order: the list is loaded again when one is of the function shown. */
function streamEvents(events) {
  for (const data of events) {
    if (JSON.parse(data).function === state.fn) {
      scheduleRefresh();
      return;
    }
  }
}

/**
 * Follows the live stream through one SharedWorker for all tabs (see events-worker.js), or with
 * a stream of its own where the browser has no SharedWorker.
 */
function connect() {
  const live = $('live');
  if (typeof SharedWorker === 'function') {
    const worker = new SharedWorker('/assets/events-worker.js', { name: 'fc-async-events' });
    worker.port.onmessage = (message) => {
      if (message.data.state) streamState(live, message.data.state);
      else if (message.data.events) streamEvents(message.data.events);
      // A worker started by a page of an earlier version, still serving a tab of it: one event a message.
      else streamEvents([message.data.data]);
    };
    addEventListener('pagehide', () => worker.port.postMessage('bye'));
    addEventListener('pageshow', (event) => {
      if (event.persisted) worker.port.postMessage('hello');
    });
    return;
  }
  const follow = () => {
    const source = new EventSource('/api/events');
    source.onopen = () => streamState(live, 'open');
    source.onerror = () => {
      streamState(live, 'error');
      // Refused (503 TooManyStreams): the browser gives the stream up, so open one again later.
      if (source.readyState === EventSource.CLOSED) setTimeout(follow, REFUSED_RETRY_MS);
    };
    source.onmessage = (message) => streamEvents([message.data]);
  };
  follow();
}

/** Shows `fn`'s tasks from the first page, the open task closed. */
function showFunction(fn) {
  state.fn = fn;
  state.selected = undefined;
  state.shown = undefined;
  $('detail').hidden = true;
  filtersChanged();
}

/**
 * Reads the functions served (again: a restart with --watch may have renamed one) into the
 * picker. When the function shown is gone, shows another, says so, and answers `true`.
 */
async function loadFunctions() {
  const { functions } = await api('/api/functions');
  state.http = new Set(functions.filter((f) => f.http).map((f) => f.name));
  const select = $('function');
  const options = functions.map((f) => [f.name, f.http ? `${f.name} (HTTP)` : f.name]);
  const same =
    select.options.length === options.length &&
    options.every(([value, text], i) => select.options[i].value === value && select.options[i].textContent === text);
  // Unchanged, the picker is left alone (it may be open).
  if (!same) select.replaceChildren(...options.map(([value, textContent]) => el('option', { value, textContent })));
  if (functions.some((f) => f.name === state.fn)) {
    select.value = state.fn;
    return false;
  }
  const gone = state.fn;
  const fn = (functions.find((f) => f.http) ?? functions[0])?.name ?? '';
  select.value = fn;
  if (gone)
    showNote(`Function ${gone} is no longer served (the emulator restarted without it): showing ${fn || 'none'}.`);
  showFunction(fn);
  return true;
}

function showNote(text) {
  $('note').textContent = text;
  $('note').hidden = !text;
}

/** Durations of tasks under way keep counting between events, in the list and the open task. */
function tick() {
  for (const task of state.tasks) {
    if (!UNDER_WAY.has(task.status)) continue;
    const cell = rows.get(rowKey(task.taskId))?.cells[5];
    if (cell) setText(cell, duration(task));
  }
  const shown = state.shown;
  if (shown && !$('detail').hidden && UNDER_WAY.has(shown.status)) setText($('detail-duration'), duration(shown));
}

async function start() {
  const select = $('function');
  select.addEventListener('change', () => {
    showNote('');
    showFunction(select.value);
  });
  $('status').addEventListener('change', filtersChanged);
  $('prefix').addEventListener('input', () => {
    state.pages = 1;
    scheduleRefresh();
  });
  $('more').addEventListener('click', loadMore);
  $('detail-close').addEventListener('click', closeDetail);
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && !$('detail').hidden) closeDetail();
  });
  $('error').addEventListener('click', () => showError());
  await loadFunctions();
  await state.loading;
  connect();
  setInterval(tick, 1000);
}

start().catch(showError);
