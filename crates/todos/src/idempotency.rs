//! `Idempotency-Key` on todo writes: a retried write is applied once and answered the same.
//!
//! A write is queued, not applied, so there is no result to store; what must not change
//! between a try and its retry is the command. Both ids are therefore derived from (route,
//! caller, key): the command id (the worker records applied command ids, so a second copy
//! changes nothing) and, for a create, the todo id (its primary key turns a late copy into
//! a conflict). A retry after a 503 publishes again, because the first publish may or may
//! not have reached the broker; either way exactly one copy takes effect.
//!
//! The request's meaning is recorded under the key with `Store::idempotent_apply` (the
//! abacus's record) before publishing, so the same key with a different body is refused
//! (422) instead of silently dropped by the dedupe.

use axum::http::HeaderMap;
use floodgate_core::idempotency::{valid, HEADER};
use floodgate_store::{Apply, CounterOp, IdemOutcome};
use uuid::Uuid;

use crate::error::Error;
use crate::model::Command;
use crate::state::Shared;

/// Derived ids are UUIDv5 in this namespace.
const NAMESPACE: Uuid = Uuid::from_u128(0x1de3_70d0_1de3_70d0_1de3_70d0_1de3_70d0);
/// `idempotent_apply` changes a counter with its record; a todo write has nothing to count,
/// so it sets this one to 0 (which also leaves nothing to overflow).
const COUNTER: &str = "todos:idem:scratch";

/// The request's key: None without the header, 400 when malformed.
pub fn key(headers: &HeaderMap) -> Result<Option<&str>, Error> {
    match headers.get(&HEADER) {
        None => Ok(None),
        // Visible ASCII, so always UTF-8.
        Some(v) if valid(v) => Ok(v.to_str().ok()),
        Some(_) => Err(Error::Invalid(
            "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
        )),
    }
}

/// One keyed write: where its record lives and the ids it derives.
pub struct Keyed {
    name: String,
}

impl Keyed {
    /// Per action and per caller, so two users (or a create and an update) never share a
    /// key. The user id is length-prefixed: no choice of key can pose as another user's.
    pub fn new(cmd: &Command, key: &str) -> Self {
        let (action, user) = (cmd.action.as_str(), &cmd.user_id);
        Keyed {
            name: format!("{action}:{}:{user}:{key}", user.len()),
        }
    }

    fn derive(&self, what: &str) -> String {
        Uuid::new_v5(&NAMESPACE, format!("{what}:{}", self.name).as_bytes()).to_string()
    }

    /// Gives `cmd` its key-derived command id (and todo id, for a create).
    pub fn stamp(&self, cmd: &mut Command) {
        if cmd.action == crate::model::Action::Create {
            cmd.id = self.derive("todo");
        }
        cmd.command_id = Some(self.derive("command"));
    }

    /// Records the command's meaning under the key. Ok(true) when the key was seen before
    /// with the same meaning (a replay), 422 when with another.
    pub async fn record(&self, s: &Shared, cmd: &Command) -> Result<bool, Error> {
        let record = format!("todos:idem:{}", self.name);
        let outcome = s
            .store
            .idempotent_apply(Apply {
                counter: COUNTER,
                op: CounterOp::Set(0),
                key: &record,
                fingerprint: &fingerprint(cmd),
                ttl: s.idempotency_ttl,
            })
            .await?;
        match outcome {
            IdemOutcome::Applied(_) => Ok(false),
            IdemOutcome::Replayed(_) => Ok(true),
            IdemOutcome::Mismatch => Err(Error::IdempotencyMismatch),
            IdemOutcome::Overflow => Err(Error::Unavailable("idempotency record".into())),
        }
    }
}

/// What the request asks for (not when): the fields that reach the database. A UUIDv5 of
/// their canonical JSON keeps the record small whatever the title's length.
fn fingerprint(cmd: &Command) -> String {
    let canonical = serde_json::json!({
        "action": cmd.action.as_str(),
        "id": cmd.id,
        "title": cmd.title,
        "description": cmd.description,
        "completed": cmd.completed,
    });
    Uuid::new_v5(&NAMESPACE, canonical.to_string().as_bytes()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{now_stamp, Action};
    use axum::http::HeaderValue;

    fn cmd(action: Action, user: &str, title: &str) -> Command {
        Command {
            action,
            id: Uuid::now_v7().to_string(),
            title: Some(title.into()),
            description: None,
            completed: None,
            user_id: user.into(),
            requested_at: now_stamp(),
            command_id: Some(Uuid::now_v7().to_string()),
        }
    }

    fn stamped(mut c: Command, key: &str) -> Command {
        Keyed::new(&c, key).stamp(&mut c);
        c
    }

    #[test]
    fn a_retry_gets_the_same_ids() {
        let a = stamped(cmd(Action::Create, "alice", "t"), "k1");
        let b = stamped(cmd(Action::Create, "alice", "t"), "k1");
        assert_eq!((&a.id, &a.command_id), (&b.id, &b.command_id));
        assert_eq!(fingerprint(&a), fingerprint(&b));
    }

    #[test]
    fn keys_are_per_user_and_per_action() {
        let alice = stamped(cmd(Action::Create, "alice", "t"), "k");
        let bob = stamped(cmd(Action::Create, "bob", "t"), "k");
        let other_key = stamped(cmd(Action::Create, "alice", "t"), "k2");
        assert_ne!(alice.id, bob.id);
        assert_ne!(alice.command_id, bob.command_id);
        assert_ne!(alice.id, other_key.id);
        // A user id cannot be crafted to collide with another user's key.
        let tricky = stamped(cmd(Action::Create, "alice:k", "t"), "x");
        let plain = stamped(cmd(Action::Create, "alice", "t"), "k:x");
        assert_ne!(tricky.command_id, plain.command_id);
        let mut update = cmd(Action::Update, "alice", "t");
        update.id = alice.id.clone();
        let update = stamped(update, "k");
        assert_eq!(update.id, alice.id, "an update keeps its path id");
        assert_ne!(update.command_id, alice.command_id);
    }

    #[test]
    fn the_fingerprint_follows_the_content_not_the_time() {
        let a = stamped(cmd(Action::Create, "alice", "t"), "k");
        let mut later = stamped(cmd(Action::Create, "alice", "t"), "k");
        later.requested_at = "2030-01-01T00:00:00.000000Z".into();
        assert_eq!(fingerprint(&a), fingerprint(&later));
        let other = stamped(cmd(Action::Create, "alice", "u"), "k");
        assert_ne!(fingerprint(&a), fingerprint(&other));
    }

    #[test]
    fn header_syntax() {
        let mut h = HeaderMap::new();
        assert_eq!(key(&h).ok(), Some(None));
        h.insert(HEADER, HeaderValue::from_static("abc"));
        assert_eq!(key(&h).ok(), Some(Some("abc")));
        h.insert(HEADER, HeaderValue::from_static("a b"));
        assert!(matches!(key(&h), Err(Error::Invalid(_))));
    }
}
