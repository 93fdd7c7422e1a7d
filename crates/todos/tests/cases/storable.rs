//! What the database would refuse is refused before the 202 (a 202 is a promise), and what
//! is accepted is stored as sent, on SQLite and on PostgreSQL alike.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::common::{call, create, put, token, wait_present, wait_todo, Env, SECRET};

pub async fn unstorable_text_is_refused_before_the_202(env: Env) {
    let api = env.api();
    let tok = token("alice");
    let put = format!("/todos/{}", uuid::Uuid::new_v4());
    let cases: Vec<(&str, Method, &str, String)> = vec![
        (
            "NUL in title",
            Method::POST,
            "/todos",
            json!({"title": "a\u{0}b"}).to_string(),
        ),
        (
            "NUL in description",
            Method::POST,
            "/todos",
            json!({"title": "t", "description": "\u{0}"}).to_string(),
        ),
        (
            "NUL in updated title",
            Method::PUT,
            &put,
            json!({"title": "\u{0}"}).to_string(),
        ),
        // JSON can spell a lone surrogate; no database text type can hold it.
        (
            "lone surrogate",
            Method::POST,
            "/todos",
            r#"{"title":"a\ud800b"}"#.into(),
        ),
        (
            "lone low surrogate",
            Method::POST,
            "/todos",
            r#"{"title":"\udc00"}"#.into(),
        ),
        (
            "501 four-byte characters",
            Method::POST,
            "/todos",
            json!({"title": "😀".repeat(501)}).to_string(),
        ),
    ];
    for (what, method, uri, body) in cases {
        let r = call(&api, method, uri, Some(&tok), Some(&body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {:?}", r.body);
    }
    // A token whose sub holds a NUL: its owner could never be stored.
    let claims = json!({"sub": "al\u{0}ice", "exp": jsonwebtoken::get_current_timestamp() + 600});
    let bad = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("encode");
    let body = json!({"title": "t"}).to_string();
    let r = call(&api, Method::POST, "/todos", Some(&bad), Some(&body)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
}

pub async fn longest_accepted_text_is_stored_as_sent(env: Env) {
    let node = env.node();
    let api = node.router.clone();
    // The longest title in the widest characters, and every other kind of character that
    // is allowed: controls other than NUL, a BOM, a character outside the BMP.
    let title = "😀".repeat(500);
    let id = create(&api, "bob", &title).await;
    let todo = wait_present(&env, &api, &id, "long title stored").await;
    assert_eq!(todo["title"], title.as_str());
    let odd = "\u{1}\u{1f}\u{7f}\u{feff}\u{10ffff}\\\"'%_;--";
    let body = json!({"title": odd, "description": "é".repeat(5000)}).to_string();
    let r = put(&api, &format!("/todos/{id}"), &token("bob"), &body).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let todo = wait_todo(&env, &api, &id, "odd title stored", |r| {
        r.status == StatusCode::OK && r.json()["title"] == odd
    })
    .await;
    assert_eq!(todo["description"], "é".repeat(5000));
}
