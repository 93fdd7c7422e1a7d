//! The database: a SQLite file (default `./data/floodgate.db`, WAL) or PostgreSQL, behind
//! one `sqlx::AnyPool` so each query is written once. Migrations are safe to run from
//! several nodes at once.

pub mod migrate;

pub use migrate::Migration;

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;

/// The cause carried by an error: any error, or a message (`"timed out".into()`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database does not answer (I/O, pool timeout or closed, ping timeout): retryable.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// The database answered with an error (a refused statement, a decoding failure, ...).
    #[error("database error: {0}")]
    Query(#[source] sqlx::Error),
    #[error("invalid database url: {0}")]
    BadUrl(String),
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
                DbError::Unavailable(Box::new(e))
            }
            other => DbError::Query(other),
        }
    }
}

pub type DbResult<T> = Result<T, DbError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    kind: DbKind,
}

/// WAL lets readers run while a writer commits; busy_timeout makes concurrent writers
/// (other nodes, migrations) wait instead of failing.
const SQLITE_PRAGMAS: &[&str] = &[
    "PRAGMA journal_mode=WAL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA synchronous=NORMAL",
];

pub const DEFAULT_SQLITE_URL: &str = "sqlite://data/floodgate.db";

impl Db {
    /// Opens the database named by `url` (None → the SQLite default). The pool is lazy for
    /// PostgreSQL so a server can start while the database is still coming up; /ready tells.
    pub async fn connect(url: Option<&str>) -> DbResult<Db> {
        sqlx::any::install_default_drivers();
        let url = match url {
            None | Some("") => DEFAULT_SQLITE_URL,
            Some(u) => u,
        };
        let kind = if url.starts_with("sqlite:") {
            DbKind::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            DbKind::Postgres
        } else {
            return Err(DbError::BadUrl(
                "expected sqlite://PATH or postgres://... (DATABASE_URL)".into(),
            ));
        };
        let pool = match kind {
            DbKind::Sqlite => {
                let url = sqlite_url_with_create(url)?;
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(5))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            for pragma in SQLITE_PRAGMAS {
                                sqlx::query(pragma).execute(&mut *conn).await?;
                            }
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await?
            }
            DbKind::Postgres => AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(3))
                .connect_lazy(url)?,
        };
        Ok(Db { pool, kind })
    }

    pub fn kind(&self) -> DbKind {
        self.kind
    }

    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            DbKind::Sqlite => "sqlite",
            DbKind::Postgres => "postgres",
        }
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// One round trip; `Err(Unavailable)` when the database does not answer.
    pub async fn ping(&self) -> DbResult<()> {
        let fut = sqlx::query("SELECT 1").execute(&self.pool);
        match tokio::time::timeout(Duration::from_secs(2), fut).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(DbError::Unavailable(Box::new(e))),
            Err(_) => Err(DbError::Unavailable("timed out".into())),
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Makes sure the SQLite file and its folder can be created on first start.
fn sqlite_url_with_create(url: &str) -> DbResult<String> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return Ok(url.to_string());
    }
    if let Some(dir) = std::path::Path::new(path).parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .map_err(|e| DbError::BadUrl(format!("cannot create {}: {e}", dir.display())))?;
        }
    }
    if url.contains("mode=") {
        Ok(url.to_string())
    } else if url.contains('?') {
        Ok(format!("{url}&mode=rwc"))
    } else {
        Ok(format!("{url}?mode=rwc"))
    }
}

/// Awaits `work` (one query or transaction), recording how long it took as
/// `db_query_duration_seconds{query}`; `query` names the statement, never its values.
pub async fn timed<T>(query: &'static str, work: impl std::future::Future<Output = T>) -> T {
    let start = std::time::Instant::now();
    let out = work.await;
    metrics::histogram!("db_query_duration_seconds", "query" => query)
        .record(start.elapsed().as_secs_f64());
    out
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::DbError;

    #[test]
    fn sqlx_errors_stay_the_cause() {
        let e = DbError::from(sqlx::Error::PoolTimedOut);
        assert!(matches!(e, DbError::Unavailable(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!("database unavailable: {}", sqlx::Error::PoolTimedOut)
        );
        assert!(e.source().is_some_and(|c| c.is::<sqlx::Error>()));

        let e = DbError::from(sqlx::Error::RowNotFound);
        assert!(
            matches!(e, DbError::Query(sqlx::Error::RowNotFound)),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!("database error: {}", sqlx::Error::RowNotFound)
        );
        assert!(e.source().is_some_and(|c| c.is::<sqlx::Error>()));
    }
}
