import { getInvocation } from '@fc-async/express';
import type { RequestHandler } from 'express';

/** The fields of FC's context that fc-express's `eventContext()` put on `req.eventContext.context`. */
export interface FcExpressContext {
  requestId: string;
  region: string;
  accountId: string;
  function: { name: string; memory?: number | undefined; timeout?: number | undefined };
  service: { qualifier: string; versionId: string };
}

declare global {
  namespace Express {
    interface Request {
      eventContext?: { context: FcExpressContext };
    }
  }
}

/**
 * Stands in for `eventContext()` of `@webserverless/fc-express`: fills `req.eventContext.context`
 * from `getInvocation(req)`, so routes that read it keep working. FC's credentials are not in it:
 * read them from `ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET` and
 * `ALIBABA_CLOUD_SECURITY_TOKEN`, or let the official SDKs' credential chain do it.
 */
export function eventContext(): RequestHandler {
  return function eventContextMiddleware(req, _res, next) {
    const invocation = getInvocation(req);
    if (invocation) {
      const { requestId, region, accountId, functionName, memoryMB, timeoutSeconds, qualifier, versionId } = invocation;
      req.eventContext = {
        context: {
          requestId,
          region,
          accountId,
          function: { name: functionName, memory: memoryMB, timeout: timeoutSeconds },
          service: { qualifier, versionId: versionId ?? '' },
        },
      };
    }
    next();
  };
}
