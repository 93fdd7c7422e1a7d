//! Migrations on SQLite and PostgreSQL, including several nodes migrating at once.

use floodgate_db::{Db, DbKind, Migration};

/// Two services' sets, interleaved by version: applied as one ordered list.
const NOTES: &[Migration] = &[
    Migration {
        version: 1,
        name: "notes",
        sql: "CREATE TABLE IF NOT EXISTS notes (id TEXT PRIMARY KEY, body TEXT NOT NULL)",
    },
    Migration {
        version: 3,
        name: "notes_tags",
        sql: "ALTER TABLE notes ADD COLUMN tag TEXT REFERENCES tags (name)",
    },
];
const TAGS: &[Migration] = &[Migration {
    version: 2,
    name: "tags",
    sql: "CREATE TABLE IF NOT EXISTS tags (name TEXT PRIMARY KEY)",
}];
const SETS: &[&[Migration]] = &[NOTES, TAGS];
const COUNT: usize = 3;

fn pg_url() -> Option<String> {
    floodgate_testkit::env_or_skip("FLOODGATE_TEST_DATABASE_URL")
}

fn temp_sqlite_url() -> (tempdir::Dir, String) {
    let dir = tempdir::Dir::new();
    let url = format!("sqlite://{}/nested/fg.db", dir.path());
    (dir, url)
}

/// Starts `nodes` independent pools (like separate processes) and migrates them at once.
async fn migrate_concurrently(url: &str, nodes: usize) -> Vec<usize> {
    let mut dbs = Vec::new();
    for _ in 0..nodes {
        dbs.push(Db::connect(Some(url)).await.expect("connect"));
    }
    let runs = dbs.iter().map(|db| db.migrate(SETS));
    let results = futures::future::join_all(runs).await;
    results.into_iter().map(|r| r.expect("migrate")).collect()
}

async fn check_migrations_once(url: &str) {
    let applied = migrate_concurrently(url, 4).await;
    // Exactly one node applied everything; the others found nothing to do.
    assert_eq!(applied.iter().sum::<usize>(), COUNT, "{applied:?}");
    assert_eq!(applied.iter().filter(|&&n| n > 0).count(), 1, "{applied:?}");
    let db = Db::connect(Some(url)).await.unwrap();
    let versions = db.applied_versions().await.unwrap();
    assert_eq!(versions, [1, 2, 3], "in version order across sets");
    // Running again is a no-op and the schema works (version 3 needed 2 first).
    assert_eq!(db.migrate(SETS).await.unwrap(), 0);
    sqlx::query("INSERT INTO tags (name) VALUES ('t')")
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query("INSERT INTO notes (id, body, tag) VALUES ($1, 'b', 't')")
        .bind("a")
        .execute(db.pool())
        .await
        .unwrap();
    db.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_migrations_apply_once() {
    let (_dir, url) = temp_sqlite_url();
    check_migrations_once(&url).await;
    let db = Db::connect(Some(&url)).await.unwrap();
    assert_eq!(db.kind(), DbKind::Sqlite);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_migrations_apply_once() {
    let Some(admin) = pg_url() else { return };
    let url = floodgate_testkit::fresh_pg_database(&admin).await;
    check_migrations_once(&url).await;
    let db = Db::connect(Some(&url)).await.unwrap();
    assert_eq!(db.kind(), DbKind::Postgres);
}

#[tokio::test]
async fn two_migrations_with_one_version_are_refused_and_nothing_is_applied() {
    let (_dir, url) = temp_sqlite_url();
    let db = Db::connect(Some(&url)).await.unwrap();
    let clash: &[Migration] = &[Migration {
        version: 2,
        name: "other_tags",
        sql: "CREATE TABLE IF NOT EXISTS other_tags (name TEXT PRIMARY KEY)",
    }];
    let err = db.migrate(&[NOTES, TAGS, clash]).await.unwrap_err();
    assert!(err.to_string().contains("share version 2"), "{err}");
    let applied = sqlx::query("SELECT name FROM sqlite_master WHERE name = 'notes'")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert!(applied.is_empty(), "nothing may be applied");
}

#[tokio::test]
async fn bad_url_is_a_clear_error() {
    let err = Db::connect(Some("mysql://x"))
        .await
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("postgres://"), "{err}");
}

#[tokio::test]
async fn unreachable_postgres_fails_fast_on_ping() {
    // A closed port: the lazy pool connects, but ping reports Unavailable quickly.
    let db = Db::connect(Some("postgres://x@127.0.0.1:1/x"))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    assert!(db.ping().await.is_err());
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

mod tempdir {
    pub struct Dir(std::path::PathBuf);
    impl Dir {
        pub fn new() -> Self {
            let p = std::env::temp_dir().join(format!("fg-db-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
        pub fn path(&self) -> String {
            self.0.display().to_string()
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
