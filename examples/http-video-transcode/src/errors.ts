import type { FcAsyncErrorCode } from '@fc-async/core';

/**
 * The codes of the errors this service answers with: fc-async's own and the service's, so that a
 * `switch` over `error.code` is checked (a typo does not compile).
 */
export type TranscodeErrorCode =
  | FcAsyncErrorCode
  | 'FfmpegNotFound'
  | 'TranscodeFailed'
  | 'TranscodeStopped'
  | 'MissingCredentials'
  | 'BucketNotFound'
  | 'StorageAccessDenied'
  | 'StorageError'
  | 'ObjectNotFound';
