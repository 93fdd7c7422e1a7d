//! Logs (one JSON object per line, or text for humans, filtered by RUST_LOG) and, when an
//! OTLP endpoint is configured and the `otel` feature is built, trace export.
//!
//! Tracing is off unless an endpoint is set: the hot paths then create no spans at all.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[cfg(feature = "otel")]
mod otel;
pub mod trace;

/// Where and how to export traces (from `OTEL_*` settings).
pub struct TraceExport<'a> {
    /// Base URL; `/v1/traces` is appended as the OTLP/HTTP specification says.
    pub endpoint: &'a str,
    /// `http/protobuf` or `http/json`.
    pub protocol: &'a str,
    pub service: &'a str,
    pub node: &'a str,
}

/// Keeps the trace exporter alive; `shutdown` sends the spans still buffered.
#[must_use = "dropping the guard without shutdown loses buffered spans"]
pub struct Telemetry {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    pub fn shutdown(self) {
        #[cfg(feature = "otel")]
        if let Some(p) = self.provider {
            trace::set_enabled(false);
            if let Err(e) = p.shutdown() {
                tracing::warn!(error = %e, "trace exporter did not flush");
            }
        }
    }
}

/// Installs the global subscriber; a second call (tests) installs nothing.
pub fn init(json: bool, filter: &str, export: Option<TraceExport<'_>>) -> Telemetry {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed()
    };
    #[cfg(feature = "otel")]
    let (spans, provider) = match export.map(otel::provider).transpose() {
        Ok(Some(p)) => {
            let layer = otel::layer(&p).with_filter(tracing_subscriber::filter::LevelFilter::INFO);
            (Some(layer), Some(p))
        }
        Ok(None) => (None, None),
        Err(e) => {
            eprintln!("trace export disabled: {e}");
            (None, None)
        }
    };
    #[cfg(not(feature = "otel"))]
    let spans: Option<tracing_subscriber::layer::Identity> = {
        if export.is_some() {
            eprintln!("trace export disabled: built without the `otel` feature");
        }
        None
    };
    #[cfg(feature = "otel")]
    let exporting = provider.is_some();
    #[cfg(not(feature = "otel"))]
    let exporting = false;
    let installed = tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init()
        .is_ok();
    // A second init (tests) keeps the first subscriber, so it exports nothing.
    trace::set_enabled(installed && exporting);
    Telemetry {
        #[cfg(feature = "otel")]
        provider,
    }
}
