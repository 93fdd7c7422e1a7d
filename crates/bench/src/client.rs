//! A plain one-request-at-a-time client over a kept-alive connection, for scenarios and
//! metrics snapshots where the body matters and speed does not. (No HEAD requests: their
//! responses would need a body-less parser.)

use std::net::SocketAddr;
use std::time::Duration;

use crate::conn::{Conn, ConnError};
use crate::error::BenchError;
use crate::plan::resolve;
use crate::target::Target;

/// A response with its body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub retry_after: Option<u64>,
}

impl Reply {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Why a request got no response. A timeout or a lost connection leaves its effect unknown.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Conn(#[from] ConnError),
    #[error("timed out")]
    Timeout,
}

pub struct Client {
    base: Target,
    addrs: Vec<SocketAddr>,
    conn: Option<Conn>,
    timeout: Duration,
}

impl Client {
    pub async fn new(base_url: &str, timeout: Duration) -> Result<Self, BenchError> {
        let base = Target::parse(base_url)?;
        let addrs = resolve(&base).await?;
        Ok(Self {
            base,
            addrs,
            conn: None,
            timeout,
        })
    }

    /// The path of the base URL without a trailing slash, to prefix routes with.
    pub fn url(&self, path: &str) -> String {
        format!(
            "http://{}{}{path}",
            self.base.authority,
            self.base.path.trim_end_matches('/')
        )
    }

    pub async fn get(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Reply, RequestError> {
        self.send("GET", path, headers, b"").await
    }

    /// Sends one request; `path` is appended to the base URL's path.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Reply, RequestError> {
        let request = self.encode(method, path, headers, body);
        let result = tokio::time::timeout(self.timeout, self.exchange(&request)).await;
        match result {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => {
                self.conn = None;
                Err(e.into())
            }
            Err(_) => {
                self.conn = None;
                Err(RequestError::Timeout)
            }
        }
    }

    fn encode(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
        let mut full = format!("{}{path}", self.base.path.trim_end_matches('/'));
        if full.is_empty() {
            full.push('/');
        }
        let mut out = format!(
            "{method} {full} HTTP/1.1\r\nHost: {}\r\n",
            self.base.authority
        );
        for (name, value) in headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || !matches!(method, "GET" | "HEAD") {
            out.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }

    async fn exchange(&mut self, request: &[u8]) -> Result<Reply, ConnError> {
        // A kept-alive connection may have been closed by the server while idle: that shows
        // as a failed write or an immediate close, and is worth one fresh attempt.
        let reused = self.conn.is_some();
        match self.once(request).await {
            Err(ConnError::Write(_) | ConnError::Closed) if reused => {
                self.conn = None;
                self.once(request).await
            }
            other => other,
        }
    }

    async fn once(&mut self, request: &[u8]) -> Result<Reply, ConnError> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self.conn.insert(Conn::connect(&self.addrs, false).await?),
        };
        conn.write(request).await?;
        let mut body = Vec::new();
        let mut reply = None;
        conn.read_responses(1, |r, _| reply = Some(r), |b| body.extend_from_slice(b))
            .await?;
        let response = reply.ok_or(ConnError::Closed)?;
        if response.close {
            self.conn = None;
        }
        Ok(Reply {
            status: response.status,
            body,
            retry_after: response.retry_after,
        })
    }
}
