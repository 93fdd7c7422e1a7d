//! A child process a test owns, bound to one port.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Killed on drop. `restart` brings it back on the same port with the same arguments.
pub struct Process {
    child: Option<Child>,
    pub port: u16,
    cmd: Vec<String>,
    cwd: PathBuf,
}

impl Process {
    /// Runs `cmd` (program and arguments) in `cwd` and waits until `port` accepts.
    pub fn start(cmd: Vec<String>, port: u16, cwd: PathBuf) -> Self {
        let mut p = Process::stopped(cmd, port, cwd);
        p.restart();
        p
    }

    /// Prepared but not running; `restart` starts it.
    pub fn stopped(cmd: Vec<String>, port: u16, cwd: PathBuf) -> Self {
        Process {
            child: None,
            port,
            cmd,
            cwd,
        }
    }

    /// Starts it (again) on the same port and waits until the port answers.
    pub fn restart(&mut self) {
        let child = Command::new(&self.cmd[0])
            .args(&self.cmd[1..])
            .current_dir(&self.cwd)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.cmd[0]));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{} did not open port {}",
                self.cmd[0],
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGSTOP: the process keeps its port but answers nothing (a hung or partitioned
    /// server). `resume` undoes it with its state intact.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let ok = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status()
                .map(|s| s.success());
            assert!(matches!(ok, Ok(true)), "kill {sig} failed");
        }
    }

    /// kill -9, as a crash would (a paused process is woken first so it can die).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
