//! The settings table in docs/operations.md, rendered from a [`Schema`] (the binary's: core
//! and every service). A test in the `floodgate` crate (`src/settings.rs`) keeps the
//! document and the code in step.

use super::Schema;

pub const BEGIN: &str = "<!-- settings:begin -->";
pub const END: &str = "<!-- settings:end -->";

/// A Markdown table of every setting: name, seed aliases, default, meaning.
pub fn markdown_table(schema: &Schema) -> String {
    let mut out =
        String::from("| setting | also read as | default | meaning |\n|---|---|---|---|\n");
    for s in schema.settings() {
        let aliases = s
            .aliases
            .iter()
            .map(|a| format!("`{a}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let default = match (s.secret, s.default) {
            (true, _) => "(secret)".to_string(),
            (false, Some(d)) => format!("`{d}`"),
            (false, None) => "unset".to_string(),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            s.name, aliases, default, s.help
        ));
    }
    out
}
