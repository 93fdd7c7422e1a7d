//! The list version: one counter every writer bumps after it changed todos, and every
//! node's cache poller reads (never a request).
//!
//! It lives where every process that can write todos also sees it:
//! - in the shared store (Redis, `todos:ver`) when there is one;
//! - otherwise in the database (`todo_list_version`), so that a `floodgate seed` run in
//!   another process, or a second node on the same SQLite file, moves the version the
//!   running node polls. An in-process store would keep each process's bumps to itself.

use floodgate_db::{timed, Db, DbError};
use floodgate_store::{SharedStore, StoreError};
use sqlx::Row;

use crate::keys::Keys;

#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Db(#[from] DbError),
}

#[derive(Clone)]
pub enum Version {
    Store { store: SharedStore, key: String },
    Db { db: Db, key: String },
}

impl Version {
    pub fn new(store: &SharedStore, db: &Db, keys: &Keys) -> Version {
        let key = keys.version();
        // Redis or Redis Cluster: shared by every node, so the version lives there.
        if store.is_shared() {
            Version::Store {
                store: store.clone(),
                key,
            }
        } else {
            Version::Db {
                db: db.clone(),
                key,
            }
        }
    }

    /// The current version; 0 before the first bump.
    pub async fn read(&self) -> Result<u64, VersionError> {
        let v = match self {
            Version::Store { store, key } => store.get_i64(key).await?,
            Version::Db { db, key } => {
                let row = timed(
                    "todos.version",
                    sqlx::query("SELECT ver FROM todo_list_version WHERE topic = $1")
                        .bind(key.as_str())
                        .fetch_optional(db.pool()),
                )
                .await
                .map_err(DbError::from)?;
                match row {
                    Some(r) => r.try_get::<i64, _>(0).map_err(DbError::from)?,
                    None => 0,
                }
            }
        };
        // A negative counter would be someone else's doing; treat it as version 0.
        Ok(u64::try_from(v).unwrap_or(0))
    }

    /// Moves the version on, so every node refills its lists.
    pub async fn bump(&self) -> Result<(), VersionError> {
        match self {
            Version::Store { store, key } => {
                store.incr_by(key, 1).await?;
            }
            Version::Db { db, key } => {
                timed(
                    "todos.version_bump",
                    sqlx::query(
                        "INSERT INTO todo_list_version (topic, ver) VALUES ($1, 1) \
                         ON CONFLICT (topic) DO UPDATE SET ver = todo_list_version.ver + 1",
                    )
                    .bind(key.as_str())
                    .execute(db.pool()),
                )
                .await
                .map_err(DbError::from)?;
            }
        }
        Ok(())
    }
}
