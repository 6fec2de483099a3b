import { DestinationError } from './types.js';

/**
 * `work`, or a retryable `DestinationTimeout` with `message` once it has not settled within `ms`
 * (it is left running). `onTimeout` gets that error first (to abort what `work` was given).
 */
export function settledWithin<T>(
  work: Promise<T>,
  ms: number,
  message: string,
  onTimeout?: (error: DestinationError) => void,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const error = new DestinationError('DestinationTimeout', message, { retryable: true });
      onTimeout?.(error);
      reject(error);
    }, ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
