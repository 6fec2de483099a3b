// One live event stream (/api/events) for every dashboard tab of a browser, as a SharedWorker.
// Over HTTP/1.1 a browser opens at most six connections to one host, and a stream held by each
// tab would take them all: from the sixth tab on, pages would no longer load.
// Each tab's port gets the stream's state ({ state: 'open' | 'error' }) and its events ({ data }).

const ports = new Set();
let source;
let state = 'connecting';
/** A stream refused (503 TooManyStreams, Retry-After: 5) is not retried by the browser: open one again after this. */
const REFUSED_RETRY_MS = 5000;

function send(message) {
  for (const port of ports) port.postMessage(message);
}

function open() {
  source = new EventSource('/api/events');
  source.onopen = () => {
    state = 'open';
    send({ state });
  };
  source.onerror = () => {
    state = 'error';
    send({ state });
    // A network error leaves the browser reconnecting; an answer other than the stream closes it for good.
    if (source.readyState === EventSource.CLOSED) setTimeout(open, REFUSED_RETRY_MS);
  };
  source.onmessage = (message) => send({ data: message.data });
}

function join(port) {
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
