//! The module graphs of `caskdb`, `caskdb-server` and `caskdb-raft` have no cycle, and `docs/ARCHITECTURE.md`
//! lists every module with exactly the modules it imports.
//!
//! A module imports another when its code (outside `#[cfg(test)] mod tests`) names a path into
//! it: `crate::a::b`, `super::b`, `self::child`, or an item the crate root re-exports
//! (`crate::Db` is `db`). Declaring a child module (`mod x;`) is not an import. The crate root
//! (`lib.rs`) only declares and re-exports, so it is not a node.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Source without comments, string and char literals, and the `#[cfg(test)] mod tests` tail.
fn code_of(src: &str) -> String {
    let src = match src.find("#[cfg(test)]\nmod tests") {
        Some(at) => &src[..at],
        None => src,
    };
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1).copied()) {
            (b'/', Some(b'/')) => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            (b'/', Some(b'*')) => {
                let end = src[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
                i = end;
            }
            (b'r', Some(b'#' | b'"')) if i == 0 || !is_ident(b[i - 1]) => {
                // raw string r"..." or r#"..."#
                let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
                if b.get(i + 1 + hashes) != Some(&b'"') {
                    out.push('r');
                    i += 1;
                    continue;
                }
                let close = format!("\"{}", "#".repeat(hashes));
                let from = i + 2 + hashes;
                i = src[from..]
                    .find(&close)
                    .map_or(b.len(), |e| from + e + close.len());
                out.push_str("\"\"");
            }
            (b'"', _) => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            (b'\'', _) => {
                // a char literal ('x', '\n', '\u{..}') or a lifetime ('a)
                let close = if b.get(i + 1) == Some(&b'\\') {
                    src.get(i + 3..)
                        .and_then(|r| r.find('\''))
                        .map(|e| i + 3 + e)
                } else if b.get(i + 2) == Some(&b'\'') {
                    Some(i + 2)
                } else {
                    None
                };
                match close {
                    Some(c) => {
                        i = c + 1;
                        out.push_str("' '");
                    }
                    None => {
                        out.push('\'');
                        i += 1;
                    }
                }
            }
            (c, _) => {
                out.push(c as char);
                i += 1;
            }
        }
    }
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Every path the code names: the segments of `a::b::c` runs (after expanding `use` groups).
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    // `use` declarations, with their `{}` groups expanded.
    let mut rest = code;
    let mut others = String::new();
    while let Some(at) = find_word(rest, "use") {
        others.push_str(&rest[..at]);
        let end = rest[at..].find(';').map_or(rest.len(), |e| at + e);
        expand(&rest[at + 3..end], &mut Vec::new(), &mut out);
        rest = &rest[end..];
    }
    others.push_str(rest);
    // Inline paths elsewhere.
    let b = others.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if is_ident(b[i]) && (i == 0 || !is_ident(b[i - 1])) {
            let start = i;
            let mut j = i;
            loop {
                while j < b.len() && is_ident(b[j]) {
                    j += 1;
                }
                if others[j..].starts_with("::") && b.get(j + 2).is_some_and(|&c| is_ident(c)) {
                    j += 2;
                } else {
                    break;
                }
            }
            let path = &others[start..j];
            if path.contains("::") && (start == 0 || b[start - 1] != b':') {
                out.push(path.split("::").map(str::to_string).collect());
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// The start of the word `w` in `s` (not part of a longer identifier).
fn find_word(s: &str, w: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(at) = s[from..].find(w).map(|a| from + a) {
        let before = at == 0 || !is_ident(b[at - 1]);
        let after = b.get(at + w.len()).is_none_or(|&c| !is_ident(c));
        if before && after {
            return Some(at);
        }
        from = at + w.len();
    }
    None
}

/// Expands a `use` tree (`a::{b, c::d}`) into full paths.
fn expand(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = tree[..open]
            .split("::")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let len = prefix.len();
        prefix.extend(head);
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&inner[start..i], prefix, out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&inner[start..], prefix, out);
        prefix.truncate(len);
    } else if !tree.is_empty() {
        let name = tree.split(" as ").next().unwrap_or(tree);
        let mut p = prefix.clone();
        p.extend(name.split("::").map(|s| s.trim().to_string()));
        out.push(p);
    }
}

/// The modules of the crate whose sources are in `src`, by path (`log::writer`), with the
/// code of each; and the root's re-exports (item name → module).
fn modules(src: &Path) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut mods = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix(src).unwrap().with_extension("");
            let mut segs: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into()).collect();
            if segs.last().is_some_and(|s| s == "mod") {
                segs.pop();
            }
            let name = segs.join("::");
            mods.insert(name, code_of(&std::fs::read_to_string(&p).unwrap()));
        }
    }
    let root = mods.remove("lib").unwrap();
    let mut reexports = BTreeMap::new();
    for p in paths(&root) {
        // `pub use m::Item` in lib.rs: the path starts with one of the crate's modules.
        if p.len() >= 2 && mods.contains_key(&p[0]) {
            reexports.insert(p[p.len() - 1].clone(), p[0].clone());
        }
    }
    (mods, reexports)
}

/// The module a path names, seen from module `at`, if it names one of the crate's.
fn target(
    path: &[String],
    at: &str,
    is_dir: bool,
    mods: &BTreeMap<String, String>,
    reexports: &BTreeMap<String, String>,
) -> Option<String> {
    let here: Vec<&str> = if at.is_empty() {
        vec![]
    } else {
        at.split("::").collect()
    };
    let (mut base, rest): (Vec<&str>, &[String]) = match path.first()?.as_str() {
        "crate" => (vec![], &path[1..]),
        "self" => (here.clone(), &path[1..]),
        "super" => {
            // `super` of a mod.rs module is its parent; of a.rs in dir x, it is x.
            let mut b = here.clone();
            b.pop();
            let mut r = &path[1..];
            while r.first().is_some_and(|s| s == "super") {
                b.pop();
                r = &r[1..];
            }
            (b, r)
        }
        first => {
            // A child of this module named directly (`child::x` in a mod.rs).
            let child = if at.is_empty() {
                first.to_string()
            } else {
                format!("{at}::{first}")
            };
            if is_dir && mods.contains_key(&child) {
                (here.clone(), path)
            } else {
                return None;
            }
        }
    };
    let mut found = None;
    for seg in rest {
        base.push(seg);
        let name = base.join("::");
        if mods.contains_key(&name) {
            found = Some(name);
        } else {
            break;
        }
    }
    if found.is_none() && base.len() == 1 && path[0] == "crate" {
        return reexports.get(base[0]).cloned();
    }
    found
}

fn graph(crate_dir: &str) -> Graph {
    let src = repo().join(crate_dir);
    let (mods, reexports) = modules(&src);
    let mut g = Graph::new();
    for (name, code) in &mods {
        let file = src.join(name.replace("::", "/"));
        let is_dir = file.is_dir();
        let mut deps = BTreeSet::new();
        for p in paths(code) {
            if let Some(t) = target(&p, name, is_dir, &mods, &reexports)
                && t != *name
                // a module's own descendants are its implementation, not a dependency
                && !t.starts_with(&format!("{name}::"))
            {
                deps.insert(t);
            }
        }
        g.insert(name.clone(), deps);
    }
    g
}

/// A cycle in `g`, if there is one.
fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &Graph,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            match state.get(d).copied().unwrap_or(0) {
                1 => {
                    let from = stack.iter().position(|s| s == d).unwrap();
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(d.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(d, g, state, stack) {
                        return Some(c);
                    }
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
        if state.get(n).copied().unwrap_or(0) == 0
            && let Some(c) = visit(n, g, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

/// The table under the heading naming `crate_dir` in ARCHITECTURE.md: module → imports.
fn documented(crate_dir: &str) -> Graph {
    let doc = std::fs::read_to_string(repo().join("docs/ARCHITECTURE.md")).unwrap();
    let heading = format!("### `{crate_dir}`");
    let at = doc
        .find(&heading)
        .unwrap_or_else(|| panic!("ARCHITECTURE.md has no heading {heading}"));
    let mut g = Graph::new();
    for line in doc[at..]
        .lines()
        .skip(1)
        .skip_while(|l| !l.starts_with('|'))
    {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(module) = cells
            .get(1)
            .and_then(|c| c.strip_prefix('`')?.strip_suffix('`'))
        else {
            continue; // header and separator rows
        };
        let imports = cells
            .get(3)
            .unwrap_or(&"")
            .split(',')
            .map(|s| s.trim().trim_matches('`').to_string())
            .filter(|s| !s.is_empty() && s != "—")
            .collect();
        g.insert(module.to_string(), imports);
    }
    g
}

fn check(crate_dir: &str) {
    check_at_least(crate_dir, 11);
}

/// As [`check`], for a crate of at least `min` modules (fewer found means the reader broke).
fn check_at_least(crate_dir: &str, min: usize) {
    let g = graph(crate_dir);
    assert!(
        g.len() >= min,
        "{crate_dir}: only {} modules found",
        g.len()
    );
    if let Some(cycle) = find_cycle(&g) {
        panic!("{crate_dir}: module cycle {}", cycle.join(" → "));
    }
    let doc = documented(crate_dir);
    let mut problems = Vec::new();
    for (m, deps) in &g {
        match doc.get(m) {
            None => problems.push(format!("`{m}` is missing (it imports {deps:?})")),
            Some(d) if d != deps => problems.push(format!(
                "`{m}`: the table says it imports {d:?}; the code imports {deps:?}"
            )),
            Some(_) => {}
        }
    }
    for m in doc.keys().filter(|m| !g.contains_key(*m)) {
        problems.push(format!("`{m}` is listed but is not a module"));
    }
    assert!(
        problems.is_empty(),
        "docs/ARCHITECTURE.md, table under ### `{crate_dir}`, does not match the code:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_engine_has_no_module_cycle_and_its_table_matches_the_code() {
    check("crates/caskdb/src");
}

#[test]
fn the_server_has_no_module_cycle_and_its_table_matches_the_code() {
    check("crates/caskdb-server/src");
}

#[test]
fn the_raft_crate_has_no_module_cycle_and_its_table_matches_the_code() {
    check_at_least("crates/caskdb-raft/src", 4);
}

#[test]
fn the_graph_reader_sees_imports_of_every_form() {
    let code = code_of(
        "use crate::a::{b::C, d};\nuse super::{e, f::g as h};\n// crate::comment\n\
         fn x() { crate::i::j(); let s = \"crate::string\"; child::k(); }\n\
         #[cfg(test)]\nmod tests { use crate::test_only; }",
    );
    let p: BTreeSet<String> = paths(&code).iter().map(|p| p.join("::")).collect();
    let want: BTreeSet<String> = [
        "crate::a::b::C",
        "crate::a::d",
        "super::e",
        "super::f::g",
        "crate::i::j",
        "child::k",
    ]
    .map(String::from)
    .into();
    assert_eq!(p, want);
    let mods: BTreeMap<String, String> = ["a", "a::b", "x", "x::child", "i", "e"]
        .map(|m| (m.to_string(), String::new()))
        .into();
    let t = |p: &str, at: &str, dir: bool| {
        let p: Vec<String> = p.split("::").map(String::from).collect();
        target(
            &p,
            at,
            dir,
            &mods,
            &BTreeMap::from([("Db".into(), "x".into())]),
        )
    };
    assert_eq!(t("crate::a::b::C", "x", false).as_deref(), Some("a::b"));
    assert_eq!(t("super::b", "a::c", false).as_deref(), Some("a::b"));
    assert_eq!(t("super::super::e", "a::b", false).as_deref(), Some("e"));
    assert_eq!(t("child::k", "x", true).as_deref(), Some("x::child"));
    assert_eq!(t("child::k", "x", false), None);
    assert_eq!(t("crate::Db", "a", false).as_deref(), Some("x"));
    assert_eq!(t("std::io::Error", "a", false), None);
    let cyclic = Graph::from([
        ("a".into(), BTreeSet::from(["b".into()])),
        ("b".into(), BTreeSet::from(["a".into()])),
    ]);
    assert!(find_cycle(&cyclic).is_some());
}
