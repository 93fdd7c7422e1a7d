//! Our own Tansu broker for tests that take it away (killed on drop).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub fn tansu_bin() -> Option<PathBuf> {
    let path = match std::env::var_os("FLOODGATE_TANSU_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/floodgate/tools/bin/tansu"),
    };
    path.exists().then_some(path)
}

/// A Tansu broker with in-memory storage, killed on drop.
pub struct Tansu {
    bin: PathBuf,
    pub port: u16,
    storage: String,
    child: Option<Child>,
}

impl Tansu {
    /// Memory storage: a restart loses every topic, record and group offset.
    pub fn start(bin: PathBuf, port: u16) -> Self {
        Self::with_storage(bin, port, "memory://tansu/")
    }

    pub fn with_storage(bin: PathBuf, port: u16, storage: &str) -> Self {
        let mut t = Tansu {
            bin,
            port,
            storage: storage.to_string(),
            child: None,
        };
        t.spawn();
        t
    }

    pub fn spawn(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(&self.bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", &self.storage])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
    }

    /// Freezes the broker (SIGSTOP): it goes away keeping all its state.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status();
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill();
    }
}
