//! Our own Tansu broker (memory storage) for tests that take it away: `pause`/`resume`
//! keep its state, `kill`/`restart` bring it back empty.

use std::path::PathBuf;

use floodgate_testkit::{free_port, Process};

fn tansu_bin() -> Option<PathBuf> {
    let path = match std::env::var_os("FLOODGATE_TANSU_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/floodgate/tools/bin/tansu"),
    };
    path.exists().then_some(path)
}

/// A started broker on a free port, or `None` (with a notice) when tansu is not installed.
pub fn tansu() -> Option<Process> {
    let Some(bin) = tansu_bin() else {
        eprintln!("skipped: tansu binary not found (set FLOODGATE_TANSU_BIN)");
        return None;
    };
    let port = free_port();
    let url = format!("tcp://127.0.0.1:{port}");
    let cmd = [
        &bin.display().to_string(),
        "broker",
        "--listener-url",
        &url,
        "--advertised-listener-url",
        &url,
        "--storage-engine",
        "memory://tansu/",
    ]
    .map(String::from)
    .to_vec();
    Some(Process::start(cmd, port, std::env::temp_dir()))
}
