//! Queuing a command: straight to the broker (its ack is the durability), or through the
//! outbox when the bus is the in-process one.

use floodgate_bus::{BusError, Outgoing, SharedBus};
use floodgate_core::telemetry::trace;
use tracing::Instrument;

use crate::model::Command;
use crate::outbox::{Entry, Outbox, OutboxError};

/// Why a command was not made durable (each a 503 for the writer).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    Encode(#[source] serde_json::Error),
    /// The broker is unreachable or did not acknowledge, or the bus is closed.
    #[error("{0}")]
    Bus(#[source] BusError),
    /// The broker answered with an error (`BusError::Other`, whose text is `reason`).
    #[error("publish failed: {reason}")]
    Refused {
        reason: String,
        #[source]
        source: BusError,
    },
    #[error("{0}")]
    Outbox(#[from] OutboxError),
}

#[derive(Clone)]
pub enum Publisher {
    Broker { bus: SharedBus, topic: String },
    Outbox(Outbox),
}

impl Publisher {
    /// Returns once the command is durable.
    pub async fn send(&self, cmd: &Command) -> Result<(), SendError> {
        // A struct of strings and bools always serialises.
        let payload = serde_json::to_vec(cmd).map_err(SendError::Encode)?;
        match self {
            Publisher::Broker { bus, topic } => {
                let msg = Outgoing {
                    topic,
                    key: Some(cmd.id.as_bytes()),
                    payload: &payload,
                    headers: &[],
                };
                trace::publish(&**bus, msg).await.map_err(|e| match e {
                    BusError::Unavailable(_) | BusError::Closed => SendError::Bus(e),
                    BusError::Other(ref m) => SendError::Refused {
                        reason: m.to_string(),
                        source: e,
                    },
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
                Ok(outbox.submit(entry).instrument(span).await?)
            }
        }
    }
}
