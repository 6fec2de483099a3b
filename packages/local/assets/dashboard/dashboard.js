// The fc-async dev dashboard: lists a function's async tasks through the emulator's FC API
// (ListAsyncTasks, GetAsyncTask, StopAsyncTask) and refreshes on the live event stream
// (/api/events). No dependencies, no build step; every value is written with textContent.

const API = '/2023-03-30/functions';
const ACTIVE = new Set(['Enqueued', 'Dequeued', 'Running', 'Retrying']);
const $ = (id) => document.getElementById(id);

const state = { fn: '', tasks: [], nextToken: undefined, selected: undefined, timer: undefined };

async function api(path, init) {
  const res = await fetch(path, { headers: { accept: 'application/json' }, ...init });
  const text = await res.text();
  const body = text ? JSON.parse(text) : {};
  if (!res.ok) throw new Error(`${body.Code ?? res.status}: ${body.Message ?? res.statusText}`);
  return body;
}

function showError(error) {
  const el = $('error');
  el.textContent = error ? String(error.message ?? error) : '';
  el.hidden = !error;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'class') node.className = value;
    else if (key.startsWith('data-')) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child ?? '');
  return node;
}

const time = (ms) => (ms ? new Date(ms).toLocaleTimeString([], { hour12: false }) : '');
const attempts = (task) => task.events.filter((e) => e.status === 'Running').length;

function duration(task) {
  if (task.durationMs !== undefined) return `${task.durationMs} ms`;
  if (task.startedTime && ACTIVE.has(task.status)) return `${Date.now() - task.startedTime} ms…`;
  return '';
}

function stopButton(task) {
  const button = el('button', { type: 'button', class: 'stop', textContent: 'Stop' });
  button.addEventListener('click', (event) => {
    event.stopPropagation();
    stop(task.taskId, button);
  });
  return button;
}

function row(task) {
  const tr = el(
    'tr',
    { 'data-task-id': task.taskId, 'data-status': task.status },
    el('td', {}, el('span', { class: `badge status ${task.status}`, textContent: task.status })),
    el('td', { class: 'mono', textContent: task.taskId }),
    el('td', { class: 'mono request', textContent: task.requestId, title: task.requestId }),
    el('td', { class: 'num', textContent: String(attempts(task)) }),
    el('td', { textContent: time(task.startedTime) }),
    el('td', { class: 'num duration', textContent: duration(task) }),
    el('td', { textContent: task.destinationStatus ?? '' }),
    el('td', {}, ACTIVE.has(task.status) ? stopButton(task) : ''),
  );
  if (task.taskId === state.selected) tr.classList.add('selected');
  tr.addEventListener('click', () => select(task.taskId));
  return tr;
}

function render() {
  $('tasks').replaceChildren(...state.tasks.map(row));
  $('empty').hidden = state.tasks.length > 0;
  $('more').hidden = !state.nextToken;
}

function query(extra = {}) {
  const params = new URLSearchParams({ limit: '50', sortOrderByTime: 'desc', ...extra });
  const status = $('status').value;
  const prefix = $('prefix').value.trim();
  if (status) params.set('status', status);
  if (prefix) params.set('prefix', prefix);
  return params;
}

async function refresh() {
  if (!state.fn) return;
  try {
    const page = await api(`${API}/${encodeURIComponent(state.fn)}/async-tasks?${query()}`);
    state.tasks = page.tasks ?? [];
    state.nextToken = page.nextToken;
    render();
    if (state.selected) await showDetail(state.selected);
    showError();
  } catch (error) {
    showError(error);
  }
}

async function loadMore() {
  try {
    const page = await api(
      `${API}/${encodeURIComponent(state.fn)}/async-tasks?${query({ nextToken: state.nextToken })}`,
    );
    state.tasks.push(...(page.tasks ?? []));
    state.nextToken = page.nextToken;
    render();
  } catch (error) {
    showError(error);
  }
}

/** Many events arrive at once under load: refresh at most every 250 ms. */
function scheduleRefresh() {
  if (state.timer) return;
  state.timer = setTimeout(() => {
    state.timer = undefined;
    refresh();
  }, 250);
}

async function stop(taskId, button) {
  if (button) button.disabled = true;
  try {
    await api(`${API}/${encodeURIComponent(state.fn)}/async-tasks/${encodeURIComponent(taskId)}/stop`, {
      method: 'PUT',
    });
    await refresh();
  } catch (error) {
    showError(error);
    if (button) button.disabled = false;
  }
}

function prettyRequest(payload) {
  if (!payload) return '';
  try {
    const req = JSON.parse(payload);
    const headers = Object.entries(req.headers ?? {}).map(([k, v]) => `${k}: ${v}`);
    let body = req.body ?? '';
    if (!req.isBase64Encoded) {
      try {
        body = JSON.stringify(JSON.parse(body), null, 2);
      } catch {
        // not JSON: shown as is
      }
    } else if (body) {
      body = `(base64) ${body}`;
    }
    return [`${req.method} ${req.url}`, ...headers, '', body].join('\n');
  } catch {
    return payload;
  }
}

function pretty(text) {
  if (!text) return '(none)';
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

async function showDetail(taskId) {
  const task = await api(`${API}/${encodeURIComponent(state.fn)}/async-tasks/${encodeURIComponent(taskId)}`);
  $('detail').hidden = false;
  $('detail-title').textContent = task.taskId;
  const stopButton = $('detail-stop');
  stopButton.hidden = !ACTIVE.has(task.status);
  stopButton.disabled = false;
  stopButton.onclick = () => stop(task.taskId, stopButton);
  const fields = [
    ['Status', el('span', { class: `badge ${task.status}`, textContent: task.status })],
    ['Request id', task.requestId],
    ['Function', task.functionArn],
    ['Attempts', String(attempts(task))],
    ['Started', task.startedTime ? new Date(task.startedTime).toLocaleString() : ''],
    ['Duration', duration(task)],
    ['Destination', task.destinationStatus ?? ''],
    ['Error', task.taskErrorMessage ?? ''],
    ['Trace id', task.traceId ?? '(tracing off)'],
  ];
  $('detail-fields').replaceChildren(
    ...fields.flatMap(([k, v]) => [el('dt', { textContent: k }), el('dd', { class: 'mono' }, v)]),
  );
  $('detail-events').replaceChildren(
    ...task.events.map((e) =>
      el(
        'li',
        { 'data-status': e.status },
        el('time', { textContent: new Date(e.timestamp).toLocaleTimeString([], { hour12: false }) }),
        el('span', { class: `badge ${e.status}`, textContent: e.status }),
        e.eventDetail ? ` ${e.eventDetail}` : '',
      ),
    ),
  );
  $('detail-request').textContent = prettyRequest(task.taskPayload);
  $('detail-response').textContent = pretty(task.returnPayload);
}

async function select(taskId) {
  state.selected = taskId;
  render();
  try {
    await showDetail(taskId);
  } catch (error) {
    showError(error);
  }
}

function connect() {
  const live = $('live');
  const source = new EventSource('/api/events');
  source.onopen = () => {
    live.textContent = 'live';
    live.className = 'live on';
    scheduleRefresh();
  };
  source.onerror = () => {
    live.textContent = 'reconnecting…';
    live.className = 'live off';
  };
  source.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.function === state.fn) scheduleRefresh();
  };
}

async function start() {
  const { functions } = await api('/api/functions');
  const select = $('function');
  for (const f of functions)
    select.append(el('option', { value: f.name, textContent: f.http ? `${f.name} (HTTP)` : f.name }));
  state.fn = (functions.find((f) => f.http) ?? functions[0])?.name ?? '';
  select.value = state.fn;
  select.addEventListener('change', () => {
    state.fn = select.value;
    state.selected = undefined;
    $('detail').hidden = true;
    refresh();
  });
  $('status').addEventListener('change', refresh);
  $('prefix').addEventListener('input', scheduleRefresh);
  $('more').addEventListener('click', loadMore);
  $('detail-close').addEventListener('click', () => {
    state.selected = undefined;
    $('detail').hidden = true;
    render();
  });
  await refresh();
  connect();
  // Durations of running tasks keep counting between events (cells updated in place).
  setInterval(() => {
    for (const task of state.tasks) {
      if (!ACTIVE.has(task.status)) continue;
      const cell = document.querySelector(`tr[data-task-id="${CSS.escape(task.taskId)}"] .duration`);
      if (cell) cell.textContent = duration(task);
    }
  }, 1000);
}

start().catch(showError);
