//! A raw-TCP HTTP/1.1 test server with scripted behaviour: each request goes to a handler
//! that decides status, body, framing, delay, or silence.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use floodgate_bench::{BenchArgs, Summary};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone)]
pub struct Request {
    /// Position of this request among all requests the server received (from 0).
    pub index: u64,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length,
    Chunked,
    /// No length: the body ends when the server closes the connection.
    Close,
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub delay: Duration,
    pub framing: Framing,
    /// Send `Connection: close` and close after this response.
    pub close: bool,
    /// Never answer (the connection stays open and silent).
    pub silent: bool,
}

impl Reply {
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Self::status(200, body)
    }

    pub fn status(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            body: body.into(),
            delay: Duration::ZERO,
            framing: Framing::Length,
            close: false,
            silent: false,
        }
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn framing(mut self, framing: Framing) -> Self {
        self.framing = framing;
        self
    }

    pub fn close(mut self) -> Self {
        self.close = true;
        self
    }

    pub fn silent(mut self) -> Self {
        self.silent = true;
        self
    }
}

pub type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

pub struct Server {
    pub url: String,
    pub requests: Arc<AtomicU64>,
}

impl Server {
    pub fn count(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

pub async fn serve(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicU64::new(0));
    let handler: Handler = Arc::new(handler);
    let counter = requests.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(connection(stream, handler.clone(), counter.clone()));
        }
    });
    Server { url, requests }
}

/// Reads one request from `buf` (plus the socket); None when the peer closed.
pub async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Request> {
    loop {
        if let Some((request, used)) = parse_request(buf) {
            buf.drain(..used);
            return Some(request);
        }
        let mut chunk = [0u8; 16384];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Parses a complete request at the start of `buf`: (request, bytes used).
pub fn parse_request(buf: &[u8]) -> Option<(Request, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let total = end + 4 + length;
    if buf.len() < total {
        return None;
    }
    let body = buf[end + 4..total].to_vec();
    Some((
        Request {
            index: 0,
            method,
            path,
            headers,
            body,
        },
        total,
    ))
}

pub fn encode(reply: &Reply) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {} Test\r\n", reply.status).into_bytes();
    if reply.close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    match reply.framing {
        Framing::Length => {
            out.extend(format!("Content-Length: {}\r\n\r\n", reply.body.len()).bytes());
            out.extend_from_slice(&reply.body);
        }
        Framing::Chunked => {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            for piece in reply.body.chunks(3) {
                out.extend(format!("{:x}\r\n", piece.len()).bytes());
                out.extend_from_slice(piece);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        }
        Framing::Close => {
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&reply.body);
        }
    }
    out
}

async fn connection(mut stream: TcpStream, handler: Handler, counter: Arc<AtomicU64>) {
    let mut buf = Vec::new();
    while let Some(mut request) = read_request(&mut stream, &mut buf).await {
        request.index = counter.fetch_add(1, Ordering::SeqCst);
        let reply = handler(&request);
        if reply.silent {
            // Hold the connection open without answering until the client gives up.
            let mut sink = [0u8; 1024];
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            return;
        }
        if !reply.delay.is_zero() {
            tokio::time::sleep(reply.delay).await;
        }
        if stream.write_all(&encode(&reply)).await.is_err() {
            return;
        }
        if reply.close || reply.framing == Framing::Close {
            return;
        }
    }
}

pub fn args(list: &[&str]) -> BenchArgs {
    use clap::Parser;
    BenchArgs::try_parse_from(std::iter::once("floodgate bench").chain(list.iter().copied()))
        .unwrap()
}

pub async fn load(list: &[&str]) -> Summary {
    floodgate_bench::load(&args(list)).await.unwrap()
}
