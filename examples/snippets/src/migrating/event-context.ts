import { getInvocation } from '@fc-async/express';
import type { Request, RequestHandler } from 'express';

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

/** This request's invocation in the shape of FC's `context`, without credentials. */
export function fcContext(req: Request): FcExpressContext | undefined {
  const invocation = getInvocation(req);
  if (!invocation) return undefined;
  const { requestId, region, accountId, functionName, memoryMB, timeoutSeconds, qualifier, versionId } = invocation;
  return {
    requestId,
    region,
    accountId,
    function: { name: functionName, memory: memoryMB, timeout: timeoutSeconds },
    service: { qualifier, versionId: versionId ?? '' },
  };
}

/**
 * Stands in for `eventContext()` of `@webserverless/fc-express`: fills `req.eventContext.context`
 * from `getInvocation(req)`, so routes that read it keep working. FC's credentials are not in it:
 * read them from `ALIBABA_CLOUD_ACCESS_KEY_ID`, `ALIBABA_CLOUD_ACCESS_KEY_SECRET` and
 * `ALIBABA_CLOUD_SECURITY_TOKEN`, or let the official SDKs' credential chain do it.
 */
export function eventContext(): RequestHandler {
  return function eventContextMiddleware(req, _res, next) {
    const context = fcContext(req);
    if (context) req.eventContext = { context };
    next();
  };
}
