//! `POST /todos`, `PUT /todos/{id}`, `DELETE /todos/{id}`: authenticate, validate, queue the
//! command durably, answer 202. The worker applies it later.

use axum::extract::{Path, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use floodgate_core::idempotency::REPLAYED;
use utoipa::{IntoParams, IntoResponses};

use crate::error::Error;
use crate::idempotency::{self, Keyed};
use crate::model::{
    now_stamp, storable, Action, Command, CreateTodo, Queued, UpdateTodo, MAX_DESCRIPTION,
    MAX_TITLE,
};
use crate::state::AppState;

fn body<T: serde::de::DeserializeOwned>(raw: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(raw).map_err(|e| Error::Invalid(format!("body: {e}")))
}

fn check_title(title: &str) -> Result<(), Error> {
    if title.trim().is_empty() {
        return Err(Error::Invalid("title must not be empty".into()));
    }
    if title.chars().count() > MAX_TITLE {
        return Err(Error::Invalid(format!(
            "title must be at most {MAX_TITLE} characters"
        )));
    }
    check_storable("title", title)
}

fn check_description(d: &str) -> Result<(), Error> {
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(Error::Invalid(format!(
            "description must be at most {MAX_DESCRIPTION} characters"
        )));
    }
    check_storable("description", d)
}

fn check_storable(field: &str, text: &str) -> Result<(), Error> {
    if storable(text) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{field} must not contain NUL characters"
        )))
    }
}

/// Todo ids are UUIDs; the canonical form keys the bus, so one todo is one partition.
fn todo_id(raw: &str) -> Result<String, Error> {
    uuid::Uuid::parse_str(raw)
        .map(|u| u.to_string())
        .map_err(|_| Error::Invalid("id must be a UUID".into()))
}

fn command(action: Action, id: String, user_id: String) -> Command {
    Command {
        action,
        id,
        title: None,
        description: None,
        completed: None,
        user_id,
        requested_at: now_stamp(),
        command_id: Some(uuid::Uuid::now_v7().to_string()),
    }
}

/// Publishes `cmd` and answers 202. With an Idempotency-Key, a replay publishes again (the
/// first try may have failed before reaching the broker) and the key-derived ids make
/// whichever copies arrive apply once.
async fn queue(
    s: &AppState,
    mut cmd: Command,
    key: Option<&str>,
    message: &'static str,
) -> Result<Response, Error> {
    let replayed = match key {
        Some(k) => {
            let keyed = Keyed::new(&cmd, k);
            keyed.stamp(&mut cmd);
            keyed.record(s, &cmd).await?
        }
        None => false,
    };
    s.publisher.send(&cmd).await?;
    let queued = Queued {
        id: cmd.id,
        message,
    };
    let mut resp = crate::json::encode(StatusCode::ACCEPTED, &queued);
    if replayed {
        resp.headers_mut()
            .insert(REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(resp)
}

/// The `Idempotency-Key` header every write takes, for the OpenAPI document (the handlers
/// read it with `idempotency::key`).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
struct KeyHeader {
    /// Optional, 1-255 visible ASCII characters. A retry with the same key (after a 503 too) is applied once and answered the same, with `Idempotent-Replayed: true`.
    #[param(rename = "Idempotency-Key")]
    idempotency_key: Option<String>,
}

/// What every write may answer besides its 202 and 400, for the OpenAPI document.
#[derive(IntoResponses)]
#[allow(dead_code)]
enum Refusals {
    #[response(status = 401, description = "Missing or invalid token")]
    Unauthorized,
    #[response(
        status = 422,
        description = "Idempotency-Key reused with a different request"
    )]
    KeyReused,
    #[response(status = 503, description = "Bus unavailable", headers(("Retry-After" = u32)))]
    BusDown,
}

/// Queue a new todo.
#[utoipa::path(
    post,
    path = "/todos",
    tag = "todos",
    request_body = CreateTodo,
    params(KeyHeader),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Queued", body = Queued),
        (status = 400, description = "Invalid request"),
        Refusals,
    )
)]
pub async fn create(
    State(s): State<AppState>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, Error> {
    let user = s.verifier.user(headers.get(AUTHORIZATION))?;
    let key = idempotency::key(&headers)?;
    let b: CreateTodo = body(&raw)?;
    let title = b
        .title
        .ok_or_else(|| Error::Invalid("title is required".into()))?;
    check_title(&title)?;
    let description = b.description.unwrap_or_default();
    check_description(&description)?;
    let mut cmd = command(Action::Create, uuid::Uuid::now_v7().to_string(), user);
    cmd.title = Some(title);
    cmd.description = Some(description);
    queue(&s, cmd, key, "Todo creation queued").await
}

/// Queue a change to one's own todo.
#[utoipa::path(
    put,
    path = "/todos/{id}",
    tag = "todos",
    params(
        ("id" = String, Path, description = "Todo id (UUID)"),
        KeyHeader,
    ),
    request_body = UpdateTodo,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Queued (applied only if the todo exists and is yours)", body = Queued),
        (status = 400, description = "Invalid request"),
        Refusals,
    )
)]
pub async fn update(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, Error> {
    let user = s.verifier.user(headers.get(AUTHORIZATION))?;
    let id = todo_id(&id)?;
    let key = idempotency::key(&headers)?;
    let b: UpdateTodo = body(&raw)?;
    if b.title.is_none() && b.description.is_none() && b.completed.is_none() {
        return Err(Error::Invalid(
            "give at least one of title, description, completed".into(),
        ));
    }
    if let Some(t) = &b.title {
        check_title(t)?;
    }
    if let Some(d) = &b.description {
        check_description(d)?;
    }
    let mut cmd = command(Action::Update, id, user);
    cmd.title = b.title;
    cmd.description = b.description;
    cmd.completed = b.completed;
    queue(&s, cmd, key, "Todo update queued").await
}

/// Queue deletion of one's own todo.
#[utoipa::path(
    delete,
    path = "/todos/{id}",
    tag = "todos",
    params(
        ("id" = String, Path, description = "Todo id (UUID)"),
        KeyHeader,
    ),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Queued (applied only if the todo exists and is yours)", body = Queued),
        (status = 400, description = "Invalid id"),
        Refusals,
    )
)]
pub async fn delete(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let user = s.verifier.user(headers.get(AUTHORIZATION))?;
    let id = todo_id(&id)?;
    let key = idempotency::key(&headers)?;
    let cmd = command(Action::Delete, id, user);
    queue(&s, cmd, key, "Todo deletion queued").await
}
