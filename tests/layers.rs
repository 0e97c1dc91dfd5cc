//! The layout of `src/` keeps its rules: every module imports only modules declared above
//! it in `src/lib.rs` (the files of `src/token/`: above it in `src/token/mod.rs`), so there
//! is no import cycle and nothing imports a stage further down the pipeline; and only
//! `src/filter/` uses the proxy-wasm SDK. Test code is not counted (it may reach anywhere).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The modules `file` declares (`mod x;`, `pub mod x;`), in order.
fn declared(file: &Path) -> Vec<String> {
    read(file)
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line
                .strip_prefix("pub mod ")
                .or(line.strip_prefix("mod "))?;
            rest.strip_suffix(';').map(str::to_string)
        })
        .collect()
}

/// A file's code without its unit tests and comments.
fn code(path: &Path) -> String {
    let text = read(path);
    let end = text.find("#[cfg(test)]\nmod tests {").or_else(|| {
        text.find("#[cfg(test)]\n#[allow(").filter(|&at| {
            text[at..]
                .lines()
                .nth(2)
                .is_some_and(|l| l.starts_with("mod tests"))
        })
    });
    let text = &text[..end.unwrap_or(text.len())];
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `prefix<name>` in `code`, by name.
fn uses(code: &str, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = code
        .match_indices(prefix)
        .map(|(at, _)| {
            code[at + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The source files of module `name` under `dir` (`name.rs`, or every file of `name/`).
fn files_of(dir: &Path, name: &str) -> Vec<PathBuf> {
    let file = dir.join(format!("{name}.rs"));
    if file.exists() {
        return vec![file];
    }
    let mut files = Vec::new();
    let mut todo = vec![dir.join(name)];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.file_name().is_some_and(|n| n != "tests.rs")
            {
                files.push(path);
            }
        }
    }
    assert!(!files.is_empty(), "no files for module {name}");
    files
}

/// Checks that each module of `order` (declared in `dir`'s parent file) imports, through
/// `prefix`, only modules declared before it.
fn check_order(dir: &Path, order: &[String], prefix: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    for (index, module) in order.iter().enumerate() {
        for file in files_of(dir, module) {
            for used in uses(&code(&file), prefix) {
                match order.iter().position(|m| *m == used) {
                    Some(at) if at > index => wrong.push(format!(
                        "{} imports {prefix}{used}, declared below {module}",
                        file.strip_prefix(src()).unwrap_or(&file).display()
                    )),
                    _ => {}
                }
            }
        }
    }
    wrong
}

#[test]
fn modules_import_only_modules_declared_above_them() {
    let order = declared(&src().join("lib.rs"));
    assert!(
        order.len() > 10 && order.last().is_some_and(|m| m == "filter"),
        "{order:?}"
    );
    let mut wrong = check_order(&src(), &order, "crate::");
    let token = declared(&src().join("token/mod.rs"));
    assert!(token.contains(&"verify".to_string()), "{token:?}");
    wrong.extend(check_order(&src().join("token"), &token, "crate::token::"));
    assert!(
        wrong.is_empty(),
        "imports that run back up:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn only_the_glue_uses_the_sdk() {
    let order = declared(&src().join("lib.rs"));
    let mut users = Vec::new();
    for module in order.iter().filter(|m| *m != "filter") {
        for file in files_of(&src(), module) {
            if read(&file).contains("proxy_wasm") {
                users.push(file.display().to_string());
            }
        }
    }
    assert!(users.is_empty(), "proxy_wasm outside src/filter: {users:?}");
    let glue = files_of(&src(), "filter");
    assert!(glue.iter().any(|f| read(f).contains("proxy_wasm::")));
}

#[test]
fn the_check_sees_an_import_that_runs_back_up() {
    let dir = std::env::temp_dir().join(format!("mfa-gate-layers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("low.rs"), "use crate::high::X;\n").unwrap();
    std::fs::write(dir.join("high.rs"), "use crate::low::Y; // fine\n").unwrap();
    let order = vec!["low".to_string(), "high".to_string()];
    let wrong = check_order(&dir, &order, "crate::");
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    assert!(wrong[0].contains("imports crate::high"), "{wrong:?}");
}
