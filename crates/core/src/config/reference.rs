//! The settings table in docs/operations.md, rendered from [`super::settings::SETTINGS`]. A
//! test keeps the document and the code in step.

use super::settings::SETTINGS;

pub const BEGIN: &str = "<!-- settings:begin -->";
pub const END: &str = "<!-- settings:end -->";

/// A Markdown table of every setting: name, seed aliases, default, meaning.
pub fn markdown_table() -> String {
    let mut out =
        String::from("| setting | also read as | default | meaning |\n|---|---|---|---|\n");
    for s in SETTINGS {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_doc_lists_exactly_the_settings_in_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/operations.md");
        let doc = std::fs::read_to_string(path).expect("docs/operations.md exists");
        let start = doc.find(BEGIN).expect("settings:begin marker") + BEGIN.len();
        let end = doc.find(END).expect("settings:end marker");
        let in_doc = doc[start..end].trim();
        let expected = markdown_table();
        assert_eq!(
            in_doc,
            expected.trim(),
            "docs/operations.md is out of date; replace the table between the markers with:\n{expected}"
        );
    }
}
