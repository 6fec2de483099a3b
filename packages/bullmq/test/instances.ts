import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { DestinationRecord } from '@fc-async/core';
import { firstLine } from '@fc-async/test-kit/wait';

// Instances of fixtures/instance.ts as separate processes on one Redis, each reporting its
// attempts' starts and ends and its destination calls to one HTTP server of the test's.

const INSTANCE = fileURLToPath(new URL('./fixtures/instance.ts', import.meta.url));

export interface Instance {
  child: ChildProcess;
  port: number;
}

/** What an instance reports of an attempt. */
export interface Reported {
  type: 'started' | 'ended' | 'aborted';
  taskId: string;
  attempt?: number;
  pid: number;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

/** The reporting server and the instances started against it. */
export class Instances {
  readonly reported: Reported[] = [];
  readonly deliveries: DestinationRecord[] = [];
  private readonly children: ChildProcess[] = [];

  private constructor(
    private readonly reporter: Server,
    private readonly redisUrl: string,
  ) {}

  static async open(redisUrl: string): Promise<Instances> {
    const reporter = createServer();
    const instances = new Instances(reporter, redisUrl);
    reporter.on('request', async (req, res) => {
      const body = JSON.parse(await readBody(req));
      if (req.url === '/event') instances.reported.push(body as Reported);
      else instances.deliveries.push(body as DestinationRecord);
      res.end();
    });
    reporter.listen(0, '127.0.0.1');
    await once(reporter, 'listening');
    return instances;
  }

  /** Starts an instance under `prefix`; resolves once it listens (a child that dies first fails at once). */
  async start(prefix: string, role: 'worker' | 'accept'): Promise<Instance> {
    const url = `http://127.0.0.1:${(this.reporter.address() as AddressInfo).port}`;
    const child = spawn(process.execPath, ['--import', 'tsx', INSTANCE, this.redisUrl, prefix, role, url], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    this.children.push(child);
    const line = await firstLine(child);
    return { child, port: (JSON.parse(line) as { port: number }).port };
  }

  /** Kills every instance still running and closes the reporting server. */
  async close(): Promise<void> {
    for (const child of this.children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    }
    this.reporter.closeAllConnections();
    await new Promise((resolve) => this.reporter.close(resolve));
  }
}
