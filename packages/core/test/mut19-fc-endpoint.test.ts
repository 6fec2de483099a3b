// The FC client fcFunctionDestination builds from a config: which endpoint it calls. The SDK is
// replaced by one that only records its config (no call leaves the process).
import { describe, expect, it, vi } from 'vitest';
import { fcFunctionDestination } from '../src/destinations/index.js';
import type { DestinationRecord } from '../src/fc-types.js';

const configs = vi.hoisted(() => [] as Record<string, unknown>[]);

vi.mock('@alicloud/fc20230330', () => {
  class Client {
    constructor(config: Record<string, unknown>) {
      configs.push(config);
    }
    async invokeFunctionWithOptions() {
      return { statusCode: 202 };
    }
  }
  class InvokeFunctionRequest {
    constructor(readonly map: unknown) {}
  }
  class InvokeFunctionHeaders {
    constructor(readonly map: unknown) {}
  }
  return { default: Client, InvokeFunctionRequest, InvokeFunctionHeaders };
});

const record = {
  timestamp: 1,
  requestContext: {
    requestId: '1-x',
    functionArn: 'acs:fc:cn-hangzhou:1:functions/f',
    condition: '',
    approximateInvokeCount: 1,
  },
  requestPayload: '',
  responseContext: { statusCode: 200, functionError: '' },
  responsePayload: '',
} satisfies DestinationRecord;

describe('fcFunctionDestination without an endpoint', () => {
  it("calls {accountId}.{region}.fc.aliyuncs.com over https, from the ARN target's account and region", async () => {
    configs.length = 0;
    const credentials = { accessKeyId: 'ak', accessKeySecret: 'sk' };
    await fcFunctionDestination('acs:fc:cn-shanghai:1234567890123456:functions/dest-fail', credentials)(record);
    await fcFunctionDestination('dest', { ...credentials, region: 'cn-beijing', accountId: '42' })(record);
    expect(configs).toEqual([
      {
        accessKeyId: 'ak',
        accessKeySecret: 'sk',
        endpoint: '1234567890123456.cn-shanghai.fc.aliyuncs.com',
        protocol: 'https',
        regionId: 'cn-shanghai',
      },
      {
        accessKeyId: 'ak',
        accessKeySecret: 'sk',
        endpoint: '42.cn-beijing.fc.aliyuncs.com',
        protocol: 'https',
        regionId: 'cn-beijing',
      },
    ]);
  });
});
