//! The three routes. Auth already ran (guard.rs), and for GET the rate limit too; each
//! handler checks its headers, parses the body and makes exactly one store call. A write
//! checks the rate limit itself: a keyed one inside that call (`Limiter::limited_apply`),
//! an unkeyed one just before it; it reports what the limiter said in a [`Counted`] on its
//! response, for the guard's headers. The OpenAPI description of the three is here too.

use std::sync::Arc;

use std::convert::Infallible;

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use floodgate_store::{Apply, CounterOp, IdemOutcome};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi};

use crate::body::parse_number;
use crate::error::Error;
use crate::guard::{rate_limited, Caller, Counted};
use crate::idempotency::{self, IdempotencyKey, REPLAYED};
use crate::model::{
    AddedResponse, Detail, FieldError, NumberRequest, ResetResponse, SumResponse, ValidationBody,
};
use crate::telemetry::timed;
use crate::{Abacus, SUM_KEY};

/// The sum after a write, and whether it came from an idempotency record.
struct Written {
    sum: i64,
    replayed: bool,
}

/// What every route may answer for its caller (guard.rs), for the OpenAPI document.
#[derive(IntoResponses)]
#[allow(dead_code)]
enum CallerRefusals {
    #[response(status = 401, description = "Missing API key")]
    Missing(Detail),
    #[response(status = 403, description = "Invalid API key")]
    Invalid(Detail),
    #[response(status = 429, description = "Rate limit exceeded (see Retry-After)")]
    Limited(Detail),
}

/// Current value of the sum.
#[utoipa::path(
    get,
    path = "/abacus/sum",
    tag = "abacus",
    security(("abacus_api_key" = [])),
    responses(
        (status = 200, description = "The current sum", body = SumResponse),
        CallerRefusals,
        (status = 503, description = "Store unreachable (see Retry-After)", body = Detail),
    )
)]
pub async fn get_sum(State(app): State<Arc<Abacus>>) -> Result<Json<SumResponse>, Error> {
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
    request_body = crate::model::NumberRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header,
         description = "Up to 200 printable ASCII characters (trimmed); required unless ABACUS_IDEMPOTENCY_REQUIRED=false. A repeat returns the first response with `Idempotent-Replayed: true`."),
    ),
    responses(
        (status = 200, description = "Added", body = AddedResponse),
        (status = 400, description = "Not an integer in i64 range, a Content-Type other than JSON (ValidationBody); a bad Idempotency-Key, or the sum would overflow (Detail)", body = ValidationBody),
        (status = 409, description = "Idempotency-Key reused with a different body", body = Detail),
        CallerRefusals,
        (status = 503, description = "Store unreachable (see Retry-After); retry with the same Idempotency-Key", body = Detail),
    )
)]
pub async fn add_number(State(app): State<Arc<Abacus>>, req: WriteRequest) -> Response {
    write_sum(&app, req, CounterOp::Add).await
}

/// Replaces the sum.
#[utoipa::path(
    put,
    path = "/abacus/sum",
    tag = "abacus",
    security(("abacus_api_key" = [])),
    request_body = crate::model::NumberRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header,
         description = "Optional; when present a repeat returns the first response with `Idempotent-Replayed: true`."),
    ),
    responses(
        (status = 200, description = "Reset", body = ResetResponse),
        (status = 400, description = "Not an integer in i64 range, or a Content-Type other than JSON", body = ValidationBody),
        (status = 409, description = "Idempotency-Key reused with a different body", body = Detail),
        CallerRefusals,
        (status = 503, description = "Store unreachable (see Retry-After)", body = Detail),
    )
)]
pub async fn reset_sum(State(app): State<Arc<Abacus>>, req: WriteRequest) -> Response {
    write_sum(&app, req, CounterOp::Set).await
}

/// What a write brings besides the sum's state: its caller (set by the guard), its
/// Idempotency-Key, Content-Type and body, taken in that order.
pub struct WriteRequest {
    caller: Option<Caller>,
    key: IdempotencyKey,
    content_type: ContentType,
    body: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for WriteRequest {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let caller = parts.extensions.get::<Caller>().cloned();
        let Ok(key) = IdempotencyKey::from_request_parts(&mut parts, state).await;
        let Ok(content_type) = ContentType::from_request_parts(&mut parts, state).await;
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(WriteRequest {
            caller,
            key,
            content_type,
            body,
        })
    }
}

/// A write of `op(number)`: `POST /abacus/number` adds, `PUT /abacus/sum` sets.
async fn write_sum(app: &Abacus, req: WriteRequest, op: fn(i64) -> CounterOp) -> Response {
    let mut write = Write::new(app, req.caller);
    let result = apply(app, &mut write, req.key, &req.content_type, &req.body, op).await;
    write.answer(result)
}

async fn apply(
    app: &Abacus,
    write: &mut Write,
    key: IdempotencyKey,
    content_type: &ContentType,
    body: &[u8],
    op: fn(i64) -> CounterOp,
) -> Result<Response, Error> {
    // The seed's order: the body, then the key's length, then the record.
    let n = parse_number(content_type.bytes(), body)?;
    let key = key.checked()?;
    app.adopted().await?;
    let op = op(n);
    let adding = matches!(op, CounterOp::Add(_));
    if adding && key.is_none() && app.idempotency_required {
        return Err(Error::IdempotencyKeyRequired);
    }
    // An overflow while adding is an underflow when n is negative.
    let of_op = |e: Error| if adding { e.adding(n) } else { e };
    let route = if adding { "number" } else { "sum" };
    let written = match key {
        Some(k) => write.apply_once(app, route, k, op).await.map_err(of_op)?,
        None => {
            write.admit(app).await?;
            let sum = match op {
                CounterOp::Add(n) => timed("incrby", app.store.incr_by(SUM_KEY, n))
                    .await
                    .map_err(|e| of_op(Error::from(e)))?,
                CounterOp::Set(n) => {
                    let text = Bytes::from(n.to_string());
                    timed("set", app.store.set(SUM_KEY, text, None)).await?;
                    n
                }
            };
            Written {
                sum,
                replayed: false,
            }
        }
    };
    Ok(match op {
        CounterOp::Add(_) => respond(
            AddedResponse {
                message: "Number added successfully.",
                current_sum: written.sum,
            },
            written.replayed,
        ),
        CounterOp::Set(_) => respond(
            ResetResponse {
                message: "Sum reset successfully.",
                new_sum: written.sum,
            },
            written.replayed,
        ),
    })
}

/// One write's caller, and what the rate limit said about it (the guard left the limit
/// to the handler: see guard.rs).
struct Write {
    caller: Caller,
    counted: Option<Counted>,
}

impl Write {
    fn new(app: &Abacus, caller: Option<Caller>) -> Self {
        let caller = caller.unwrap_or_else(|| Caller {
            scope: app.anonymous.clone(),
            bucket: app.anonymous.clone(),
        });
        Write {
            caller,
            counted: None,
        }
    }

    /// Counts a write without an Idempotency-Key before it changes anything.
    async fn admit(&mut self, app: &Abacus) -> Result<(), Error> {
        let Some(limiter) = &app.limiter else {
            return Ok(());
        };
        let verdict = match timed("rate_limit", limiter.check(&self.caller.bucket)).await {
            Ok(v) => v,
            Err(e) => {
                self.counted = Some(Counted::Unknown);
                return Err(e.into());
            }
        };
        self.counted = Some(Counted::Decided(verdict));
        match verdict.allowed() {
            true => Ok(()),
            false => Err(rate_limited(verdict)),
        }
    }

    /// Applies `op` at most once for this caller, route and key: the change and its record
    /// commit together, so a client retrying after a lost reply gets the first result back.
    /// With the rate limit on, the limit is checked in the same store call.
    async fn apply_once(
        &mut self,
        app: &Abacus,
        route: &str,
        key: &str,
        op: CounterOp,
    ) -> Result<Written, Error> {
        let record = idempotency::record_key(route, &self.caller.scope, key);
        let fingerprint = idempotency::fingerprint(op);
        let apply = Apply {
            counter: SUM_KEY,
            op,
            key: &record,
            fingerprint: &fingerprint,
            ttl: app.idempotency_ttl,
        };
        // Named as the seed names the apply: the limit rides along with it.
        let outcome = match &app.limiter {
            None => timed("idempotent_apply", app.store.idempotent_apply(apply)).await?,
            Some(limiter) => {
                let call = limiter.limited_apply(&self.caller.bucket, apply);
                let (verdict, outcome) = match timed("idempotent_apply", call).await {
                    Ok(done) => done,
                    Err(e) => {
                        self.counted = Some(Counted::Unknown);
                        return Err(e.into());
                    }
                };
                self.counted = Some(Counted::Decided(verdict));
                outcome.ok_or_else(|| rate_limited(verdict))?
            }
        };
        match outcome {
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
            IdemOutcome::Mismatch => Err(Error::IdempotencyMismatch),
            IdemOutcome::Overflow => Err(Error::Overflow { below: false }),
        }
    }

    /// The response, carrying what the limiter said for the guard.
    fn answer(self, result: Result<Response, Error>) -> Response {
        let mut resp = result.unwrap_or_else(IntoResponse::into_response);
        if let Some(counted) = self.counted {
            resp.extensions_mut().insert(counted);
        }
        resp
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

/// Adds the `X-API-Key` scheme the paths refer to.
struct ApiKeyScheme;

impl Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "abacus_api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    paths(get_sum, add_number, reset_sum),
    components(schemas(
        NumberRequest,
        SumResponse,
        AddedResponse,
        ResetResponse,
        Detail,
        ValidationBody,
        FieldError
    )),
    modifiers(&ApiKeyScheme),
    tags((name = "abacus", description = "A running sum shared by every node"))
)]
struct AbacusDoc;

/// The OpenAPI description of the abacus routes, for merging into the node's document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    AbacusDoc::openapi()
}
