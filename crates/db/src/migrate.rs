//! Schema migrations, applied in order and recorded in `floodgate_migrations`. Safe when
//! several nodes start at once: PostgreSQL serialises them with an advisory lock, SQLite
//! with one `BEGIN IMMEDIATE` transaction (the file's write lock).

use sqlx::{AnyConnection, Row};

use crate::{Db, DbKind, DbResult};

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    /// Portable SQL (runs on SQLite and PostgreSQL): statements split on `;`, so no `;`
    /// inside string literals.
    pub sql: &'static str,
}

/// Every migration, oldest first. Append only: never edit one that has shipped.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "todos",
        sql: "CREATE TABLE IF NOT EXISTS todos (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            completed BOOLEAN NOT NULL DEFAULT FALSE,
            user_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
          );
          CREATE INDEX IF NOT EXISTS todos_created_idx ON todos (created_at DESC, id);",
    },
    Migration {
        version: 2,
        name: "todo_commands",
        // Applied command ids make redelivered commands no-ops (pruned after a week, longer
        // than any broker keeps a message); the outbox holds embedded-mode commands until
        // the worker has applied them.
        sql: "CREATE TABLE IF NOT EXISTS todo_applied_commands (
            command_id TEXT PRIMARY KEY,
            applied_at TEXT NOT NULL
          );
          CREATE INDEX IF NOT EXISTS todo_applied_commands_at_idx ON todo_applied_commands (applied_at);
          CREATE TABLE IF NOT EXISTS todo_outbox (
            command_id TEXT PRIMARY KEY,
            seq BIGINT NOT NULL,
            todo_id TEXT NOT NULL,
            payload TEXT NOT NULL
          );
          CREATE INDEX IF NOT EXISTS todo_outbox_seq_idx ON todo_outbox (seq)",
    },
    Migration {
        version: 3,
        name: "todo_list_version",
        // The todo list version when the store is in-process: every process writing to this
        // database (a seed, another node) moves it, and every node's cache polls it.
        sql: "CREATE TABLE IF NOT EXISTS todo_list_version (
            topic TEXT PRIMARY KEY,
            ver BIGINT NOT NULL
          )",
    },
];

/// An arbitrary constant identifying floodgate's migration lock in PostgreSQL.
const PG_LOCK_ID: i64 = 0x666c_6f6f_6467;

impl Db {
    /// Applies pending migrations; returns how many this call applied.
    pub async fn migrate(&self) -> DbResult<usize> {
        self.migrate_with(MIGRATIONS).await
    }

    pub async fn migrate_with(&self, migrations: &[Migration]) -> DbResult<usize> {
        let mut conn = self.pool().acquire().await?;
        match self.kind() {
            DbKind::Postgres => {
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(PG_LOCK_ID)
                    .execute(&mut *conn)
                    .await?;
                let res = apply(&mut conn, migrations, "BEGIN").await;
                let unlock = sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(PG_LOCK_ID)
                    .execute(&mut *conn)
                    .await;
                let n = res?;
                unlock?;
                Ok(n)
            }
            DbKind::Sqlite => apply(&mut conn, migrations, "BEGIN IMMEDIATE").await,
        }
    }

    /// The versions recorded as applied.
    pub async fn applied_versions(&self) -> DbResult<Vec<i64>> {
        let rows = sqlx::query("SELECT version FROM floodgate_migrations ORDER BY version")
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(|r| r.get::<i64, _>(0)).collect())
    }
}

/// Runs every pending migration inside one transaction opened with `begin`.
async fn apply(conn: &mut AnyConnection, migrations: &[Migration], begin: &str) -> DbResult<usize> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS floodgate_migrations (
            version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query(begin).execute(&mut *conn).await?;
    let result = apply_in_tx(conn, migrations).await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    sqlx::query(end).execute(&mut *conn).await?;
    result
}

async fn apply_in_tx(conn: &mut AnyConnection, migrations: &[Migration]) -> DbResult<usize> {
    let rows = sqlx::query("SELECT version FROM floodgate_migrations")
        .fetch_all(&mut *conn)
        .await?;
    let applied: Vec<i64> = rows.iter().map(|r| r.get::<i64, _>(0)).collect();
    let mut count = 0;
    for m in migrations.iter().filter(|m| !applied.contains(&m.version)) {
        for stmt in m.sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            sqlx::query(stmt).execute(&mut *conn).await?;
        }
        sqlx::query(
            "INSERT INTO floodgate_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(now_unix_secs())
        .execute(&mut *conn)
        .await?;
        tracing::info!(version = m.version, name = m.name, "migration applied");
        count += 1;
    }
    Ok(count)
}

fn now_unix_secs() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    secs.to_string()
}
