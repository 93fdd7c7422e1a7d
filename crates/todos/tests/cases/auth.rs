//! Who may write: HS256 tokens with a `sub`, unexpired, signed with JWT_SECRET.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use floodgate_todos::Settings;

use crate::common::{b64, call, Env, SECRET};

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn signed(alg: Algorithm, claims: serde_json::Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode")
}

/// A token with an arbitrary header and a made-up signature.
fn forged(header: serde_json::Value, claims: serde_json::Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

const BODY: &str = r#"{"title":"t","description":"d"}"#;

async fn post_with(api: &axum::Router, token: Option<&str>) -> (StatusCode, serde_json::Value) {
    let r = call(api, Method::POST, "/todos", token, Some(BODY)).await;
    let v = if r.body.is_empty() {
        serde_json::Value::Null
    } else {
        r.json()
    };
    (r.status, v)
}

pub async fn bad_tokens_are_401(env: Env) {
    let api = env.api();
    let sub = json!({"sub": "alice", "exp": now() + 600});
    let hs256_header = json!({"alg": "HS256", "typ": "JWT"});
    let good = signed(Algorithm::HS256, sub.clone(), SECRET);
    let real_sig = good.rsplit('.').next().expect("signature").to_string();
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("garbage", Some("not.a.token".into())),
        (
            "wrong secret",
            Some(signed(Algorithm::HS256, sub.clone(), "other-secret")),
        ),
        (
            "expired",
            Some(signed(
                Algorithm::HS256,
                json!({"sub": "alice", "exp": now() - 3600}),
                SECRET,
            )),
        ),
        (
            "not yet valid",
            Some(signed(
                Algorithm::HS256,
                json!({"sub": "alice", "nbf": now() + 3600}),
                SECRET,
            )),
        ),
        (
            "no sub",
            Some(signed(
                Algorithm::HS256,
                json!({"exp": now() + 600}),
                SECRET,
            )),
        ),
        (
            "empty sub",
            Some(signed(Algorithm::HS256, json!({"sub": ""}), SECRET)),
        ),
        (
            "numeric sub",
            Some(signed(Algorithm::HS256, json!({"sub": 42}), SECRET)),
        ),
        ("HS512", Some(signed(Algorithm::HS512, sub.clone(), SECRET))),
        (
            "alg none",
            Some(forged(
                json!({"alg": "none", "typ": "JWT"}),
                sub.clone(),
                "",
            )),
        ),
        (
            "RS256 header on an HS256 signature",
            Some(forged(
                json!({"alg": "RS256", "typ": "JWT"}),
                sub.clone(),
                &real_sig,
            )),
        ),
        (
            "tampered claims",
            Some(forged(
                hs256_header,
                json!({"sub": "mallory", "exp": now() + 600}),
                &real_sig,
            )),
        ),
    ];
    for (what, tok) in cases {
        let (status, body) = post_with(&api, tok.as_deref()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(body, json!({"error": "Unauthorized"}), "{what}");
    }
    let id = uuid::Uuid::new_v4();
    for method in [Method::PUT, Method::DELETE] {
        let r = call(
            &api,
            method.clone(),
            &format!("/todos/{id}"),
            None,
            Some(r#"{"title":"x"}"#),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method}");
    }
    // Accepted: the real one, and one without exp (exp is checked only when present).
    assert_eq!(post_with(&api, Some(&good)).await.0, StatusCode::ACCEPTED);
    let no_exp = signed(Algorithm::HS256, json!({"sub": "alice"}), SECRET);
    assert_eq!(post_with(&api, Some(&no_exp)).await.0, StatusCode::ACCEPTED);
}

pub async fn no_secret_means_no_writes(mut env: Env) {
    env.config.settings_mut::<Settings>().jwt_secret = None;
    let api = env.api();
    let tok = floodgate_todos::mint_token(SECRET, "alice", Duration::from_secs(60)).expect("mint");
    let (status, body) = post_with(&api, Some(&tok)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({"error": "Unauthorized"}));
    // Reads need no token.
    assert_eq!(
        crate::common::get(&api, "/todos").await.status,
        StatusCode::OK
    );
}
