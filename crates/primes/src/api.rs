//! `POST /generate` and `GET /status/{request_id}`, and their OpenAPI description.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use floodgate_bus::Outgoing;
use floodgate_core::http::reply;
use floodgate_core::telemetry::trace;
use utoipa::OpenApi;
use uuid::Uuid;

use crate::error::Error;
use crate::model::{Detail, GenerateBody, JobStatus, Submitted, ValidationErrors, ValidationItem};
use crate::queue::Reservation;
use crate::state::ApiState;
use crate::{input, job, status};

/// Queue a job computing the first n primes.
#[utoipa::path(
    post,
    path = "/generate",
    tag = "primes",
    params(("n" = Option<i64>, Query, description = "How many primes (1..=PRIMES_MAX_N); or send {\"n\":…}")),
    request_body(content = Option<GenerateBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "Queued", body = Submitted),
        (status = 400, description = "n <= 0", body = Detail),
        (status = 422, description = "n missing, not an integer, or above PRIMES_MAX_N", body = ValidationErrors),
        (status = 503, description = "Queue full or backend down; see Retry-After", body = Detail),
    )
)]
pub async fn generate(
    State(state): State<ApiState>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, Error> {
    let config = &state.settings;
    let n = input::requested_n(query.as_deref(), &body, config.max_n)?;
    let id = Uuid::new_v4();
    let backends = &state.ctx.backends;
    let slot = Reservation::take(
        &backends.store,
        &state.pool,
        &id,
        state.opts.max_queued,
        state.opts.queue_lease,
    )
    .await?;
    // Pending goes in before the job is published, so a fast worker always finds it.
    let key = status::key(&id);
    let written = backends
        .store
        .set(
            &key,
            Bytes::from_static(status::PENDING),
            Some(config.result_ttl),
        )
        .await;
    if let Err(e) = written {
        slot.undo().await;
        return Err(e.into());
    }
    let payload = job::encode(&id, n);
    let key_bytes = id.hyphenated().to_string();
    let job = Outgoing {
        topic: &config.topic,
        key: Some(key_bytes.as_bytes()),
        payload: payload.as_bytes(),
        headers: &[],
    };
    let published = trace::publish(&*backends.bus, job).await;
    if let Err(e) = published {
        slot.undo().await;
        return Err(e.into());
    }
    slot.keep();
    metrics::counter!("prime_jobs_submitted_total").increment(1);
    Ok(json(Bytes::from(format!(
        r#"{{"request_id":"{}"}}"#,
        id.hyphenated()
    ))))
}

/// The status of a job, and its result once complete.
#[utoipa::path(
    get,
    path = "/status/{request_id}",
    tag = "primes",
    params(("request_id" = String, Path, description = "The id returned by POST /generate")),
    responses(
        (status = 200, description = "Current status", body = JobStatus),
        (status = 404, description = "Unknown or expired request_id", body = Detail),
        (status = 503, description = "Store down; see Retry-After", body = Detail),
    )
)]
pub async fn job_status(
    State(state): State<ApiState>,
    Path(request_id): Path<String>,
) -> Result<Response, Error> {
    let id = Uuid::parse_str(&request_id).map_err(|_| Error::UnknownRequest)?;
    match state.ctx.backends.store.get(&status::key(&id)).await? {
        Some(record) => Ok(json(record)),
        None => Err(Error::UnknownRequest),
    }
}

fn json(body: Bytes) -> Response {
    reply::json(StatusCode::OK, body)
}

#[derive(OpenApi)]
#[openapi(
    paths(generate, job_status),
    components(schemas(
        GenerateBody,
        Submitted,
        JobStatus,
        Detail,
        ValidationErrors,
        ValidationItem
    )),
    tags((name = "primes", description = "Asynchronous prime generation (seed 002)"))
)]
struct ApiDoc;

/// The OpenAPI description of the prime-job routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
