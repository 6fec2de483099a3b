import { connect, createServer } from 'node:net';

/** A free TCP port on the loopback interface. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** What {@link runLoad} counted after the warm-up. */
export interface LoadResult {
  /** Responses per status code. */
  byStatus: Record<number, number>;
  /** Responses counted in each whole second of the measured window. */
  perSecond: number[];
  durationMs: number;
}

/**
 * A small HTTP/1.1 load client on raw sockets: `connections` keep-alive connections, each sending
 * `request` again as soon as the previous response is complete (no pipelining), for `warmupMs`
 * (not counted) and then `durationMs`. Responses must carry a `content-length`. Being this light
 * keeps the client from being the bottleneck of either server it is pointed at.
 */
export async function runLoad(options: {
  port: number;
  request: Buffer;
  connections: number;
  warmupMs: number;
  durationMs: number;
}): Promise<LoadResult> {
  const start = performance.now();
  const measureFrom = start + options.warmupMs;
  const end = measureFrom + options.durationMs;
  const byStatus: Record<number, number> = {};
  const perSecond: number[] = new Array(Math.ceil(options.durationMs / 1000)).fill(0);
  const count = (status: number) => {
    const now = performance.now();
    if (now < measureFrom || now >= end) return;
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    const second = Math.floor((now - measureFrom) / 1000);
    perSecond[second] = (perSecond[second] ?? 0) + 1;
  };
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const socket = connect(options.port, '127.0.0.1');
      socket.setNoDelay(true);
      let buffer: Buffer = Buffer.alloc(0);
      socket.on('connect', () => socket.write(options.request));
      socket.on('data', (chunk: Buffer) => {
        buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
        for (;;) {
          const headEnd = buffer.indexOf('\r\n\r\n');
          if (headEnd < 0) return;
          const head = buffer.toString('latin1', 0, headEnd);
          const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
          if (buffer.length < headEnd + 4 + length) return;
          buffer = buffer.subarray(headEnd + 4 + length);
          count(Number(head.slice(9, 12)));
          if (performance.now() >= end) {
            socket.end();
            return;
          }
          socket.write(options.request);
        }
      });
      socket.on('error', reject);
      socket.on('close', () => resolve());
    });
  await Promise.all(Array.from({ length: options.connections }, one));
  return { byStatus, perSecond, durationMs: options.durationMs };
}
