//! The per-connection service hyper calls: it tells the connection state where each request
//! stands (headers in, body in, answered), wraps non-empty bodies in the body deadline and
//! hands the peer address to axum as `ConnectInfo`.

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
use hyper::body::{Body as _, Incoming};
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
    type Response = Response;
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
            state: self.state.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    pub struct Answer {
        #[pin]
        inner: RouteFuture<Infallible>,
        state: Arc<ConnState>,
    }
}

impl Future for Answer {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let resp = ready!(this.inner.poll(cx))?;
        if this.state.on_response() {
            return Poll::Ready(Ok(late_body()));
        }
        Poll::Ready(Ok(resp))
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
