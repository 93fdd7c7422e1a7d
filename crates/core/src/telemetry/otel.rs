//! The OTLP/HTTP span exporter and the layer that turns `tracing` spans into OTel spans.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::registry::LookupSpan;

use super::TraceExport;

pub fn provider(e: TraceExport<'_>) -> Result<SdkTracerProvider, String> {
    let protocol = match e.protocol {
        "http/protobuf" => Protocol::HttpBinary,
        "http/json" => Protocol::HttpJson,
        other => return Err(format!("unsupported OTLP protocol {other:?}")),
    };
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_endpoint(format!("{}/v1/traces", e.endpoint.trim_end_matches('/')))
        .build()
        .map_err(|err| err.to_string())?;
    let resource = Resource::builder()
        .with_service_name(e.service.to_owned())
        .with_attribute(KeyValue::new("service.instance.id", e.node.to_owned()))
        .build();
    // The batch processor exports from its own thread, off the async runtime.
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

pub fn layer<S>(
    p: &SdkTracerProvider,
) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer().with_tracer(p.tracer("floodgate"))
}
