//! `--metrics-url`: Prometheus text fetched before and after a run, written to
//! `metrics_snapshots.txt` beside the other output files.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::args::BenchArgs;
use crate::client::Client;
use crate::error::BenchError;
use crate::report::{rfc3339, write_file};

const FILE_NAME: &str = "metrics_snapshots.txt";

pub struct Snapshots {
    url: Option<String>,
    path: PathBuf,
}

impl Snapshots {
    pub fn new(args: &BenchArgs) -> Self {
        let dir = args
            .json
            .as_ref()
            .or(args.csv.as_ref())
            .and_then(|p| p.parent())
            .map(PathBuf::from)
            .unwrap_or_default();
        Self {
            url: args.metrics_url.clone(),
            path: dir.join(FILE_NAME),
        }
    }

    /// One labelled snapshot; a failed fetch is recorded in the file rather than fatal.
    pub async fn take(&self, label: &str) -> Option<String> {
        let url = self.url.as_ref()?;
        let text = match fetch(url).await {
            Ok(text) => text,
            Err(e) => {
                eprintln!("floodgate bench: metrics snapshot ({label}) failed: {e}");
                format!("# fetch failed: {e}\n")
            }
        };
        Some(format!(
            "# snapshot {label} {} from {url}\n{text}\n",
            rfc3339(SystemTime::now())
        ))
    }

    pub fn write(&self, snapshots: &[Option<String>]) -> Result<(), BenchError> {
        if self.url.is_none() {
            return Ok(());
        }
        let text: String = snapshots.iter().flatten().map(String::as_str).collect();
        write_file(&self.path, text.as_bytes())
    }
}

async fn fetch(url: &str) -> Result<String, BenchError> {
    let mut client = Client::new(url, Duration::from_secs(10)).await?;
    let failed = |why: String| BenchError::Request {
        url: url.to_string(),
        why,
    };
    let reply = client
        .get("", &[])
        .await
        .map_err(|e| failed(e.to_string()))?;
    if reply.status != 200 {
        return Err(failed(format!("status {}", reply.status)));
    }
    Ok(String::from_utf8_lossy(&reply.body).into_owned())
}
