//! GET /todos and GET /todos/{id}.

use axum::http::StatusCode;

use floodgate_todos::Settings;

use crate::common::{field_of, get, Env};

fn titles(v: &serde_json::Value) -> Vec<String> {
    field_of(v, "title")
}

pub async fn empty_list_is_an_empty_array(env: Env) {
    let api = env.api();
    let r = get(&api, "/todos").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], b"[]");
    // As Gin's c.JSON sends it.
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let r = get(&api, "/todos?limit=10").await;
    assert_eq!(&r.body[..], b"[]");
}

pub async fn limits_are_validated_and_clamped(mut env: Env) {
    env.config.settings_mut::<Settings>().max_limit = 25;
    assert_eq!(
        floodgate_todos::seed(&env.backends.db, 30)
            .await
            .expect("seed"),
        30
    );
    let api = env.api();
    let r = get(&api, "/todos?limit=10").await;
    assert_eq!(r.status, StatusCode::OK);
    let list = r.json();
    let t = titles(&list);
    assert_eq!(t.len(), 10);
    // Newest first: the seeder creates todo N after todo N-1.
    assert_eq!(t[0], "Todo 30");
    assert_eq!(t[9], "Todo 21");
    let first = &list[0];
    for field in [
        "id",
        "title",
        "description",
        "completed",
        "user_id",
        "created_at",
        "updated_at",
    ] {
        assert!(first.get(field).is_some(), "{field} missing in {first}");
    }
    assert_eq!(first["user_id"], "seed-user");
    assert_eq!(first["description"], "Description for todo 30");
    assert_eq!(first["completed"], false);
    let stamp = first["created_at"].as_str().expect("created_at");
    // Go's RFC3339Nano: UTC, trailing zeros of the fraction dropped.
    let parsed = time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339);
    assert!(stamp.ends_with('Z') && parsed.is_ok(), "{stamp}");
    assert!(!stamp.contains('.') || !stamp.ends_with("0Z"), "{stamp}");
    let len = r.header("content-length").expect("content-length");
    assert_eq!(len.parse::<usize>().expect("number"), r.body.len());
    // Above the maximum, and no limit at all: the maximum.
    assert_eq!(
        titles(&get(&api, "/todos?limit=1000").await.json()).len(),
        25
    );
    assert_eq!(titles(&get(&api, "/todos").await.json()).len(), 25);
    // A hit serves the same bytes as the fill.
    let again = get(&api, "/todos?limit=10").await;
    assert_eq!(again.body, r.body);
    for bad in ["abc", "0", "-5", "1.5", "", "10abc"] {
        let r = get(&api, &format!("/todos?limit={bad}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "limit={bad}");
        let v = r.json();
        assert_eq!(v["error"], "Invalid request");
        assert!(
            v["details"].as_str().expect("details").contains("limit"),
            "{v}"
        );
    }
}

pub async fn seeding_is_idempotent(env: Env) {
    let db = &env.backends.db;
    assert_eq!(floodgate_todos::seed(db, 50).await.expect("seed"), 50);
    assert_eq!(floodgate_todos::seed(db, 50).await.expect("reseed"), 0);
    assert_eq!(floodgate_todos::seed(db, 60).await.expect("extend"), 10);
    let api = env.api();
    assert_eq!(titles(&get(&api, "/todos").await.json()).len(), 60);
}

pub async fn get_one_and_not_found(env: Env) {
    floodgate_todos::seed(&env.backends.db, 3)
        .await
        .expect("seed");
    let api = env.api();
    let r = get(&api, &format!("/todos/{}", floodgate_todos::seed_id(2))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["title"], "Todo 2");
    assert_eq!(r.json()["id"], floodgate_todos::seed_id(2));
    for id in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_string()] {
        let r = get(&api, &format!("/todos/{id}")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{id}");
        assert_eq!(r.json(), serde_json::json!({"error": "Not found"}));
    }
}
