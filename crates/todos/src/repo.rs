//! Reading todos from the database, and the seeder. Writes happen only in the worker
//! (`apply.rs`); SQL is written once for SQLite and PostgreSQL (`$n` placeholders).

use bytes::Bytes;
use floodgate_db::{timed, Db, DbKind, DbResult};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use time::OffsetDateTime;

use crate::model::{format_stamp, go_stamp, Todo};
use crate::params::{numbered, rows};
use crate::stamps::{self, Stamps};

const COLUMNS: &str = "id, title, description, completed, user_id, created_at, updated_at";

/// What lists select: the Any driver cannot decode SQLite's BOOLEAN, so `completed` is read
/// as an integer on both databases; a seed table's NULL description reads as "" (what the
/// seed writes for a todo without one); stamps as `stamps::read` says.
fn select(kind: DbKind) -> String {
    format!(
        "id, title, COALESCE(description, '') AS description, CASE WHEN completed THEN 1 ELSE 0 END AS completed, user_id, {}, {}",
        stamps::read(kind, "created_at"),
        stamps::read(kind, "updated_at")
    )
}
/// Seeded ids are UUIDv5 of `floodgate-seed-todo-N` in this namespace, so reseeding
/// finds the same rows.
const SEED_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5eed_70d0_5eed_70d0_5eed_70d0_5eed_70d0);
const SEED_USER: &str = "seed-user";
/// Rows per INSERT statement and per transaction while seeding.
const SEED_ROWS_PER_STATEMENT: usize = 100;
const SEED_ROWS_PER_TX: usize = 1000;

/// Opens a write transaction. SQLite needs `BEGIN IMMEDIATE`: a deferred transaction that
/// reads first would fail at its first write whenever another writer committed meanwhile.
pub async fn begin_write(db: &Db) -> DbResult<Transaction<'static, Any>> {
    let tx = match db.kind() {
        DbKind::Sqlite => db.pool().begin_with("BEGIN IMMEDIATE").await?,
        DbKind::Postgres => db.pool().begin().await?,
    };
    Ok(tx)
}

fn todo_of(row: &AnyRow) -> Result<Todo, sqlx::Error> {
    Ok(Todo {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        completed: row.try_get::<i64, _>("completed")? != 0,
        user_id: row.try_get("user_id")?,
        // Stored with six digits so the text sorts; served as Go writes it.
        created_at: go_stamp(row.try_get("created_at")?),
        updated_at: go_stamp(row.try_get("updated_at")?),
    })
}

/// The newest `limit` todos, encoded as the JSON array the API serves.
pub async fn list_json(db: &Db, limit: u64) -> DbResult<Bytes> {
    let sql = format!(
        "SELECT {} FROM todos ORDER BY created_at DESC, id LIMIT $1",
        select(db.kind())
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = timed(
        "todos.list",
        sqlx::query(&sql).bind(limit).fetch_all(db.pool()),
    )
    .await?;
    let todos = rows.iter().map(todo_of).collect::<Result<Vec<_>, _>>()?;
    // Serialising plain strings and bools into a Vec cannot fail.
    Ok(Bytes::from(
        serde_json::to_vec(&todos).unwrap_or_else(|_| b"[]".to_vec()),
    ))
}

pub async fn get(db: &Db, id: &str) -> DbResult<Option<Todo>> {
    let sql = format!("SELECT {} FROM todos WHERE id = $1", select(db.kind()));
    let row = timed(
        "todos.get",
        sqlx::query(&sql).bind(id).fetch_optional(db.pool()),
    )
    .await?;
    Ok(row.as_ref().map(todo_of).transpose()?)
}

/// The id `seed` gives todo number `n`.
pub fn seed_id(n: u64) -> String {
    uuid::Uuid::new_v5(
        &SEED_NAMESPACE,
        format!("floodgate-seed-todo-{n}").as_bytes(),
    )
    .to_string()
}

/// Inserts `Todo N` / `Description for todo N` (N = 1..=count) for `seed-user`, skipping
/// rows that exist; returns how many were inserted. Todo N is created N microseconds after
/// the run started, so the newest-first list begins with the highest N.
pub async fn seed(db: &Db, count: u64) -> DbResult<u64> {
    let start = OffsetDateTime::now_utc();
    let stamps = Stamps::detect(db).await?;
    let mut inserted = 0;
    let mut n = 1;
    while n <= count {
        let tx_end = count.min(n + SEED_ROWS_PER_TX as u64 - 1);
        let mut tx = begin_write(db).await?;
        while n <= tx_end {
            let stmt_end = tx_end.min(n + SEED_ROWS_PER_STATEMENT as u64 - 1);
            inserted += seed_rows(&mut tx, stamps, start, n, stmt_end).await?;
            n = stmt_end + 1;
        }
        tx.commit().await?;
    }
    Ok(inserted)
}

async fn seed_rows(
    tx: &mut Transaction<'static, Any>,
    stamps: Stamps,
    start: OffsetDateTime,
    first: u64,
    last: u64,
) -> DbResult<u64> {
    let count = usize::try_from(last.saturating_add(1).saturating_sub(first)).unwrap_or(usize::MAX);
    let values = rows(count, 6, |p| {
        let (created, updated) = (stamps.param(p + 4), stamps.param(p + 5));
        format!(
            "({}, FALSE, ${}, {created}, {updated})",
            numbered(p, 3),
            p + 3
        )
    });
    let mut sql = format!("INSERT INTO todos ({COLUMNS}) VALUES {values}");
    sql.push_str(" ON CONFLICT (id) DO NOTHING");
    let mut q = sqlx::query(&sql);
    for n in first..=last {
        let micros = i64::try_from(n).unwrap_or(i64::MAX);
        let stamp = format_stamp(start + time::Duration::microseconds(micros));
        q = q
            .bind(seed_id(n))
            .bind(format!("Todo {n}"))
            .bind(format!("Description for todo {n}"))
            .bind(SEED_USER)
            .bind(stamp.clone())
            .bind(stamp);
    }
    Ok(q.execute(&mut **tx).await?.rows_affected())
}
