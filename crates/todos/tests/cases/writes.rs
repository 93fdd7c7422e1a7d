//! Write validation and the 202 answers.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::common::{call, put, token, Env};

pub async fn bad_bodies_are_400(env: Env) {
    let api = env.api();
    let tok = token("alice");
    let long_title = "x".repeat(501);
    let long_desc = "x".repeat(5001);
    let id = uuid::Uuid::new_v4();
    let put = format!("/todos/{id}");
    let cases: Vec<(&str, Method, &str, String)> = vec![
        ("not json", Method::POST, "/todos", "not json".into()),
        ("empty body", Method::POST, "/todos", String::new()),
        ("array", Method::POST, "/todos", "[]".into()),
        (
            "no title",
            Method::POST,
            "/todos",
            json!({"description": "d"}).to_string(),
        ),
        (
            "null title",
            Method::POST,
            "/todos",
            json!({"title": null}).to_string(),
        ),
        (
            "blank title",
            Method::POST,
            "/todos",
            json!({"title": "   "}).to_string(),
        ),
        (
            "numeric title",
            Method::POST,
            "/todos",
            json!({"title": 5}).to_string(),
        ),
        (
            "long title",
            Method::POST,
            "/todos",
            json!({"title": long_title}).to_string(),
        ),
        (
            "long description",
            Method::POST,
            "/todos",
            json!({"title": "t", "description": long_desc}).to_string(),
        ),
        ("empty update", Method::PUT, &put, "{}".into()),
        (
            "blank title update",
            Method::PUT,
            &put,
            json!({"title": ""}).to_string(),
        ),
        (
            "completed not bool",
            Method::PUT,
            &put,
            json!({"completed": "yes"}).to_string(),
        ),
        (
            "bad id",
            Method::PUT,
            "/todos/not-a-uuid",
            json!({"title": "t"}).to_string(),
        ),
        (
            "bad id delete",
            Method::DELETE,
            "/todos/not-a-uuid",
            String::new(),
        ),
    ];
    for (what, method, uri, body) in cases {
        let r = call(&api, method, uri, Some(&tok), Some(&body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {:?}", r.body);
        let v = r.json();
        assert_eq!(v["error"], "Invalid request", "{what}");
        assert!(
            v["details"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}: {v}"
        );
    }
}

pub async fn writes_answer_202_with_the_id(env: Env) {
    let api = env.api();
    let tok = token("alice");
    let r = call(
        &api,
        Method::POST,
        "/todos",
        Some(&tok),
        Some(r#"{"title":"buy milk"}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let v = r.json();
    assert_eq!(v["message"], "Todo creation queued");
    let id = v["id"].as_str().expect("id").to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    let uri = format!("/todos/{id}");
    let r = put(&api, &uri, &tok, r#"{"completed":true}"#).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.json(), json!({"id": id, "message": "Todo update queued"}));
    let r = call(&api, Method::DELETE, &uri, Some(&tok), None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(
        r.json(),
        json!({"id": id, "message": "Todo deletion queued"})
    );
    // Upper-case ids name the same todo.
    let r = call(
        &api,
        Method::DELETE,
        &uri.to_uppercase().replace("/TODOS/", "/todos/"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(r.json()["id"], id);
}
