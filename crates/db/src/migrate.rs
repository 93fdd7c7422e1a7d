//! Applying schema migrations, in version order, recorded in `floodgate_migrations`. Safe
//! when several nodes start at once: PostgreSQL serialises them with an advisory lock,
//! SQLite with one `BEGIN IMMEDIATE` transaction (the file's write lock). The migrations
//! themselves belong to the services that own the tables (e.g. `floodgate_todos::MIGRATIONS`);
//! the binary passes every service's set.

use sqlx::{AnyConnection, Row};

use crate::{Db, DbError, DbKind, DbResult};

pub struct Migration {
    /// Unique across every service's migrations (one `floodgate_migrations` table).
    pub version: i64,
    pub name: &'static str,
    /// Portable SQL (runs on SQLite and PostgreSQL): statements split on `;`, so no `;`
    /// inside string literals.
    pub sql: &'static str,
}

/// An arbitrary constant identifying floodgate's migration lock in PostgreSQL.
const PG_LOCK_ID: i64 = 0x666c_6f6f_6467;

impl Db {
    /// Applies the pending migrations of every set (one per service), in version order;
    /// returns how many this call applied. Two migrations with one version are refused.
    pub async fn migrate(&self, sets: &[&[Migration]]) -> DbResult<usize> {
        let mut migrations: Vec<&Migration> = sets.iter().flat_map(|s| s.iter()).collect();
        migrations.sort_by_key(|m| m.version);
        if let Some(w) = migrations.windows(2).find(|w| w[0].version == w[1].version) {
            let clash = format!(
                "migrations {} and {} share version {}",
                w[0].name, w[1].name, w[0].version
            );
            return Err(DbError::Query(sqlx::Error::Configuration(clash.into())));
        }
        let mut conn = self.pool().acquire().await?;
        match self.kind() {
            DbKind::Postgres => {
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(PG_LOCK_ID)
                    .execute(&mut *conn)
                    .await?;
                let res = apply(&mut conn, &migrations, "BEGIN").await;
                let unlock = sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(PG_LOCK_ID)
                    .execute(&mut *conn)
                    .await;
                let n = res?;
                unlock?;
                Ok(n)
            }
            DbKind::Sqlite => apply(&mut conn, &migrations, "BEGIN IMMEDIATE").await,
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
async fn apply(
    conn: &mut AnyConnection,
    migrations: &[&Migration],
    begin: &str,
) -> DbResult<usize> {
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

async fn apply_in_tx(conn: &mut AnyConnection, migrations: &[&Migration]) -> DbResult<usize> {
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
