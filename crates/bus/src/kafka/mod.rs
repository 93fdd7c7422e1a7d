//! Kafka-protocol bus on librdkafka (works with Apache Kafka, Redpanda, Tansu, ...).
//!
//! Nothing here talks to the broker at construction time: the server must start, and report
//! not-ready, while the broker is down. Every call that needs the broker is bounded in time
//! and reports `Unavailable` instead of hanging.
//!
//! `config`: the settings and the librdkafka configuration made of them; `context`: what
//! every client runs with (logging, a lost broker, rebalances); `bus`: `KafkaBus`;
//! `consumer`: `KafkaConsumer`; `lag`: each consumer's watcher thread (lag, lost logs);
//! `errors`: librdkafka's errors as `BusError`s; `assign` and `resume`: claimed partitions
//! assigned by hand, and where a resumed partition starts.

mod assign;
mod bus;
mod config;
mod consumer;
mod context;
mod errors;
mod lag;
mod resume;

pub use bus::KafkaBus;
pub use config::{
    new_topic, KafkaConfig, DEFAULT_FETCH_WAIT, DEFAULT_PARTITIONS, DEFAULT_SESSION_TIMEOUT,
};
pub use consumer::KafkaConsumer;
