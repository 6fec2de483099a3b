// One live event stream (/api/events) for every dashboard tab of a browser, as a SharedWorker.
// Over HTTP/1.1 a browser opens at most six connections to one host, and a stream held by each
// tab would take them all: from the sixth tab on, pages would no longer load.
// Each tab's port gets the stream's state ({ state: 'open' | 'error' }) and its events, a burst's
// together, in order ({ events: [data, ...] }): under a pulse of thousands of tasks a second, a
// message per event and tab kept every tab's thread busy.

const ports = new Set();
let source;
let state = 'connecting';
/** A stream refused (503 TooManyStreams, Retry-After: 5) is not retried by the browser: open one again after this. */
const REFUSED_RETRY_MS = 5000;

/** Events received and not yet sent to the tabs, and the timer that sends them. */
let queued = [];
let timer;
/** How long the first event of a burst waits for the next ones (about a frame; the page refreshes at most every 250 ms). */
const BATCH_MS = 16;

function send(message) {
  for (const port of ports) port.postMessage(message);
}

function flush() {
  clearTimeout(timer);
  timer = undefined;
  if (queued.length === 0) return;
  const events = queued;
  queued = [];
  send({ events });
}

/** A state goes after the events received before it. */
function sendState() {
  flush();
  send({ state });
}

function open() {
  source = new EventSource('/api/events');
  source.onopen = () => {
    state = 'open';
    sendState();
  };
  source.onerror = () => {
    state = 'error';
    sendState();
    // A network error leaves the browser reconnecting; an answer other than the stream closes it for good.
    if (source.readyState === EventSource.CLOSED) setTimeout(open, REFUSED_RETRY_MS);
  };
  source.onmessage = (message) => {
    queued.push(message.data);
    timer ??= setTimeout(flush, BATCH_MS);
  };
}

function join(port) {
  // A tab that joins gets the events from now on.
  flush();
  ports.add(port);
  port.postMessage({ state });
}

self.onconnect = (event) => {
  const port = event.ports[0];
  // A tab leaving says 'bye'; one restored from the back-forward cache says 'hello' again.
  port.onmessage = (message) => {
    if (message.data === 'bye') ports.delete(port);
    else if (message.data === 'hello') join(port);
  };
  join(port);
  if (!source) open();
};
