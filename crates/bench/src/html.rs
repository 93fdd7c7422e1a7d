//! `--html FILE` and `compare --html`: one self-contained page (no CDN, no network) with the
//! run's JSON inline and a small hand-written script that draws it as SVG.

use std::path::Path;

use serde_json::{json, Value};

use crate::error::BenchError;
use crate::report::write_file;

const TEMPLATE: &str = include_str!("../assets/report.html");
const SLOT: &str = "/*RUNS*/";

/// The page for `runs`: (name, the `--json` report of that run).
pub fn page(runs: &[(String, Value)]) -> String {
    let data: Vec<Value> = runs
        .iter()
        .map(|(name, report)| json!({"name": name, "report": report}))
        .collect();
    // Inside <script> only "</" could end the element early; JSON allows "<\/".
    let text = Value::Array(data).to_string().replace("</", "<\\/");
    TEMPLATE.replacen(SLOT, &text, 1)
}

pub fn write(runs: &[(String, Value)], path: &Path) -> Result<(), BenchError> {
    write_file(path, page(runs).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeds_the_runs_without_closing_the_script() {
        let report = json!({"urls": ["http://x/</script><b>"], "rps": 5.0});
        let page = page(&[("run".to_string(), report)]);
        assert!(!page.contains(SLOT));
        assert!(!page.contains("</script><b>"));
        let start = page.find(r#"type="application/json">"#).unwrap() + 24;
        let end = start + page[start..].find("</script>").unwrap();
        let back: Value = serde_json::from_str(&page[start..end]).unwrap();
        assert_eq!(back[0]["report"]["urls"][0], "http://x/</script><b>");
        assert_eq!(back[0]["name"], "run");
    }
}
