//! The todos tables, as migrations the binary applies at start (`floodgate_db::Db::migrate`).

use floodgate_db::Migration;

/// The todos tables, oldest first. Append only: never edit one that has shipped. Versions
/// are unique across services (see `floodgate_db::Migration`).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "todos",
        sql: "CREATE TABLE IF NOT EXISTS todos (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            completed BOOLEAN NOT NULL DEFAULT FALSE,
            user_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
          );
          CREATE INDEX IF NOT EXISTS todos_created_idx ON todos (created_at DESC, id);",
    },
    Migration {
        version: 2,
        name: "todo_commands",
        // Applied command ids make redelivered commands no-ops (pruned after a week, longer
        // than any broker keeps a message); the outbox holds embedded-mode commands until
        // the worker has applied them.
        sql: "CREATE TABLE IF NOT EXISTS todo_applied_commands (
            command_id TEXT PRIMARY KEY,
            applied_at TEXT NOT NULL
          );
          CREATE INDEX IF NOT EXISTS todo_applied_commands_at_idx ON todo_applied_commands (applied_at);
          CREATE TABLE IF NOT EXISTS todo_outbox (
            command_id TEXT PRIMARY KEY,
            seq BIGINT NOT NULL,
            todo_id TEXT NOT NULL,
            payload TEXT NOT NULL
          );
          CREATE INDEX IF NOT EXISTS todo_outbox_seq_idx ON todo_outbox (seq)",
    },
    Migration {
        version: 3,
        name: "todo_list_version",
        // The todo list version when the store is in-process: every process writing to this
        // database (a seed, another node) moves it, and every node's cache polls it.
        sql: "CREATE TABLE IF NOT EXISTS todo_list_version (
            topic TEXT PRIMARY KEY,
            ver BIGINT NOT NULL
          )",
    },
];
