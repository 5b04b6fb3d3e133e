//! No import cycles: in every crate, at every level of its `src/` (the top-level modules, the
//! files of each module folder) the modules that name each other form a DAG. A file naming its own parent (`super::`
//! items defined in a `mod.rs`) is the usual parent–child link, not a cycle.
//!
//! Paths are read from the source itself: `use` trees (braces expanded) and `crate::` /
//! `super::` paths written inline, each resolved to the longest module it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::common::repo_path;

/// A module as its path from the crate root: `["tui", "view", "header"]`.
type ModulePath = Vec<String>;

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

fn module_of(src: &Path, file: &Path) -> ModulePath {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: ModulePath = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The source without `//` comments (doc comments name paths that are not imports).
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expands a use tree such as `super::{a::{self, B}, c::D}` into full paths.
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        return vec![tree];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(expand)
        .map(|rest| format!("{prefix}{rest}"))
        .collect()
}

/// Every `crate::…`, `super::…` and `self::…` path the file names.
fn paths_named(text: &str) -> Vec<String> {
    let text = without_comments(text);
    let mut paths = Vec::new();
    let mut rest = text.as_str();
    // `use` statements, braces and all.
    while let Some(at) = rest.find("use ") {
        let before_ok = at == 0 || !is_ident(rest[..at].chars().last().unwrap());
        let after = &rest[at + 4..];
        let end = after.find(';').unwrap_or(after.len());
        let tree = after[..end].trim();
        if before_ok
            && ["crate::", "super::", "self::"]
                .iter()
                .any(|p| tree.starts_with(p))
        {
            paths.extend(expand(tree));
        }
        rest = &rest[at + 4..];
    }
    // Inline paths: `crate::runs::open_run(…)`.
    for root in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = text[from..].find(root) {
            let start = from + at;
            from = start + root.len();
            if start > 0 && is_ident(text[..start].chars().last().unwrap()) {
                continue;
            }
            let path: String = text[start..]
                .chars()
                .take_while(|&c| is_ident(c) || c == ':')
                .collect();
            paths.push(path.trim_end_matches(':').to_string());
        }
    }
    paths
}

/// The module a path names from `module` (the file's own module), cut to one that exists.
fn resolve(path: &str, module: &ModulePath, modules: &BTreeSet<ModulePath>) -> ModulePath {
    let mut segments = path.split("::").filter(|s| !s.is_empty());
    let mut resolved: ModulePath = Vec::new();
    match segments.next() {
        Some("crate") => {}
        Some("self") => resolved = module.clone(),
        Some("super") => {
            resolved = module.clone();
            resolved.pop();
        }
        _ => return Vec::new(),
    }
    for segment in segments {
        if segment == "super" {
            resolved.pop();
            continue;
        }
        if segment == "self" {
            continue;
        }
        let mut longer = resolved.clone();
        longer.push(segment.to_string());
        if !modules.contains(&longer) {
            break;
        }
        resolved = longer;
    }
    resolved
}

/// A cycle in `edges`, if there is one (as the modules along it).
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next.as_str()) {
                Some(1) => {
                    let from = stack.iter().position(|n| n == next).unwrap();
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(cycle) = visit(next, edges, state, stack) {
                        return Some(cycle);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in edges.keys() {
        if !state.contains_key(node)
            && let Some(cycle) = visit(node, edges, &mut state, &mut Vec::new())
        {
            return Some(cycle);
        }
    }
    None
}

/// For each module folder (the crate root included): which of its children name which.
fn sibling_graphs(src: &Path) -> BTreeMap<ModulePath, BTreeMap<String, BTreeSet<String>>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<ModulePath> = files.iter().map(|f| module_of(src, f)).collect();
    let mut graphs: BTreeMap<ModulePath, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in &files {
        let from = module_of(src, file);
        let text = std::fs::read_to_string(file).unwrap();
        for path in paths_named(&text) {
            let to = resolve(&path, &from, &modules);
            let shared = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            // A module naming its own ancestor or descendant is not a sibling link.
            if shared == from.len() || shared == to.len() {
                continue;
            }
            graphs
                .entry(from[..shared].to_vec())
                .or_default()
                .entry(from[shared].clone())
                .or_default()
                .insert(to[shared].clone());
        }
    }
    graphs
}

/// Each crate's `src/`.
const CRATE_SOURCES: [&str; 4] = [
    "src",
    "crates/kiln-core/src",
    "crates/kiln-screen/src",
    "crates/kiln-train/src",
];

#[test]
fn no_module_names_one_that_names_it_back() {
    for crate_src in CRATE_SOURCES {
        let graphs = sibling_graphs(&repo_path(crate_src));
        for (folder, edges) in &graphs {
            let place = if folder.is_empty() {
                format!("{crate_src}/")
            } else {
                format!("{crate_src}/{}/", folder.join("/"))
            };
            assert_eq!(
                find_cycle(edges),
                None,
                "import cycle among the modules of {place}"
            );
        }
    }
    // The reader sees imports across a crate's modules (the binary's command line uses its
    // benchmarks; the training thread uses the data pipeline).
    let top = |crate_src: &str| {
        sibling_graphs(&repo_path(crate_src))
            .remove(&Vec::new())
            .unwrap()
    };
    assert!(
        top("src")
            .get("cli")
            .is_some_and(|uses| uses.contains("bench"))
    );
    assert!(
        top("crates/kiln-train/src")
            .get("train")
            .is_some_and(|uses| uses.contains("data"))
    );
}

#[test]
fn the_cycle_check_sees_the_cycles_main_had() {
    // The shapes the reshaping removed: two sibling files that use each other, and a top-level
    // module reaching back through an inline path.
    let src = crate::common::scratch("module-graph").join("src");
    let files = [
        (
            "lib.rs",
            "pub mod experiment;\npub mod train;\npub mod tui;\n",
        ),
        ("tui/mod.rs", "pub mod app;\npub mod browser;\n"),
        ("tui/app.rs", "use super::browser::Browser;\n"),
        ("tui/browser.rs", "use crate::tui::app::{self, App};\n"),
        (
            "experiment/mod.rs",
            "fn f() -> &'static str { crate::train::TORCH_BUILD }\n",
        ),
        (
            "train/mod.rs",
            "use crate::experiment::{Experiment, BackendChoice};\n",
        ),
    ];
    for (path, text) in files {
        let path = src.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let graphs = sibling_graphs(&src);
    assert!(find_cycle(&graphs[&Vec::new()]).is_some(), "{graphs:?}");
    assert!(
        find_cycle(&graphs[&vec!["tui".to_string()]]).is_some(),
        "{graphs:?}"
    );
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("app".to_string(), BTreeSet::from(["browser".to_string()])),
        ("browser".to_string(), BTreeSet::from(["app".to_string()])),
    ]
    .into();
    assert_eq!(
        find_cycle(&edges),
        Some(vec!["app".into(), "browser".into(), "app".into()])
    );
    let modules: BTreeSet<ModulePath> = [
        vec!["tui".to_string()],
        vec!["tui".to_string(), "app".to_string()],
    ]
    .into();
    let from = vec!["tui".to_string(), "browser".to_string()];
    assert_eq!(
        resolve("super::app::Action", &from, &modules),
        vec!["tui".to_string(), "app".to_string()]
    );
    assert_eq!(
        expand("super::{app::{self, App}, keys}"),
        vec!["super::app::self", "super::app::App", "super::keys"]
    );
}
