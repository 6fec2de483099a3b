import { getInvocation } from '@fc-async/core';
import { type ArgumentsHost, Catch, type HttpServer, HttpStatus, IntrinsicException, Logger } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';

/**
 * Nest's own exception filter, whose log line of an unexpected error names the FC request id.
 * The answers stay Nest's: an `HttpException` its status and body, any other error `500 {
 * "statusCode": 500, "message": "Internal server error" }` without its message or stack. Only the
 * log line changes: Nest's says `ExceptionsHandler` and the error, this one adds
 * `requestId=...` from `getInvocation(req)`, the id FC shows for the call (on the built-in and
 * the custom runtime, on Express and on Fastify). Provided as `APP_FILTER` in the app's module.
 */
@Catch()
export class RequestIdExceptionFilter extends BaseExceptionFilter {
  private readonly logger = new Logger('ExceptionsHandler');

  // Nest's catch() answers an HttpException itself (and logs nothing: an answer, not a crash), and
  // calls this for any other error, where Nest's own answers as below and logs without the request.
  override handleUnknownError(exception: unknown, host: ArgumentsHost, applicationRef: HttpServer) {
    const body = this.isHttpError(exception)
      ? { statusCode: exception.statusCode, message: this.getHttpErrorMessage(exception) }
      : { statusCode: HttpStatus.INTERNAL_SERVER_ERROR, message: 'Internal server error' };
    const response = host.getArgByIndex(1);
    if (applicationRef.isHeadersSent(response)) applicationRef.end(response);
    else applicationRef.reply(response, body, body.statusCode);
    if (exception instanceof IntrinsicException) return; // Nest logs none of these either
    // Express's `req` or Fastify's `request`: getInvocation() takes either.
    const requestId =
      host.getType() === 'http' ? getInvocation(host.switchToHttp().getRequest())?.requestId : undefined;
    const message = exception instanceof Error ? exception.message : String(exception);
    const stack = exception instanceof Error ? exception.stack : undefined;
    this.logger.error(requestId ? `requestId=${requestId} ${message}` : message, stack);
  }
}
