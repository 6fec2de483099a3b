import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { oncePerOutage } from '../src/outage.js';

describe('oncePerOutage', () => {
  it('logs each kind of error once while Redis is down, and again after the connection came back', () => {
    const client = new EventEmitter();
    const logged: string[] = [];
    const listener = oncePerOutage(client, (error) => logged.push(error.message));
    for (let i = 0; i < 5; i++) listener(new Error('connect ECONNREFUSED 127.0.0.1:6379'));
    listener(new Error('Connection is closed.'));
    listener(new Error('Connection is closed.'));
    expect(logged).toEqual(['connect ECONNREFUSED 127.0.0.1:6379', 'Connection is closed.']);
    client.emit('ready');
    listener(new Error('Connection is closed.'));
    expect(logged).toEqual(['connect ECONNREFUSED 127.0.0.1:6379', 'Connection is closed.', 'Connection is closed.']);
  });

  it('alternating kinds, and the same error told by the connection, the queue and the worker, are logged once', () => {
    const client = new EventEmitter();
    const logged: string[] = [];
    const connection = oncePerOutage(client, (error) => logged.push(`connection ${error.message}`));
    const worker = oncePerOutage(client, (error) => logged.push(`worker ${error.message}`));
    for (let i = 0; i < 10; i++) {
      const error = new Error(i % 2 ? 'Command timed out' : 'connect ECONNREFUSED 127.0.0.1:6379');
      connection(error);
      worker(error);
    }
    expect(logged).toEqual(['connection connect ECONNREFUSED 127.0.0.1:6379', 'connection Command timed out']);
    client.emit('ready');
    worker(new Error('Command timed out'));
    expect(logged.at(-1)).toBe('worker Command timed out');
  });
});
