//! Errors that stop a run before or after the load (not per-request failures: those are
//! counted, see `conn::ErrorKind`).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("invalid URL `{url}`: {why}")]
    Url { url: String, why: String },
    #[error("invalid header `{0}` (expected `Name: value`)")]
    Header(String),
    #[error("invalid method `{0}`")]
    Method(String),
    #[error("invalid option: {0}")]
    Option(String),
    #[error("cannot read {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    WriteFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start a worker thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot create a latency histogram: {0}")]
    Histogram(String),
    #[error("a worker thread failed")]
    WorkerLost,
    #[error("request to {url} failed: {why}")]
    Request { url: String, why: String },
}
