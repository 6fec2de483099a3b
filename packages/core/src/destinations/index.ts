/**
 * Destination hooks: where the async engine sends the record of each task outcome
 * (fc-contract section 6), and the delivery-with-retry that calls them.
 *
 * @packageDocumentation
 */
export {
  type DeliverOptions,
  type DeliveryResult,
  type DestinationOutcome,
  deliverRecord,
} from './deliver.js';
export {
  type FcClientConfig,
  type FcFunctionDestinationOptions,
  type FcInvokeClient,
  type FunctionTarget,
  fcFunctionDestination,
  parseFunctionTarget,
} from './fc-function.js';
export { type FunctionDestinationOptions, functionDestination } from './function.js';
export { type HttpDestinationOptions, httpDestination } from './http.js';
export { type JsonlDestinationOptions, jsonlDestination } from './jsonl.js';
export {
  checkDestinationSignature,
  SIGNATURE_HEADER,
  type SignatureCheck,
  type SignatureFailure,
  type SignatureSecrets,
  signDestinationPayload,
  type VerifySignatureOptions,
  verifyDestinationSignature,
} from './signature.js';
export {
  type Destination,
  type DestinationContext,
  DestinationError,
  isDestinationError,
  isRetryableStatus,
} from './types.js';
