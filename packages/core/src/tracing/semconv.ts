/**
 * Every attribute name and fixed value fc-async puts on a span, in one place. Names follow the
 * OpenTelemetry semantic conventions (v1.44): FaaS, cloud, HTTP server and messaging. What is
 * fc-async's own takes the `fc_async.` prefix.
 */

export const ATTR_FAAS_TRIGGER = 'faas.trigger';
export const ATTR_FAAS_INVOCATION_ID = 'faas.invocation_id';
export const ATTR_FAAS_COLDSTART = 'faas.coldstart';
export const ATTR_FAAS_NAME = 'faas.name';
export const ATTR_FAAS_VERSION = 'faas.version';
export const ATTR_FAAS_INSTANCE = 'faas.instance';
export const ATTR_FAAS_MAX_MEMORY = 'faas.max_memory';

export const ATTR_CLOUD_PROVIDER = 'cloud.provider';
export const ATTR_CLOUD_PLATFORM = 'cloud.platform';
export const ATTR_CLOUD_REGION = 'cloud.region';
export const ATTR_CLOUD_ACCOUNT_ID = 'cloud.account.id';
/** The function's ARN, `acs:fc:{region}:{accountId}:functions/{name}`. */
export const ATTR_CLOUD_RESOURCE_ID = 'cloud.resource_id';

export const ATTR_HTTP_REQUEST_METHOD = 'http.request.method';
export const ATTR_HTTP_REQUEST_METHOD_ORIGINAL = 'http.request.method_original';
export const ATTR_HTTP_ROUTE = 'http.route';
export const ATTR_HTTP_RESPONSE_STATUS_CODE = 'http.response.status_code';
export const ATTR_URL_PATH = 'url.path';
export const ATTR_URL_SCHEME = 'url.scheme';
export const ATTR_USER_AGENT_ORIGINAL = 'user_agent.original';
export const ATTR_CLIENT_ADDRESS = 'client.address';
export const ATTR_ERROR_TYPE = 'error.type';

export const ATTR_MESSAGING_SYSTEM = 'messaging.system';
export const ATTR_MESSAGING_OPERATION_NAME = 'messaging.operation.name';
export const ATTR_MESSAGING_OPERATION_TYPE = 'messaging.operation.type';
export const ATTR_MESSAGING_DESTINATION_NAME = 'messaging.destination.name';
export const ATTR_MESSAGING_MESSAGE_ID = 'messaging.message.id';

export const ATTR_FC_ASYNC_INVOCATION_TYPE = 'fc_async.invocation_type';
export const ATTR_FC_ASYNC_TASK_ID = 'fc_async.task_id';
export const ATTR_FC_ASYNC_ATTEMPT = 'fc_async.attempt';
export const ATTR_FC_ASYNC_QUALIFIER = 'fc_async.qualifier';
export const ATTR_FC_ASYNC_CONDITION = 'fc_async.condition';
/** `true` on an attempt's CONSUMER span whose end the store refused: another end owns the task. */
export const ATTR_FC_ASYNC_SUPERSEDED = 'fc_async.superseded';
/** `onSuccess` or `onFailure`, on destination spans. */
export const ATTR_FC_ASYNC_DESTINATION = 'fc_async.destination';
/** The destination's label (never a secret: see `Destination.label`). */
export const ATTR_FC_ASYNC_DESTINATION_LABEL = 'fc_async.destination.label';
/** 1-based call number of one destination, on destination spans. */
export const ATTR_FC_ASYNC_DESTINATION_ATTEMPT = 'fc_async.destination.attempt';

export const FAAS_TRIGGER_HTTP = 'http';
/** `faas.trigger` of an attempt of a local async task: a run the queue triggered. */
export const FAAS_TRIGGER_PUBSUB = 'pubsub';
export const CLOUD_PROVIDER_ALIBABA = 'alibaba_cloud';
export const CLOUD_PLATFORM_FC = 'alibaba_cloud_fc';
export const MESSAGING_SYSTEM_FC_ASYNC = 'fc_async';

/** The instrumentation scope name of every fc-async span. */
export const TRACER_NAME = '@fc-async/core';
