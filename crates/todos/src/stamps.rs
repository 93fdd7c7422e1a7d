//! The todo table's timestamp columns: TEXT in floodgate's own schema, TIMESTAMPTZ in a
//! table seed 003 created (`CREATE TABLE IF NOT EXISTS` keeps it as it is). Reads convert
//! on PostgreSQL whatever the type; writes need to know it, so the applier asks once.

use floodgate_db::{Db, DbError, DbKind, DbResult};
use sqlx::Row;

/// How `created_at`/`updated_at` are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamps {
    /// Fixed-precision RFC 3339 text (floodgate's schema; always on SQLite).
    Text,
    /// A PostgreSQL timestamp type (seed 003's schema).
    Native,
}

impl Stamps {
    /// Asks the catalog. Unavailable (retried) while the table does not exist yet.
    pub async fn detect(db: &Db) -> DbResult<Stamps> {
        if db.kind() == DbKind::Sqlite {
            return Ok(Stamps::Text);
        }
        let row = sqlx::query(
            "SELECT data_type FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = 'todos' AND column_name = 'created_at'",
        )
        .fetch_optional(db.pool())
        .await?;
        let Some(row) = row else {
            return Err(DbError::Unavailable(
                "table todos not created yet (migrations pending)".into(),
            ));
        };
        let data_type: String = row.try_get(0)?;
        Ok(if data_type.starts_with("timestamp") {
            Stamps::Native
        } else {
            Stamps::Text
        })
    }

    /// Bind parameter `$n` carrying a stamp, as the column takes it.
    pub fn param(self, n: usize) -> String {
        match self {
            Stamps::Text => format!("${n}"),
            Stamps::Native => format!("CAST(${n} AS TIMESTAMPTZ)"),
        }
    }
}

/// The select-list expression reading `column` as floodgate's stamp text. On PostgreSQL
/// this holds for TEXT (parsed) and TIMESTAMPTZ alike, so reads need no detection.
pub fn read(kind: DbKind, column: &str) -> String {
    match kind {
        DbKind::Sqlite => column.to_string(),
        DbKind::Postgres => format!(
            "to_char(CAST({column} AS TIMESTAMPTZ) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS {column}"
        ),
    }
}
