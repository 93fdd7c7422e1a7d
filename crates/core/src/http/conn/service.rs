//! The per-connection service hyper calls: it tells the connection state where each request
//! stands (headers in, body in, answered, answer sent), wraps non-empty bodies in the body
//! deadline and hands the peer address to axum as `ConnectInfo`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::header::{CONNECTION, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::future::RouteFuture;
use axum::Router;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use tower::Service;

use super::body::TimedBody;
use super::state::ConnState;

const LATE_BODY: &str = r#"{"detail":"Request body not received in time"}"#;

pub struct ConnService {
    pub router: Router,
    pub peer: SocketAddr,
    pub state: Arc<ConnState>,
}

impl hyper::service::Service<http::Request<Incoming>> for ConnService {
    type Response = http::Response<Answered>;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, req: http::Request<Incoming>) -> Answer {
        let has_body = !req.body().is_end_stream();
        self.state.on_request(has_body);
        let mut req = if has_body {
            let state = self.state.clone();
            req.map(|inner| Body::new(TimedBody { inner, state }))
        } else {
            req.map(Body::new)
        };
        req.extensions_mut().insert(ConnectInfo(self.peer));
        Answer {
            inner: self.router.clone().call(req),
            state: Some(self.state.clone()),
        }
    }
}

pin_project_lite::pin_project! {
    pub struct Answer {
        #[pin]
        inner: RouteFuture<Infallible>,
        // Handed on to the answer's body.
        state: Option<Arc<ConnState>>,
    }
}

impl Future for Answer {
    type Output = Result<http::Response<Answered>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let resp = ready!(this.inner.poll(cx))?;
        let state = this.state.take().expect("Answer polled after completion");
        let resp = if state.on_response() {
            late_body()
        } else {
            resp
        };
        state.set_answering(true);
        Poll::Ready(Ok(resp.map(|inner| Answered { inner, state })))
    }
}

/// An answer's body as hyper takes it: the connection counts as answering until hyper drops
/// it (after its last frame, or when the connection gives up), so it is never parked with
/// an answer still going out.
pub struct Answered {
    inner: Body,
    state: Arc<ConnState>,
}

impl HttpBody for Answered {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Answered {
    fn drop(&mut self) {
        self.state.set_answering(false);
    }
}

/// 408: whatever the handler made of the failed body is replaced, and the connection
/// closes (the rest of the body may still be on its way).
fn late_body() -> Response {
    let mut resp = Response::new(Body::from(LATE_BODY));
    *resp.status_mut() = StatusCode::REQUEST_TIMEOUT;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CONNECTION, HeaderValue::from_static("close"));
    resp
}
