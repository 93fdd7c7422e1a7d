//! Standalone `floodgate bench`: `cargo run --release -p floodgate-bench --example bench -- ARGS`.

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    floodgate_bench::run(std::env::args().skip(1).collect(), None).await
}
