//! librdkafka's errors as `BusError`s: what is broker trouble, worth retrying
//! (`Unavailable`), and what retrying cannot fix (`Other`).

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::BusError;

pub(super) fn config_error(e: KafkaError) -> BusError {
    BusError::Other(Box::new(InvalidConfig(e)))
}

/// Says which step failed while keeping librdkafka's error as the cause.
#[derive(Debug, thiserror::Error)]
#[error("invalid Kafka configuration: {0}")]
struct InvalidConfig(#[source] KafkaError);

pub(super) fn unavailable(e: KafkaError) -> BusError {
    BusError::Unavailable(Box::new(e))
}

/// Broker trouble (down, timing out, electing leaders) is `Unavailable`: the caller may
/// retry. Only errors that retrying cannot fix are `Other`.
pub(super) fn map_error(e: KafkaError) -> BusError {
    if is_transient(&e) {
        BusError::Unavailable(Box::new(e))
    } else {
        BusError::Other(Box::new(e))
    }
}

pub(super) fn is_transient(e: &KafkaError) -> bool {
    match e {
        KafkaError::AdminOp(code) => is_transient_code(*code),
        KafkaError::Canceled => true,
        other => other.rdkafka_error_code().is_none_or(is_transient_code),
    }
}

pub(super) fn is_transient_code(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    !matches!(
        code,
        C::InvalidMessage
            | C::InvalidMessageSize
            | C::MessageSizeTooLarge
            | C::InvalidRecord
            | C::InvalidTopic
            | C::UnknownTopic
            | C::InvalidArgument
            | C::InvalidConfig
            | C::InvalidReplicationFactor
            | C::PolicyViolation
            | C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::Authentication
            | C::SaslAuthenticationFailed
            | C::UnsupportedFeature
            | C::Fatal
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_trouble_is_retryable_and_bad_input_is_not() {
        let down = KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
        assert!(matches!(map_error(down), BusError::Unavailable(_)));
        let big = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        assert!(matches!(map_error(big), BusError::Other(_)));
        let admin = KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut);
        assert!(matches!(map_error(admin), BusError::Unavailable(_)));
    }
}
