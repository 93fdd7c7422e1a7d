//! Queuing a command: straight to the broker (its ack is the durability), or through the
//! outbox when the bus is the in-process one.

use floodgate_bus::{BusError, Outgoing, SharedBus};
use floodgate_core::telemetry::trace;
use tracing::Instrument;

use crate::error::ApiError;
use crate::model::Command;
use crate::outbox::{Entry, Outbox};

#[derive(Clone)]
pub enum Publisher {
    Broker { bus: SharedBus, topic: String },
    Outbox(Outbox),
}

impl Publisher {
    /// Returns once the command is durable.
    pub async fn send(&self, cmd: &Command) -> Result<(), ApiError> {
        // A struct of strings and bools always serialises.
        let payload = serde_json::to_vec(cmd).map_err(|e| ApiError::Unavailable(e.to_string()))?;
        match self {
            Publisher::Broker { bus, topic } => {
                let msg = Outgoing {
                    topic,
                    key: Some(cmd.id.as_bytes()),
                    payload: &payload,
                    headers: &[],
                };
                trace::publish(&**bus, msg).await.map_err(|e| match e {
                    BusError::Unavailable(_) | BusError::Closed => ApiError::from(e),
                    BusError::Other(m) => ApiError::Unavailable(format!("publish failed: {m}")),
                })
            }
            Publisher::Outbox(outbox) => {
                // The outbox publishes later, so the trace context travels in the entry.
                let span = trace::publish_span(outbox.topic());
                let entry = Entry {
                    command_id: cmd.command_id.clone().unwrap_or_default(),
                    key: cmd.id.clone(),
                    payload,
                    traceparent: trace::traceparent(&span),
                };
                outbox.submit(entry).instrument(span).await
            }
        }
    }
}
