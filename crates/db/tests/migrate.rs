//! Migrations on SQLite and PostgreSQL, including several nodes migrating at once.

use floodgate_db::{Db, DbKind, MIGRATIONS_LEN};

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
    let runs = dbs.iter().map(|db| db.migrate());
    let results = futures::future::join_all(runs).await;
    results.into_iter().map(|r| r.expect("migrate")).collect()
}

async fn check_migrations_once(url: &str) {
    let applied = migrate_concurrently(url, 4).await;
    // Exactly one node applied everything; the others found nothing to do.
    assert_eq!(applied.iter().sum::<usize>(), MIGRATIONS_LEN, "{applied:?}");
    assert_eq!(applied.iter().filter(|&&n| n > 0).count(), 1, "{applied:?}");
    let db = Db::connect(Some(url)).await.unwrap();
    let versions = db.applied_versions().await.unwrap();
    assert_eq!(versions.len(), MIGRATIONS_LEN);
    // Running again is a no-op and the schema works.
    assert_eq!(db.migrate().await.unwrap(), 0);
    sqlx::query("INSERT INTO todos (id, title, description, completed, user_id, created_at, updated_at) VALUES ($1, 't', 'd', FALSE, 'u', 'x', 'x')")
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
