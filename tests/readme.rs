//! What a newcomer reads is true: the README links every document in docs/, no document
//! links outside the repository, and the README's quick start, run block by block against a
//! fresh `floodgate serve` with nothing configured, answers what it says.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{binary_unconfigured, free_port, TempDir};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The targets of `[text](target)` links in `md`.
fn links(md: &str) -> Vec<String> {
    md.split("](")
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(t, _)| t.to_string()))
        .collect()
}

fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    for entry in std::fs::read_dir(root().join("docs")).expect("docs/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files
}

#[test]
fn the_readme_links_every_doc() {
    let readme = read(&root().join("README.md"));
    let targets = links(&readme);
    for doc in markdown_files().iter().skip(1) {
        let name = format!("docs/{}", doc.file_name().unwrap().to_string_lossy());
        assert!(
            targets
                .iter()
                .any(|t| t.split('#').next() == Some(name.as_str())),
            "README.md does not link {name}"
        );
    }
}

#[test]
fn no_document_links_outside_the_repository() {
    let repo = root().canonicalize().unwrap();
    for file in markdown_files() {
        for target in links(&read(&file)) {
            let path = target.split('#').next().unwrap_or("");
            assert!(
                !target.contains("://") && !target.starts_with("mailto:"),
                "{}: links outside the repository: {target}",
                file.display()
            );
            if path.is_empty() {
                continue;
            }
            let resolved = file.parent().unwrap().join(path);
            let real = resolved
                .canonicalize()
                .unwrap_or_else(|_| panic!("{}: broken link {target}", file.display()));
            assert!(
                real.starts_with(&repo),
                "{}: {target} is outside the repository",
                file.display()
            );
        }
    }
}

/// The ```sh blocks of the README's "Quick start" section.
fn quick_start_blocks() -> Vec<String> {
    let readme = read(&root().join("README.md"));
    let start = readme
        .find("## Quick start")
        .expect("a Quick start section");
    let section = &readme[start..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    section[..end]
        .split("```sh\n")
        .skip(1)
        .filter_map(|b| b.split_once("```").map(|(code, _)| code.to_string()))
        .collect()
}

/// True when the fragments of `expected` (split at `…`) appear in `actual` in order.
fn matches(expected: &str, actual: &str) -> bool {
    let mut at = 0;
    for fragment in expected.split('…').filter(|f| !f.is_empty()) {
        match actual[at..].find(fragment) {
            Some(i) => at += i + fragment.len(),
            None => return false,
        }
    }
    true
}

#[test]
fn the_quick_start_works_as_written_on_a_fresh_serve() {
    if Command::new("curl").arg("--version").output().is_err() {
        return common::skip("curl");
    }
    let blocks = quick_start_blocks();
    assert!(blocks.len() >= 5, "{blocks:#?}");
    assert_eq!(blocks[0].trim(), "cargo run --release -- serve");
    let dir = TempDir::new();
    let port = free_port();
    let bin = env!("CARGO_BIN_EXE_floodgate");
    let mut serve = binary_unconfigured()
        .current_dir(dir.path())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn floodgate");
    let ready = format!("curl -sf -o /dev/null http://127.0.0.1:{port}/ready");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !Command::new("sh")
        .args(["-c", &ready])
        .status()
        .unwrap()
        .success()
    {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut failures = Vec::new();
    for block in &blocks[1..] {
        let script = block
            .replace("cargo run -q --release --", bin)
            .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
        let expected: Vec<&str> = block.lines().filter_map(|l| l.strip_prefix("# ")).collect();
        // As a newcomer's shell has it: none of the secrets or backends set.
        let out = Command::new("sh")
            .args(["-c", &script])
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .output()
            .expect("sh");
        let actual = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !matches(&expected.join("…"), &actual) {
            failures.push(format!(
                "{block}--- printed:\n{actual}\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status();
    let _ = serve.wait();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn matching_uses_the_ellipsis_as_a_wildcard() {
    assert!(matches(
        "{\"id\":\"…\",\"ok\":1}",
        "{\"id\":\"abc\",\"ok\":1}"
    ));
    assert!(!matches(
        "{\"id\":\"…\",\"ok\":1}",
        "{\"id\":\"abc\",\"ok\":2}"
    ));
    assert!(!matches("b…a", "ab"));
}
