//! The three routes. Auth and the rate limit already ran (guard.rs); each handler checks
//! its headers, parses the body and makes exactly one store call.

use std::sync::Arc;

use axum::extract::State;
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
         description = "1-255 visible ASCII characters; required unless ABACUS_IDEMPOTENCY_REQUIRED=false. A repeat returns the first response with `Idempotent-Replayed: true`."),
    ),
    responses(
        (status = 200, description = "Added", body = AddedResponse),
        (status = 400, description = "Not an integer in i64 range, or the sum would overflow", body = ValidationBody),
        (status = 401, description = "Missing API key", body = Detail),
        (status = 403, description = "Invalid API key", body = Detail),
        (status = 422, description = "Idempotency-Key reused with a different body", body = Detail),
        (status = 429, description = "Rate limit exceeded (see Retry-After)", body = Detail),
        (status = 503, description = "Store unreachable (see Retry-After); retry with the same Idempotency-Key", body = Detail),
    )
)]
pub async fn add_number(
    State(app): State<Arc<Abacus>>,
    caller: Option<Extension<Caller>>,
    key: IdempotencyKey,
    body: Bytes,
) -> Result<Response, AbacusError> {
    if key.0.is_none() && app.idempotency_required {
        return Err(AbacusError::IdempotencyKeyRequired);
    }
    let n = parse_number(&body)?;
    let written = match key.as_str() {
        Some(k) => apply_once(&app, "number", caller, k, CounterOp::Add(n)).await?,
        None => Written {
            sum: timed("incrby", app.store.incr_by(SUM_KEY, n)).await?,
            replayed: false,
        },
    };
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
        (status = 400, description = "Not an integer in i64 range", body = ValidationBody),
        (status = 401, description = "Missing API key", body = Detail),
        (status = 403, description = "Invalid API key", body = Detail),
        (status = 422, description = "Idempotency-Key reused with a different body", body = Detail),
        (status = 429, description = "Rate limit exceeded (see Retry-After)", body = Detail),
        (status = 503, description = "Store unreachable (see Retry-After)", body = Detail),
    )
)]
pub async fn reset_sum(
    State(app): State<Arc<Abacus>>,
    caller: Option<Extension<Caller>>,
    key: IdempotencyKey,
    body: Bytes,
) -> Result<Response, AbacusError> {
    let n = parse_number(&body)?;
    let written = match key.as_str() {
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
        IdemOutcome::Replayed(sum) => Ok(Written {
            sum,
            replayed: true,
        }),
        IdemOutcome::Mismatch => Err(AbacusError::IdempotencyMismatch),
        IdemOutcome::Overflow => Err(AbacusError::Overflow),
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
