//! A request body held to the body deadline. The watchdog only raises a flag; the body
//! checks it on each poll (one relaxed load), so no timer is armed per request.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::state::ConnState;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body did not arrive within the body timeout")]
    Late,
    #[error(transparent)]
    Read(#[from] hyper::Error),
}

pin_project_lite::pin_project! {
    pub struct TimedBody {
        #[pin]
        pub inner: Incoming,
        pub state: Arc<ConnState>,
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let mut this = self.project();
        if this.state.body_is_late() {
            return Poll::Ready(Some(Err(BodyError::Late)));
        }
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        if frame.is_none() || this.inner.is_end_stream() {
            this.state.on_body_end();
        }
        Poll::Ready(frame.map(|f| f.map_err(BodyError::Read)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
