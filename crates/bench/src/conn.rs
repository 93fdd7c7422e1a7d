//! One keep-alive HTTP/1.1 connection: writes raw request bytes and reads responses into a
//! reused buffer.

use std::net::SocketAddr;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::parse::{ParseError, Response, ResponseParser, MAX_HEAD};

/// Read buffer size: large enough for a pipelined batch of small responses in one read.
const READ_BUF: usize = 64 * 1024;
const _: () = assert!(READ_BUF >= 2 * MAX_HEAD);

/// Why a connection failed; the connection must be dropped afterwards.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("write: {0}")]
    Write(std::io::Error),
    #[error("read: {0}")]
    Read(std::io::Error),
    #[error("connection closed by the server")]
    Closed,
    #[error("parse: {0}")]
    Parse(#[from] ParseError),
}

pub struct Conn {
    stream: TcpStream,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    parser: ResponseParser,
    /// Bytes read from the socket so far.
    pub bytes_read: u64,
}

impl Conn {
    /// Connects to the first address that answers.
    pub async fn connect(addrs: &[SocketAddr], no_body: bool) -> Result<Self, ConnError> {
        let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    // Requests must leave at once, not wait for Nagle's timer.
                    stream.set_nodelay(true).map_err(ConnError::Connect)?;
                    return Ok(Self {
                        stream,
                        buf: vec![0; READ_BUF].into_boxed_slice(),
                        start: 0,
                        end: 0,
                        parser: ResponseParser::new(no_body),
                        bytes_read: 0,
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(ConnError::Connect(last))
    }

    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        self.stream.write_all(bytes).await.map_err(ConnError::Write)
    }

    /// Reads until `want` responses have completed, calling `on_response` with each and the
    /// time its last byte arrived. Body bytes go to `on_body`. A response that asks to close
    /// the connection ends the read early (the caller sees fewer than `want`).
    /// Returns the number of responses read.
    pub async fn read_responses(
        &mut self,
        want: usize,
        on_response: impl FnMut(Response, Instant),
        on_body: impl FnMut(&[u8]),
    ) -> Result<usize, ConnError> {
        self.read_between(want, want, on_response, on_body).await
    }

    /// Like `read_responses`, but returns as soon as at least `min` responses completed,
    /// taking up to `max` of those already received (a pipelining window refills then).
    pub async fn read_between(
        &mut self,
        min: usize,
        max: usize,
        mut on_response: impl FnMut(Response, Instant),
        mut on_body: impl FnMut(&[u8]),
    ) -> Result<usize, ConnError> {
        let want = max;
        let mut got = 0;
        // Leftover bytes from an earlier read may already hold responses.
        let mut now = Instant::now();
        loop {
            while got < want && self.start < self.end {
                let (used, done) = self
                    .parser
                    .advance(&self.buf[self.start..self.end], &mut on_body)?;
                self.start += used;
                match done {
                    Some(response) => {
                        got += 1;
                        on_response(response, now);
                        if response.close {
                            return Ok(got);
                        }
                    }
                    None => break,
                }
            }
            if got >= min {
                return Ok(got);
            }
            self.make_room();
            let n = self
                .stream
                .read(&mut self.buf[self.end..])
                .await
                .map_err(ConnError::Read)?;
            now = Instant::now();
            if n == 0 {
                return match self.parser.eof()? {
                    Some(response) => {
                        on_response(response, now);
                        Ok(got + 1)
                    }
                    None => Err(ConnError::Closed),
                };
            }
            self.bytes_read += n as u64;
            self.end += n;
        }
    }

    /// Keeps unparsed bytes (a partial head) and frees the rest of the buffer.
    fn make_room(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() || self.start > self.buf.len() / 2 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }
}

/// Why a request got no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Connect,
    Read,
    Write,
    Timeout,
    Parse,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 5] = [
        ErrorKind::Connect,
        ErrorKind::Read,
        ErrorKind::Write,
        ErrorKind::Timeout,
        ErrorKind::Parse,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Read => "read",
            ErrorKind::Write => "write",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Parse => "parse",
        }
    }
}

impl From<&ConnError> for ErrorKind {
    fn from(error: &ConnError) -> Self {
        match error {
            ConnError::Connect(_) => ErrorKind::Connect,
            ConnError::Write(_) => ErrorKind::Write,
            ConnError::Read(_) | ConnError::Closed => ErrorKind::Read,
            ConnError::Parse(_) => ErrorKind::Parse,
        }
    }
}
