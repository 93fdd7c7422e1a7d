//! Switching over from seed 003 (issue 22): floodgate on the seed's `.env` and on a
//! database the seed created (TIMESTAMPTZ stamps, nullable description, 10,000 rows)
//! serves the same bytes as on a database of its own, and writes into the seed's table.

use std::time::Duration;

use floodgate_db::Db;
use sqlx::Row;

use super::switch_env::seed_003_env;
use super::*;

const ROWS: usize = 10_000;
const GIN_JSON: &str = "application/json; charset=utf-8";

/// `internal/database/schema.sql` of seed 003, verbatim.
pub const SEED_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS todos (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    description TEXT,
    completed   BOOLEAN NOT NULL DEFAULT FALSE,
    user_id     TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_todos_user_id ON todos(user_id);
CREATE INDEX IF NOT EXISTS idx_todos_created_at ON todos(created_at DESC);";

/// One row as the test writes it to either schema.
struct Row7 {
    id: String,
    title: String,
    /// None: NULL in the seed's table, '' in floodgate's (what the seed writes when absent).
    description: Option<String>,
    completed: bool,
    user_id: String,
    /// Microseconds since the Unix epoch.
    created: i64,
    updated: i64,
}

/// Rows like the seed's `scripts/seed` makes (batches share one `NOW()`), plus NULL
/// descriptions, completed todos and whole-second stamps.
fn rows() -> Vec<Row7> {
    let base: i64 = 1_764_777_600_000_000; // 2025-12-03T16:00:00Z
    (1..=ROWS)
        .map(|n| {
            let n64 = n as i64;
            let created = match n % 10 {
                0 => base + (n64 / 500) * 1_000_000, // whole seconds, ties within a batch
                _ => base + n64 * 1_234_567,
            };
            Row7 {
                id: uuid::Uuid::new_v4().to_string(),
                title: format!("Todo {n}"),
                description: (n % 97 != 0).then(|| format!("Description for todo {n}")),
                completed: n % 7 == 0,
                user_id: format!("user-{}", n % 13),
                created,
                updated: created + (n64 % 3) * 10,
            }
        })
        .collect()
}

/// floodgate's stored stamp form (fixed six digits), which PostgreSQL also parses.
fn stamp(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let t = time::OffsetDateTime::from_unix_timestamp(secs).expect("time");
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Inserts `rows`: stamps as TIMESTAMPTZ into the seed's table, as text into floodgate's.
async fn insert(db: &Db, rows: &[Row7], seed_schema: bool) {
    for chunk in rows.chunks(500) {
        let mut sql = String::from(
            "INSERT INTO todos (id, title, description, completed, user_id, created_at, updated_at) VALUES ",
        );
        for i in 0..chunk.len() {
            let p = i * 7;
            let cast = if seed_schema { "::timestamptz" } else { "" };
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}{cast}, ${}{cast})",
                p + 1,
                p + 2,
                p + 3,
                p + 4,
                p + 5,
                p + 6,
                p + 7
            ));
        }
        let mut q = sqlx::query(&sql);
        for r in chunk {
            let description = match (&r.description, seed_schema) {
                (Some(d), _) => Some(d.clone()),
                (None, true) => None,
                (None, false) => Some(String::new()),
            };
            q = q
                .bind(r.id.clone())
                .bind(r.title.clone())
                .bind(description)
                .bind(r.completed)
                .bind(r.user_id.clone())
                .bind(stamp(r.created))
                .bind(stamp(r.updated));
        }
        q.execute(db.pool()).await.expect("insert rows");
    }
}

/// Column types of `todos`, as the catalog reports them.
async fn columns(db: &Db) -> Vec<(String, String, String)> {
    sqlx::query(
        "SELECT column_name::text, data_type::text, is_nullable::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = 'todos' ORDER BY column_name",
    )
    .fetch_all(db.pool())
    .await
    .expect("columns")
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

async fn tables(db: &Db) -> Vec<String> {
    sqlx::query(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1",
    )
    .fetch_all(db.pool())
    .await
    .expect("tables")
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// A node on seed 003's `.env` (without Kafka: its in-process bus) for `database`.
async fn node(dir: &TempDir, database: &str, redis: &str) -> floodgate::Running {
    let topic = format!("todo-commands-{}", uuid::Uuid::new_v4().simple());
    let text = seed_003_env(database, redis, "", &topic).replace("KAFKA_BROKERS=\n", "");
    let (cfg, r) = seed_env(dir, &text).expect("seed 003 env loads");
    assert_eq!(r.set_by("FLOODGATE_DATABASE_URL"), Some("DATABASE_URL"));
    started(on_test_port(cfg, dir)).await
}

async fn body(http: &reqwest::Client, node: &floodgate::Running, path: &str) -> String {
    let r = call(http.get(url(node, path))).await;
    assert_eq!((r.0, r.1.as_str()), (200, GIN_JSON), "{path}: {}", r.2);
    r.2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seed_database_and_fresh_database_serve_the_same_bytes() {
    let Some(admin) = floodgate_testkit::env_or_skip("FLOODGATE_TEST_DATABASE_URL") else {
        return;
    };
    let Some(redis) = redis() else { return };
    let seed_url = floodgate_testkit::fresh_pg_database(&admin).await;
    let fresh_url = floodgate_testkit::fresh_pg_database(&admin).await;
    let seed_db = Db::connect(Some(&seed_url)).await.expect("seed db");
    let fresh_db = Db::connect(Some(&fresh_url)).await.expect("fresh db");
    let data = rows();

    // The seed's database exists before floodgate first starts on it.
    sqlx::raw_sql(SEED_SCHEMA)
        .execute(seed_db.pool())
        .await
        .expect("seed schema");
    insert(&seed_db, &data, true).await;
    let before = columns(&seed_db).await;

    let (dir_a, dir_b) = (TempDir::new(), TempDir::new());
    let on_seed = node(&dir_a, &seed_url, &redis.redis_url()).await;
    let on_fresh = node(&dir_b, &fresh_url, &redis.redis_url()).await;
    insert(&fresh_db, &data, false).await;
    floodgate_todos::invalidate(&on_fresh.ctx)
        .await
        .expect("invalidate");

    // The seed's columns are as they were; floodgate's tables stand beside them.
    assert_eq!(columns(&seed_db).await, before);
    assert!(before.contains(&(
        "created_at".into(),
        "timestamp with time zone".into(),
        "NO".into()
    )));
    assert!(before.contains(&("description".into(), "text".into(), "YES".into())));
    let t = tables(&seed_db).await;
    for own in [
        "floodgate_migrations",
        "todo_applied_commands",
        "todo_outbox",
        "todo_list_version",
        "todos",
    ] {
        assert!(t.iter().any(|x| x == own), "{own} missing: {t:?}");
    }

    let http = reqwest::Client::new();
    for path in [
        "/todos?limit=10",
        "/todos?limit=1000",
        &format!("/todos?limit={ROWS}"),
    ] {
        let (a, b) = (
            body(&http, &on_seed, path).await,
            body(&http, &on_fresh, path).await,
        );
        assert!(a == b, "{path}: the seed's database answers other bytes");
    }
    // Checked against the data itself, not only against each other.
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&body(&http, &on_seed, &format!("/todos?limit={ROWS}")).await)
            .unwrap();
    assert_eq!(list.len(), ROWS);
    let mut expected: Vec<&Row7> = data.iter().collect();
    expected.sort_by(|x, y| y.created.cmp(&x.created).then(x.id.cmp(&y.id)));
    for (got, want) in list.iter().zip(&expected) {
        assert_eq!(got["id"], want.id.as_str());
        assert_eq!(
            got["description"],
            want.description.as_deref().unwrap_or("")
        );
        assert_eq!(got["completed"], want.completed);
        assert_eq!(got["created_at"], go_stamp(want.created).as_str(), "{got}");
        assert_eq!(got["updated_at"], go_stamp(want.updated).as_str(), "{got}");
    }
    let null_one = data.iter().find(|r| r.description.is_none()).unwrap();
    let path = format!("/todos/{}", null_one.id);
    assert_eq!(
        body(&http, &on_seed, &path).await,
        body(&http, &on_fresh, &path).await
    );

    // Writes through floodgate land in the seed's table, with its column types.
    let token =
        floodgate_todos::mint_token("compat-secret", "switch-user", Duration::from_secs(600))
            .expect("token");
    for node in [&on_seed, &on_fresh] {
        let id = crate::create_todo(
            &http,
            node,
            &token,
            serde_json::json!({"title": "after the switch"}),
        )
        .await;
        let one = url(node, &format!("/todos/{id}"));
        let applied = eventually(Duration::from_secs(20), || async {
            http.get(&one).send().await.is_ok_and(|r| r.status() == 200)
        })
        .await;
        assert!(applied, "create never applied");
        let r = call(
            http.put(&one)
                .bearer_auth(&token)
                .json(&serde_json::json!({"completed": true, "description": "done"})),
        )
        .await;
        assert_eq!(r.0, 202, "{}", r.2);
        let updated = eventually(Duration::from_secs(20), || async {
            let v: serde_json::Value = http.get(&one).send().await.unwrap().json().await.unwrap();
            v["completed"] == true && v["description"] == "done"
        })
        .await;
        assert!(updated, "update never applied");
    }
    let row = sqlx::query(
        "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), completed::text, description FROM todos WHERE title = 'after the switch'",
    )
    .fetch_one(seed_db.pool())
    .await
    .expect("the write is in the seed's table");
    let (created, completed, description): (String, String, String) =
        (row.get(0), row.get(1), row.get(2));
    assert_eq!((completed.as_str(), description.as_str()), ("true", "done"));
    assert!(created.starts_with("20"), "{created}");
    assert_eq!(columns(&seed_db).await, before, "a write retyped a column");
    let count: i64 = sqlx::query("SELECT COUNT(*) FROM todos")
        .fetch_one(seed_db.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, ROWS as i64 + 1);

    for n in [on_seed, on_fresh] {
        stop_any(n).await;
    }
}

/// Go's `time.RFC3339Nano` of a UTC instant: the fraction without trailing zeros.
fn go_stamp(micros: i64) -> String {
    let s = stamp(micros);
    let (head, frac) = s.trim_end_matches('Z').split_once('.').unwrap();
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{head}Z")
    } else {
        format!("{head}.{frac}Z")
    }
}

/// Seed 003's whole `.env`, its broker included: a write sent to floodgate goes over the
/// seed's topic and lands in the seed's table.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_on_seed_003_env_writes_through_the_seeds_broker() {
    let Some(admin) = floodgate_testkit::env_or_skip("FLOODGATE_TEST_DATABASE_URL") else {
        return;
    };
    let dir = TempDir::new();
    let Some(broker) = tansu(&dir) else { return };
    let Some(redis) = redis() else { return };
    let db_url = floodgate_testkit::fresh_pg_database(&admin).await;
    let db = Db::connect(Some(&db_url)).await.expect("db");
    sqlx::raw_sql(SEED_SCHEMA)
        .execute(db.pool())
        .await
        .expect("seed schema");
    let topic = format!("todo-commands-{}", uuid::Uuid::new_v4().simple());
    let kafka = format!("127.0.0.1:{}", broker.port);
    let text = seed_003_env(&db_url, &redis.redis_url(), &kafka, &topic);
    let (cfg, _) = seed_env(&dir, &text).expect("seed 003 env loads");
    let node = started(on_test_port(cfg, &dir)).await;
    assert_eq!(node.ctx.backends.bus.kind(), "kafka");
    let http = reqwest::Client::new();
    let token = floodgate_todos::mint_token("compat-secret", "k-user", Duration::from_secs(600))
        .expect("token");
    let id = crate::create_todo(
        &http,
        &node,
        &token,
        serde_json::json!({"title": "over kafka", "description": "d"}),
    )
    .await;
    let landed = eventually(Duration::from_secs(90), || async {
        sqlx::query("SELECT 1 FROM todos WHERE id = $1 AND title = 'over kafka'")
            .bind(&id)
            .fetch_optional(db.pool())
            .await
            .is_ok_and(|r| r.is_some())
    })
    .await;
    assert!(landed, "the write never reached the seed's table");
    stop_any(node).await;
}
