// The parts of the wrappers users migrate from that the "before" snippets use, simplified from
// what their packages declare (@webserverless/fc-express 1.0.0, serverless-http 4.0.0 and
// @vendia/serverless-express 4.12.6). The repository does not depend on them: these declarations
// let the "before" files be type-checked; only the "after" files run in the tests.

declare module '@webserverless/fc-express' {
  import type { IncomingMessage, ServerResponse } from 'node:http';
  import type { RequestHandler } from 'express';
  export class Server {
    constructor(
      requestListener: (request: IncomingMessage, response: ServerResponse) => void,
      serverListenCallback?: () => void,
      binaryTypes?: string[],
    );
    httpProxy(request: unknown, response: unknown, context: unknown): void;
    proxy(event: unknown, context: unknown, callback: (error?: Error, data?: unknown) => void): void;
  }
  export function eventContext(options?: { reqPropKey?: string; deleteHeaders?: boolean }): RequestHandler; // the package says (req: any, res: any, next: any) => void
}

declare module 'serverless-http' {
  import type { RequestListener } from 'node:http';

  type Handler = (event: unknown, context: unknown) => Promise<unknown>;
  function serverless(
    app: RequestListener | { handle: RequestListener },
    options?: { binary?: boolean | string[] },
  ): Handler;
  export default serverless;
}

declare module '@vendia/serverless-express' {
  import type { RequestListener } from 'node:http';
  export function getCurrentInvoke(): { event?: unknown; context?: { awsRequestId: string; functionName: string } };
  export default function serverlessExpress(options: {
    app: RequestListener;
  }): (event: unknown, context: unknown) => Promise<unknown>;
}

declare namespace Express {
  interface Request {
    /** Set by serverless-http: the Lambda event and context of this request. */
    apiGateway?: { event: unknown; context: { awsRequestId: string; functionName: string } };
  }
}
