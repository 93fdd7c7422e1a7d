//! Applying a batch of commands in one transaction, idempotently: each command id is
//! recorded in `todo_applied_commands` in the same transaction, so a redelivered command
//! changes nothing. Commands run in batch order (the bus keeps per-todo order).

use std::collections::HashSet;

use floodgate_db::{Db, DbResult};
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, Row, Transaction};
use tracing::Instrument;

use crate::model::{format_stamp, now_stamp, Action, Command};
use crate::params::{numbered, rows};
use crate::repo::begin_write;
use crate::stamps::Stamps;

/// Bind parameters per statement stay far below SQLite's and PostgreSQL's limits.
const IN_CHUNK: usize = 250;

/// A parsed command and the id it is deduplicated by.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub cmd: Command,
    pub command_id: String,
    /// Continues the trace of the request that sent the command (none when tracing is off).
    pub span: tracing::Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Seen before (redelivery): nothing changed.
    Duplicate,
    /// Update/delete of a todo that does not exist.
    Missing,
    /// Update/delete of another user's todo.
    Forbidden,
    /// Create of an id that exists.
    Conflict,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Duplicate => "duplicate",
            Outcome::Missing => "missing",
            Outcome::Forbidden => "forbidden",
            Outcome::Conflict => "conflict",
        }
    }
}

/// Applies `batch` in one transaction; with `clear_outbox`, also deletes the commands'
/// outbox rows in it. Returns one outcome per command.
pub async fn apply_batch(
    db: &Db,
    stamps: Stamps,
    batch: &[Incoming],
    clear_outbox: bool,
) -> DbResult<Vec<Outcome>> {
    let mut tx = begin_write(db).await?;
    let ids: Vec<&str> = batch.iter().map(|i| i.command_id.as_str()).collect();
    let mut seen = applied_among(&mut tx, &ids).await?;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut fresh = Vec::new();
    for item in batch {
        if !seen.insert(item.command_id.clone()) {
            outcomes.push(Outcome::Duplicate);
            continue;
        }
        let outcome = apply_one(&mut tx, stamps, &item.cmd)
            .instrument(item.span.clone())
            .await?;
        outcomes.push(outcome);
        fresh.push(item.command_id.as_str());
    }
    record_applied(&mut tx, &fresh).await?;
    if clear_outbox {
        for chunk in ids.chunks(IN_CHUNK) {
            let sql = in_list("DELETE FROM todo_outbox WHERE command_id", chunk.len());
            bind_all(&sql, chunk).execute(&mut *tx).await?;
        }
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// Deletes dedup records older than `cutoff` (an RFC 3339 stamp); returns how many.
pub async fn prune_applied(db: &Db, cutoff: &str) -> DbResult<u64> {
    let r = sqlx::query("DELETE FROM todo_applied_commands WHERE applied_at < $1")
        .bind(cutoff)
        .execute(db.pool())
        .await?;
    Ok(r.rows_affected())
}

/// `{head} IN ($1, …, $n)`.
fn in_list(head: &str, n: usize) -> String {
    format!("{head} IN ({})", numbered(1, n))
}

/// `sql` with `ids` bound in order.
fn bind_all<'q>(sql: &'q str, ids: &[&'q str]) -> Query<'q, Any, AnyArguments<'q>> {
    ids.iter().fold(sqlx::query(sql), |q, id| q.bind(*id))
}

async fn applied_among(
    tx: &mut Transaction<'static, Any>,
    ids: &[&str],
) -> DbResult<HashSet<String>> {
    let mut found = HashSet::new();
    for chunk in ids.chunks(IN_CHUNK) {
        let head = "SELECT command_id FROM todo_applied_commands WHERE command_id";
        let sql = in_list(head, chunk.len());
        for row in bind_all(&sql, chunk).fetch_all(&mut **tx).await? {
            found.insert(row.try_get::<String, _>(0)?);
        }
    }
    Ok(found)
}

async fn record_applied(tx: &mut Transaction<'static, Any>, ids: &[&str]) -> DbResult<()> {
    let now = now_stamp();
    for chunk in ids.chunks(IN_CHUNK) {
        let values = rows(chunk.len(), 2, |p| format!("({})", numbered(p, 2)));
        let sql =
            format!("INSERT INTO todo_applied_commands (command_id, applied_at) VALUES {values}");
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id).bind(&now);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// `requested_at` in the fixed-precision form the lists are ordered by (producers other
/// than ours may send any RFC 3339 form; `Command::validate` checked it parses).
fn stamp_of(cmd: &Command) -> String {
    time::OffsetDateTime::parse(
        &cmd.requested_at,
        &time::format_description::well_known::Rfc3339,
    )
    .map(format_stamp)
    .unwrap_or_else(|_| now_stamp())
}

async fn apply_one(
    tx: &mut Transaction<'static, Any>,
    stamps: Stamps,
    cmd: &Command,
) -> DbResult<Outcome> {
    let at = stamp_of(cmd);
    let changed = match cmd.action {
        Action::Create => {
            let sql = format!(
                "INSERT INTO todos (id, title, description, completed, user_id, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, {}, {}) ON CONFLICT (id) DO NOTHING",
                stamps.param(6),
                stamps.param(7)
            );
            let r = sqlx::query(&sql)
                .bind(&cmd.id)
                .bind(cmd.title.clone().unwrap_or_default())
                .bind(cmd.description.clone().unwrap_or_default())
                .bind(cmd.completed.unwrap_or(false))
                .bind(&cmd.user_id)
                .bind(&at)
                .bind(&at)
                .execute(&mut **tx)
                .await?;
            return Ok(if r.rows_affected() > 0 {
                Outcome::Applied
            } else {
                Outcome::Conflict
            });
        }
        Action::Update => sqlx::query(&format!(
            "UPDATE todos SET title = COALESCE($1, title), description = COALESCE($2, description),
                 completed = COALESCE($3, completed), updated_at = {}
             WHERE id = $5 AND user_id = $6",
            stamps.param(4)
        ))
        .bind(cmd.title.clone())
        .bind(cmd.description.clone())
        .bind(cmd.completed)
        .bind(&at)
        .bind(&cmd.id)
        .bind(&cmd.user_id)
        .execute(&mut **tx)
        .await?
        .rows_affected(),
        Action::Delete => sqlx::query("DELETE FROM todos WHERE id = $1 AND user_id = $2")
            .bind(&cmd.id)
            .bind(&cmd.user_id)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
    };
    if changed > 0 {
        return Ok(Outcome::Applied);
    }
    // Only the unhappy path pays for finding out why.
    let owner = sqlx::query("SELECT user_id FROM todos WHERE id = $1")
        .bind(&cmd.id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(if owner.is_some() {
        Outcome::Forbidden
    } else {
        Outcome::Missing
    })
}
