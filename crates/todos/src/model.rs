//! The wire shapes: a todo as clients see it, the bodies of the writes and their answer,
//! and a command as it travels over the bus.

use serde::{Deserialize, Serialize};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// Longest title and description accepted (characters).
pub const MAX_TITLE: usize = 500;
pub const MAX_DESCRIPTION: usize = 5000;

/// RFC 3339 in UTC with a fixed six-digit fraction, so comparing the text compares the time
/// (the database orders `created_at` as text).
const STAMP: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

pub fn format_stamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    // Only years outside 0..=9999 fail to format; the clock does not go there.
    t.format(STAMP)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000000Z".to_string())
}

/// A stored stamp as Go's `time.RFC3339Nano` writes it (what the seed's Gin server sends):
/// the fraction without its trailing zeros, and without the dot when nothing is left.
pub fn go_stamp(mut stored: String) -> String {
    let Some(dot) = stored.rfind('.') else {
        return stored;
    };
    let digits_end = stored[dot + 1..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(stored.len(), |i| dot + 1 + i);
    let kept = stored[dot + 1..digits_end].trim_end_matches('0').len();
    let cut_from = if kept == 0 { dot } else { dot + 1 + kept };
    stored.replace_range(cut_from..digits_end, "");
    stored
}

pub fn now_stamp() -> String {
    format_stamp(OffsetDateTime::now_utc())
}

/// A todo as stored and served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Todo {
    #[schema(example = "0190f4c2-7a51-7c3e-9d55-0c3c1f1b2e4a")]
    pub id: String,
    pub title: String,
    pub description: String,
    pub completed: bool,
    pub user_id: String,
    /// RFC 3339 in UTC as Go's `time.RFC3339Nano` writes it: microseconds at most,
    /// trailing zeros of the fraction dropped.
    #[schema(example = "2025-01-31T12:00:00.12Z")]
    pub created_at: String,
    #[schema(example = "2025-01-31T12:00:00Z")]
    pub updated_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateTodo {
    /// Required, 1 to 500 characters.
    pub title: Option<String>,
    /// Up to 5000 characters; default empty.
    pub description: Option<String>,
}

/// At least one field.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateTodo {
    pub title: Option<String>,
    pub description: Option<String>,
    pub completed: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Queued {
    pub id: String,
    #[schema(example = "Todo creation queued")]
    pub message: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// A write queued for the workers. `command_id` makes redelivery harmless; commands from
/// the seed's producer lack it, and the worker then derives one from the message position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub action: Action,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<bool>,
    pub user_id: String,
    pub requested_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
}

impl Command {
    /// Checks what a producer other than our own handlers might get wrong; the reason
    /// becomes the dead-letter header.
    pub fn validate(&self) -> Result<(), String> {
        if uuid::Uuid::parse_str(&self.id).is_err() {
            return Err(format!("id {:?} is not a UUID", self.id));
        }
        if self.user_id.is_empty() {
            return Err("user_id is empty".into());
        }
        if time::OffsetDateTime::parse(
            &self.requested_at,
            &time::format_description::well_known::Rfc3339,
        )
        .is_err()
        {
            return Err(format!(
                "requested_at {:?} is not RFC 3339",
                self.requested_at
            ));
        }
        check_text("title", self.title.as_deref(), MAX_TITLE)?;
        check_text("description", self.description.as_deref(), MAX_DESCRIPTION)?;
        match self.action {
            Action::Create if self.title.as_deref().is_none_or(|t| t.trim().is_empty()) => {
                Err("create without a title".into())
            }
            Action::Update
                if self.title.is_none()
                    && self.description.is_none()
                    && self.completed.is_none() =>
            {
                Err("update without any field".into())
            }
            _ => Ok(()),
        }
    }
}

fn check_text(field: &str, value: Option<&str>, max: usize) -> Result<(), String> {
    match value {
        Some(v) if v.chars().count() > max => Err(format!("{field} longer than {max} characters")),
        Some(v) if !storable(v) => Err(format!("{field} contains a NUL character")),
        _ => Ok(()),
    }
}

/// Whether both databases can store the text: PostgreSQL refuses U+0000 in TEXT (JSON
/// cannot carry lone surrogates into a Rust string at all).
pub fn storable(text: &str) -> bool {
    !text.contains('\0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_sort_as_text_in_time_order() {
        let a = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_000_000_000).unwrap();
        let b = a + time::Duration::microseconds(1);
        let c = a + time::Duration::seconds(10);
        let (sa, sb, sc) = (format_stamp(a), format_stamp(b), format_stamp(c));
        assert_eq!(sa, "2023-11-14T22:13:20.000000Z");
        assert!(sa < sb && sb < sc);
    }

    #[test]
    fn served_stamps_trim_the_fraction_as_go_does() {
        for (stored, served) in [
            ("2023-11-14T22:13:20.000000Z", "2023-11-14T22:13:20Z"),
            ("2023-11-14T22:13:20.120000Z", "2023-11-14T22:13:20.12Z"),
            ("2023-11-14T22:13:20.000001Z", "2023-11-14T22:13:20.000001Z"),
            ("2023-11-14T22:13:20.5+02:00", "2023-11-14T22:13:20.5+02:00"),
            ("2023-11-14T22:13:20Z", "2023-11-14T22:13:20Z"),
        ] {
            assert_eq!(go_stamp(stored.into()), served);
        }
    }

    #[test]
    fn command_wire_shape_omits_absent_fields() {
        let c = Command {
            action: Action::Delete,
            id: "x".into(),
            title: None,
            description: None,
            completed: None,
            user_id: "u".into(),
            requested_at: "t".into(),
            command_id: Some("c".into()),
        };
        let v: serde_json::Value = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"action":"delete","id":"x","user_id":"u","requested_at":"t","command_id":"c"})
        );
    }

    #[test]
    fn validation_names_the_problem() {
        let mut c = Command {
            action: Action::Create,
            id: uuid::Uuid::new_v4().to_string(),
            title: Some("t".into()),
            description: None,
            completed: None,
            user_id: "u".into(),
            requested_at: now_stamp(),
            command_id: None,
        };
        assert_eq!(c.validate(), Ok(()));
        c.title = Some(" ".into());
        assert!(c.validate().unwrap_err().contains("title"));
        c.title = Some("t".into());
        c.id = "nope".into();
        assert!(c.validate().unwrap_err().contains("UUID"));
        // A producer's NUL would be refused by PostgreSQL: it is dead-lettered with a reason.
        c.id = uuid::Uuid::new_v4().to_string();
        c.description = Some("a\0b".into());
        assert!(c.validate().unwrap_err().contains("NUL"));
    }
}
