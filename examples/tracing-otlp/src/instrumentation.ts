import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';

// The OpenTelemetry SDK that fc-async's spans go to. The exporter sends OTLP over HTTP to
// OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4318), with OTEL_EXPORTER_OTLP_HEADERS
// for a vendor's API key: Alibaba Cloud Managed Service for OpenTelemetry, Jaeger, Tempo...
export const sdk = new NodeSDK({
  serviceName: process.env.FC_FUNCTION_NAME ?? 'orders',
  resource: resourceFromAttributes({
    'cloud.provider': 'alibaba_cloud',
    'cloud.platform': 'alibaba_cloud_fc',
    'cloud.region': process.env.FC_REGION ?? 'local',
  }),
  traceExporter: new OTLPTraceExporter(),
});
sdk.start();
