//! W3C trace context: spans for requests and for work a bus message triggers, and the
//! `traceparent` value that carries a trace from one to the other.
//!
//! Everything here is a no-op while tracing is off (no OTLP endpoint, or built without
//! the `otel` feature), so callers need no conditions of their own.

use std::sync::atomic::{AtomicBool, Ordering};

use floodgate_bus::{Bus, BusResult, Outgoing};
use http::{HeaderMap, Method};
use tracing::{Instrument, Span};

/// The message header (and HTTP header) that carries the trace context.
pub const TRACEPARENT: &str = "traceparent";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// True when spans are exported; the request middleware only creates spans then.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

pub(crate) fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// The span of one HTTP request, continuing the caller's trace when it sent `traceparent`.
pub fn request_span(method: &Method, route: &str, headers: &HeaderMap) -> Span {
    if !enabled() {
        return Span::none();
    }
    let span = tracing::info_span!(
        "http.request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = route,
        http.response.status_code = tracing::field::Empty,
    );
    if let Some(tp) = headers.get(TRACEPARENT) {
        set_parent(&span, tp.as_bytes());
    }
    span
}

/// The span of publishing one message to `topic`; its context is what the consumer continues.
pub fn publish_span(topic: &str) -> Span {
    if !enabled() {
        return Span::none();
    }
    tracing::info_span!(
        "bus.publish",
        otel.name = %format_args!("publish {topic}"),
        otel.kind = "producer",
        messaging.destination.name = topic,
    )
}

/// The span of the work a message triggered, child of the trace in its `traceparent`.
pub fn consumer_span(operation: &'static str, topic: &str, traceparent: Option<&[u8]>) -> Span {
    if !enabled() {
        return Span::none();
    }
    let span = tracing::info_span!(
        "bus.process",
        otel.name = operation,
        otel.kind = "consumer",
        messaging.destination.name = topic,
    );
    if let Some(tp) = traceparent {
        set_parent(&span, tp);
    }
    span
}

/// Publishes `msg` inside a publish span, adding that span's `traceparent` to its headers
/// so the consumer's span continues the current trace.
pub async fn publish(bus: &dyn Bus, msg: Outgoing<'_>) -> BusResult<()> {
    if !enabled() {
        return bus.publish(msg).await;
    }
    let span = publish_span(msg.topic);
    let tp = traceparent(&span);
    let mut headers = msg.headers.to_vec();
    headers.extend(tp.as_deref().map(|t| (TRACEPARENT, t.as_bytes())));
    let msg = Outgoing {
        headers: &headers,
        ..msg
    };
    bus.publish(msg).instrument(span).await
}

/// The `traceparent` header value naming `span`, to put on an outgoing message.
pub fn traceparent(span: &Span) -> Option<String> {
    if !enabled() || span.is_none() {
        return None;
    }
    imp::traceparent(span)
}

fn set_parent(span: &Span, traceparent: &[u8]) {
    if let Ok(tp) = std::str::from_utf8(traceparent) {
        imp::set_parent(span, tp);
    }
}

#[cfg(feature = "otel")]
mod imp {
    use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use tracing::Span;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use super::TRACEPARENT;

    struct One<'a>(Option<&'a str>);

    impl Extractor for One<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.filter(|_| key == TRACEPARENT)
        }
        fn keys(&self) -> Vec<&str> {
            vec![TRACEPARENT]
        }
    }

    struct Out(Option<String>);

    impl Injector for Out {
        fn set(&mut self, key: &str, value: String) {
            if key == TRACEPARENT {
                self.0 = Some(value);
            }
        }
    }

    pub fn set_parent(span: &Span, traceparent: &str) {
        let cx = TraceContextPropagator::new().extract(&One(Some(traceparent)));
        // An invalid header yields an empty context: the span then starts a new trace.
        let _ = span.set_parent(cx);
    }

    pub fn traceparent(span: &Span) -> Option<String> {
        let mut out = Out(None);
        TraceContextPropagator::new().inject_context(&span.context(), &mut out);
        out.0
    }
}

#[cfg(not(feature = "otel"))]
mod imp {
    use tracing::Span;

    pub fn set_parent(_: &Span, _: &str) {}

    pub fn traceparent(_: &Span) -> Option<String> {
        None
    }
}
