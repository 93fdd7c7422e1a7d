//! The TCP stream as hyper sees it: every successful read or write is reported to the
//! connection state (one relaxed add), so the watchdog can tell silence from traffic and
//! the first byte of a request starts the header deadline; a write that finds the socket
//! full is noted, so a connection is never parked with an answer half sent. Bytes a parked
//! hyper had read but not used are handed out again, first, to the next one.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::state::ConnState;

pub struct Tracked {
    pub inner: TcpStream,
    pub state: Arc<ConnState>,
    /// Read from the socket by an earlier hyper connection, not yet parsed: read again
    /// before the socket.
    unread: Bytes,
}

impl Tracked {
    pub fn new(inner: TcpStream, state: Arc<ConnState>) -> Self {
        Tracked {
            inner,
            state,
            unread: Bytes::new(),
        }
    }

    /// Keeps what a parked hyper connection had read and not parsed, ahead of anything not
    /// yet handed out. Copied to its own size: hyper's whole read buffer is let go.
    pub fn unread(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut all = Vec::with_capacity(bytes.len() + self.unread.len());
        all.extend_from_slice(bytes);
        all.extend_from_slice(&self.unread);
        self.unread = Bytes::from(all);
    }

    /// Unread bytes hold a whole request head: they must be served without waiting for the
    /// client, who has nothing more to send.
    pub fn holds_request(&self) -> bool {
        self.unread.windows(4).any(|w| w == b"\r\n\r\n")
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.unread.is_empty() {
            let n = this.unread.len().min(buf.remaining());
            buf.put_slice(&this.unread[..n]);
            this.unread.advance(n);
            if this.unread.is_empty() {
                this.unread = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            if buf.filled().len() > before {
                this.state.on_io(true);
            }
        }
        r
    }
}

impl Tracked {
    fn wrote<T>(&self, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match &r {
            Poll::Ready(Ok(_)) => self.state.on_write(false),
            Poll::Pending => self.state.on_write(true),
            Poll::Ready(Err(_)) => {}
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.wrote(r)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(r)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
