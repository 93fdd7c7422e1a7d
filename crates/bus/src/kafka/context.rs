//! The context every librdkafka client of the bus runs with: librdkafka's logging and
//! errors routed into `tracing`, a lost broker noted, and a consumer's rebalances hooked
//! (rewinds on assignment, the Tansu rejoin workaround).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{
    BaseConsumer, Consumer as _, ConsumerContext, Rebalance, RebalanceProtocol,
};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::TopicPartitionList;

use super::errors::is_transient;
use super::resume::{self, Resumed};
use crate::meters::{self, Op};
use crate::rejoin::Rejoin;

/// Routes librdkafka's own logging into `tracing`, one level quieter: it reports every
/// failed reconnect, which would flood the logs while the broker is down.
///
/// It also notes when every broker went away (`broker_lost`): the broker may come back
/// without its topics, so the bus then creates each topic again before its next use.
#[derive(Clone, Default)]
pub(super) struct Ctx {
    pub(super) broker_lost: Arc<AtomicBool>,
    /// A consumer's: sees every assignment (see `rejoin`).
    pub(super) rejoin: Option<Arc<Rejoin>>,
    /// A consumer's: where resumed partitions start delivering (see `resume`).
    pub(super) resumed: Option<Arc<Resumed>>,
}

impl ClientContext for Ctx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        // FAIL = a broker connection failed; repeats every reconnect while it is down.
        let level = if fac == "FAIL" {
            RDKafkaLogLevel::Warning
        } else {
            level
        };
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical => {
                tracing::error!(target: "librdkafka", "{fac}: {msg}")
            }
            RDKafkaLogLevel::Error => tracing::warn!(target: "librdkafka", "{fac}: {msg}"),
            RDKafkaLogLevel::Warning => tracing::info!(target: "librdkafka", "{fac}: {msg}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::debug!(target: "librdkafka", "{fac}: {msg}")
            }
            RDKafkaLogLevel::Debug => tracing::trace!(target: "librdkafka", "{fac}: {msg}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.broker_lost.store(true, Ordering::Relaxed);
        }
        if is_transient(&error) {
            tracing::debug!(target: "librdkafka", "{error}: {reason}");
        } else {
            tracing::warn!(target: "librdkafka", "{error}: {reason}");
        }
    }
}

impl ConsumerContext for Ctx {
    /// librdkafka's default handling (rdkafka's `rebalance`), except that an assignment's
    /// partitions with committed offsets are first rewound (see `resume`).
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let (done, rebalance) = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if let Some(resumed) = &self.resumed {
                    resume::rewind(consumer, tpl, resumed);
                }
                let done = match cooperative {
                    true => consumer.incremental_assign(tpl),
                    false => consumer.assign(tpl),
                };
                (done, Rebalance::Assign(tpl))
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let done = match cooperative {
                    true => consumer.incremental_unassign(tpl),
                    false => consumer.unassign(),
                };
                (done, Rebalance::Revoke(tpl))
            }
            other => {
                let e = KafkaError::Rebalance(other.into());
                (consumer.unassign(), Rebalance::Error(e))
            }
        };
        if let Err(e) = done {
            tracing::warn!("rebalance: {e}");
        }
        self.post_rebalance(consumer, &rebalance);
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match (&self.rejoin, rebalance) {
            (Some(rejoin), Rebalance::Assign(tpl)) => rejoin.assigned(tpl),
            (Some(rejoin), Rebalance::Revoke(_)) => rejoin.revoked(),
            _ => {}
        }
    }

    // Asynchronous commits fail only here (served while `recv` polls).
    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            meters::error(Op::Commit);
            tracing::debug!("offset commit failed: {e}");
        }
    }
}
