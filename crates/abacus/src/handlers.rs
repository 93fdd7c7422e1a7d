//! The three routes. Auth and the rate limit already ran (guard.rs); each handler checks
//! its headers, parses the body and makes exactly one store call.

use std::sync::Arc;

use std::convert::Infallible;

use axum::extract::{FromRequestParts, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use floodgate_store::{CounterOp, IdemOutcome};

use crate::body::parse_number;
use crate::docs::{AddedResponse, Detail, ResetResponse, SumResponse, ValidationBody};
use crate::error::AbacusError;
use crate::guard::Caller;
use crate::idempotency::{self, IdempotencyKey, REPLAYED};
use crate::telemetry::timed;
use crate::{Abacus, SUM_KEY};

/// The sum after a write, and whether it came from an idempotency record.
struct Written {
    sum: i64,
    replayed: bool,
}

/// Current value of the sum.
#[utoipa::path(
    get,
    path = "/abacus/sum",
    tag = "abacus",
    security(("abacus_api_key" = [])),
    responses(
        (status = 200, description = "The current sum", body = SumResponse),
        (status = 401, description = "Missing API key", body = Detail),
        (status = 403, description = "Invalid API key", body = Detail),
        (status = 429, description = "Rate limit exceeded (see Retry-After)", body = Detail),
        (status = 503, description = "Store unreachable (see Retry-After)", body = Detail),
    )
)]
pub async fn get_sum(State(app): State<Arc<Abacus>>) -> Result<Json<SumResponse>, AbacusError> {
    app.adopted().await?;
    let current_sum = timed("get", app.store.get_i64(SUM_KEY)).await?;
    Ok(Json(SumResponse { current_sum }))
}

/// Adds a number to the sum (exact 64-bit arithmetic; overflow is refused).
#[utoipa::path(
    post,
    path = "/abacus/number",
    tag = "abacus",
    security(("abacus_api_key" = [])),
    request_body = crate::docs::NumberRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header,
         description = "Up to 200 printable ASCII characters (trimmed); required unless ABACUS_IDEMPOTENCY_REQUIRED=false. A repeat returns the first response with `Idempotent-Replayed: true`."),
    ),
    responses(
        (status = 200, description = "Added", body = AddedResponse),
        (status = 400, description = "Not an integer in i64 range, a Content-Type other than JSON (ValidationBody); a bad Idempotency-Key, or the sum would overflow (Detail)", body = ValidationBody),
        (status = 401, description = "Missing API key", body = Detail),
        (status = 403, description = "Invalid API key", body = Detail),
        (status = 409, description = "Idempotency-Key reused with a different body", body = Detail),
        (status = 429, description = "Rate limit exceeded (see Retry-After)", body = Detail),
        (status = 503, description = "Store unreachable (see Retry-After); retry with the same Idempotency-Key", body = Detail),
    )
)]
pub async fn add_number(
    State(app): State<Arc<Abacus>>,
    caller: Option<Extension<Caller>>,
    key: IdempotencyKey,
    content_type: ContentType,
    body: Bytes,
) -> Result<Response, AbacusError> {
    // The seed's order: the body, then the key's length, then the record.
    let n = parse_number(content_type.bytes(), &body)?;
    let key = key.checked()?;
    app.adopted().await?;
    if key.is_none() && app.idempotency_required {
        return Err(AbacusError::IdempotencyKeyRequired);
    }
    let written = match key {
        Some(k) => apply_once(&app, "number", caller, k, CounterOp::Add(n)).await,
        None => timed("incrby", app.store.incr_by(SUM_KEY, n))
            .await
            .map(|sum| Written {
                sum,
                replayed: false,
            })
            .map_err(AbacusError::from),
    }
    .map_err(|e| e.adding(n))?;
    let body = AddedResponse {
        message: "Number added successfully.",
        current_sum: written.sum,
    };
    Ok(respond(body, written.replayed))
}

/// Replaces the sum.
#[utoipa::path(
    put,
    path = "/abacus/sum",
    tag = "abacus",
    security(("abacus_api_key" = [])),
    request_body = crate::docs::NumberRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header,
         description = "Optional; when present a repeat returns the first response with `Idempotent-Replayed: true`."),
    ),
    responses(
        (status = 200, description = "Reset", body = ResetResponse),
        (status = 400, description = "Not an integer in i64 range, or a Content-Type other than JSON", body = ValidationBody),
        (status = 401, description = "Missing API key", body = Detail),
        (status = 403, description = "Invalid API key", body = Detail),
        (status = 409, description = "Idempotency-Key reused with a different body", body = Detail),
        (status = 429, description = "Rate limit exceeded (see Retry-After)", body = Detail),
        (status = 503, description = "Store unreachable (see Retry-After)", body = Detail),
    )
)]
pub async fn reset_sum(
    State(app): State<Arc<Abacus>>,
    caller: Option<Extension<Caller>>,
    key: IdempotencyKey,
    content_type: ContentType,
    body: Bytes,
) -> Result<Response, AbacusError> {
    let n = parse_number(content_type.bytes(), &body)?;
    let key = key.checked()?;
    app.adopted().await?;
    let written = match key {
        Some(k) => apply_once(&app, "sum", caller, k, CounterOp::Set(n)).await?,
        None => {
            let text = Bytes::from(n.to_string());
            timed("set", app.store.set(SUM_KEY, text, None)).await?;
            Written {
                sum: n,
                replayed: false,
            }
        }
    };
    let body = ResetResponse {
        message: "Sum reset successfully.",
        new_sum: written.sum,
    };
    Ok(respond(body, written.replayed))
}

/// Applies `op` at most once for this caller, route and key: the change and its record
/// commit together, so a client retrying after a lost reply gets the first result back.
async fn apply_once(
    app: &Abacus,
    route: &str,
    caller: Option<Extension<Caller>>,
    key: &str,
    op: CounterOp,
) -> Result<Written, AbacusError> {
    let scope = caller.map_or_else(|| app.anonymous.clone(), |Extension(c)| c.scope);
    let record = idempotency::record_key(route, &scope, key);
    let fingerprint = idempotency::fingerprint(op);
    let call = app
        .store
        .idempotent_apply(SUM_KEY, op, &record, &fingerprint, app.idempotency_ttl);
    match timed("idempotent_apply", call).await? {
        IdemOutcome::Applied(sum) => Ok(Written {
            sum,
            replayed: false,
        }),
        IdemOutcome::Replayed(sum) => {
            crate::telemetry::replayed();
            Ok(Written {
                sum,
                replayed: true,
            })
        }
        IdemOutcome::Mismatch => Err(AbacusError::IdempotencyMismatch),
        IdemOutcome::Overflow => Err(AbacusError::Overflow { below: false }),
    }
}

/// The request's Content-Type, taken without copying the other headers.
pub struct ContentType(Option<HeaderValue>);

impl ContentType {
    fn bytes(&self) -> Option<&[u8]> {
        self.0.as_ref().map(HeaderValue::as_bytes)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ContentType {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(ContentType(parts.headers.get(CONTENT_TYPE).cloned()))
    }
}

fn respond<T: serde::Serialize>(body: T, replayed: bool) -> Response {
    let mut resp = Json(body).into_response();
    if replayed {
        resp.headers_mut()
            .insert(REPLAYED, HeaderValue::from_static("true"));
    }
    resp
}
