//! The house's layering, read from the code's own `use` lines (and inline `crate::`
//! paths): no import circle among the source files, and none of the arrows that must
//! never exist (docs/ARCHITECTURE.md). A child module may use its parent's items (the
//! parent is its namespace); every other edge counts.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// Every `.rs` file under `dir`.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/hub/conn.rs` → `hub::conn`; `src/hub/mod.rs` → `hub`; `src/lib.rs` → `` (root).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file
        .strip_prefix(src)
        .expect("under src")
        .with_extension("");
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect();
    let parts: Vec<&str> = parts
        .iter()
        .map(String::as_str)
        .filter(|p| *p != "mod")
        .collect();
    match parts.as_slice() {
        ["lib"] => String::new(),
        _ => parts.join("::"),
    }
}

/// The code of a file without comments and without its `#[cfg(test)]` module.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(at) if !l[..at].contains('"') => &l[..at],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Splits `a, b::{c, d}, e` at top-level commas.
fn split_top(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, ch) in s.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s[start..].trim());
    out.into_iter().filter(|p| !p.is_empty()).collect()
}

/// The leaf paths of a use tree (`a::{b, c::d}` → `a::b`, `a::c::d`).
fn leaves(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    if let Some(inner) = tree.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        for part in split_top(inner) {
            leaves(prefix, part, out);
        }
        return;
    }
    let join = |rest: &str| {
        if prefix.is_empty() {
            rest.to_string()
        } else {
            format!("{prefix}::{rest}")
        }
    };
    if let Some(open) = tree.find("::{") {
        leaves(&join(&tree[..open]), &tree[open + 2..], out);
        return;
    }
    let path = tree.split(" as ").next().unwrap_or(tree).trim();
    out.push(join(path));
}

/// The crate paths a file refers to, made absolute (`crate::`-relative, no prefix).
fn references(module: &str, code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let before = &rest[..at];
        rest = &rest[at + 4..];
        if !(before.is_empty() || before.ends_with(char::is_whitespace)) {
            continue;
        }
        let Some(end) = rest.find(';') else { break };
        let tree: String = rest[..end].split_whitespace().collect::<Vec<_>>().join(" ");
        leaves("", &tree, &mut paths);
    }
    let mut at = 0;
    while let Some(i) = code[at..].find("crate::") {
        let start = at + i;
        let tail: String = code[start..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        paths.push(tail.trim_end_matches(':').to_string());
        at = start + 7;
    }
    let parent = |m: &str| {
        m.rsplit_once("::")
            .map(|(p, _)| p.to_string())
            .unwrap_or_default()
    };
    paths
        .into_iter()
        .filter_map(|p| {
            if let Some(r) = p.strip_prefix("crate::") {
                Some(r.to_string())
            } else if let Some(r) = p.strip_prefix("super::") {
                let base = parent(module);
                Some(if base.is_empty() {
                    r.to_string()
                } else {
                    format!("{base}::{r}")
                })
            } else {
                p.strip_prefix("self::").map(|r| {
                    if module.is_empty() {
                        r.to_string()
                    } else {
                        format!("{module}::{r}")
                    }
                })
            }
        })
        .collect()
}

/// The longest module prefix of `path`.
fn resolve(path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|m| modules.contains(m))
}

/// The file-level import graph of `src/`.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let texts: Vec<(String, String)> = all
        .iter()
        .filter(|f| !f.ends_with("main.rs"))
        .map(|f| {
            (
                module_of(&src, f),
                code(&std::fs::read_to_string(f).expect("read")),
            )
        })
        .collect();
    let modules: BTreeSet<String> = texts.iter().map(|(m, _)| m.clone()).collect();
    let mut edges = BTreeMap::new();
    for (module, text) in &texts {
        let deps: BTreeSet<String> = references(module, text)
            .iter()
            .filter_map(|p| resolve(p, &modules))
            .filter(|d| d != module)
            // A child may use its ancestors' items: they are its namespace.
            .filter(|d| !(d.is_empty() || module.starts_with(&format!("{d}::"))))
            .collect();
        edges.insert(module.clone(), deps);
    }
    edges
}

/// The top-level module of a module path.
fn top(m: &str) -> &str {
    m.split("::").next().unwrap_or(m)
}

#[test]
fn no_import_circle_among_the_source_files() {
    let g = graph();
    // Depth-first search with colours; report the first cycle found, whole.
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            match state.get(d.as_str()).copied().unwrap_or(0) {
                0 => {
                    if let Some(c) = visit(d, g, state, stack) {
                        return Some(c);
                    }
                }
                1 => {
                    let from = stack.iter().position(|s| s == d).unwrap_or(0);
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(d.clone());
                    return Some(cycle);
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0
            && let Some(cycle) = visit(n, &g, &mut state, &mut Vec::new())
        {
            panic!("import circle: {}", cycle.join(" -> "));
        }
    }
    assert!(g.len() > 40, "the graph looks empty: {} files", g.len());
}

#[test]
fn no_arrow_that_must_never_exist() {
    let g = graph();
    let mut wrong = Vec::new();
    for (from, deps) in &g {
        for to in deps {
            let (f, t) = (top(from), top(to));
            let bad = t == "server"
                || (matches!(
                    f,
                    "store"
                        | "bus"
                        | "hub"
                        | "schedule"
                        | "presence"
                        | "push"
                        | "danmaku"
                        | "moderation"
                        | "webhooks"
                        | "access"
                ) && matches!(t, "api" | "ws" | "state"))
                // danmaku asks moderation (mutes, moderators); never the other way round.
                || (f == "moderation" && t == "danmaku")
                // webhooks are told by the services above; they know none of them.
                || (f == "webhooks" && matches!(t, "danmaku" | "moderation" | "presence" | "push"))
                || (f == "model" && t != "model")
                || (f == "frame" && !matches!(t, "frame" | "model"));
            if bad {
                wrong.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(wrong.is_empty(), "arrows that must never exist: {wrong:#?}");
    // The checks see real edges: these are known to exist.
    assert!(
        g["ws::session"].contains("hub::conn"),
        "{:?}",
        g["ws::session"]
    );
    assert!(g["server"].contains("state"));
    assert!(g["danmaku"].contains("moderation"), "{:?}", g["danmaku"]);
}
