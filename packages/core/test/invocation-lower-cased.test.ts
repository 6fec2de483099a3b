import { describe, expect, it } from 'vitest';
import { createFcHandler, getInvocation, type HeaderBag, type Invocation, silentLogger } from '../src/index.js';
import { buildInvocation, buildInvocationLowerCased, detectLowerCased } from '../src/invocation.js';
import { event } from './helpers.js';

const FC_HEADERS = {
  'x-fc-function-memory': '512',
  'x-fc-function-timeout': '60',
  'x-fc-function-name': 'transcode',
  'x-fc-region': 'cn-hangzhou',
  'x-fc-account-id': '123',
  'x-fc-qualifier': 'prod',
  'x-fc-version-id': ['3', '4'],
};

/** A header bag that counts how often its names are listed (what a case-insensitive search does). */
function counting(headers: HeaderBag): { headers: HeaderBag; listed: () => number } {
  let listed = 0;
  const proxy = new Proxy(headers, {
    ownKeys(target) {
      listed++;
      return Reflect.ownKeys(target);
    },
  });
  return { headers: proxy, listed: () => listed };
}

describe("the handler's invocation from lower-cased headers", () => {
  it('reads the FC headers as buildInvocation does when their names are lower-case', () => {
    const headers: HeaderBag = { 'content-type': 'text/plain', ...FC_HEADERS };
    const detection = detectLowerCased(headers, {});
    expect(buildInvocationLowerCased(detection, headers, undefined, {})).toEqual(
      buildInvocation(detection, headers, undefined, {}),
    );
    expect(buildInvocationLowerCased(detection, headers, undefined, {})).toMatchObject({
      memoryMB: 512,
      timeoutSeconds: 60,
      functionName: 'transcode',
      region: 'cn-hangzhou',
      accountId: '123',
      qualifier: 'prod',
      versionId: '3',
    });
  });

  it('does not walk the headers for the FC headers a call does not carry', () => {
    const { headers, listed } = counting({ 'content-type': 'text/plain', 'x-fc-request-id': '1-64f6d6e7-1' });
    const detection = detectLowerCased(headers, {});
    const invocation = buildInvocationLowerCased(detection, headers, undefined, { FC_REGION: 'cn-shanghai' });
    expect(invocation).toMatchObject({ region: 'cn-shanghai', qualifier: 'LATEST', functionName: '' });
    expect(listed()).toBe(0);
    // The public builder keeps its case-insensitive search (FC 3.0 events keep canonical case).
    buildInvocation(detection, headers, undefined, {});
    expect(listed()).toBeGreaterThan(0);
  });

  it("gives the app an FC 3.0 event's canonical-case FC headers (the event's names are lower-cased first)", async () => {
    let seen: Invocation | undefined;
    const handler = createFcHandler(
      (req, res) => {
        seen = getInvocation(req);
        res.end('ok');
      },
      { logger: silentLogger, env: {} },
    );
    const result = await handler(
      event({ headers: { 'X-Fc-Region': 'cn-beijing', 'X-Fc-Function-Name': 'resize', 'X-Fc-Qualifier': 'blue' } }),
    );
    expect(result.statusCode).toBe(200);
    expect(seen).toMatchObject({ region: 'cn-beijing', functionName: 'resize', qualifier: 'blue' });
  });
});
