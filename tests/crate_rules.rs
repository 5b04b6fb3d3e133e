//! The rules the workspace's crates state in their `//!`: kiln-core and kiln-screen never depend
//! on burn (so their tests build in seconds), kiln-core and kiln-train never on a terminal
//! library. Read from cargo's own resolution of the workspace (`cargo metadata`, offline).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use crate::common::repo_path;

/// Every package that `package` depends on, directly or not (normal and build dependencies:
/// what its library needs; its own tests' dev-dependencies are not part of it).
fn dependencies_of(package: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(repo_path(""))
        .output()
        .expect("cargo metadata");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: BTreeMap<&str, &str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: BTreeMap<&str, Vec<&str>> = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| {
            let deps = node["deps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|dep| {
                    dep["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|kind| kind["kind"].as_str() != Some("dev"))
                })
                .map(|dep| dep["pkg"].as_str().unwrap())
                .collect();
            (node["id"].as_str().unwrap(), deps)
        })
        .collect();
    let root = names
        .iter()
        .find(|(_, name)| **name == package)
        .map(|(id, _)| *id)
        .unwrap_or_else(|| panic!("no package {package}"));
    let mut seen = BTreeSet::new();
    let mut todo = vec![root];
    while let Some(id) = todo.pop() {
        for dep in nodes.get(id).into_iter().flatten() {
            if seen.insert(names[dep].to_string()) {
                todo.push(dep);
            }
        }
    }
    seen
}

fn offending<'a>(deps: &'a BTreeSet<String>, prefixes: &[&str]) -> Vec<&'a String> {
    deps.iter()
        .filter(|name| prefixes.iter().any(|p| name.starts_with(p)))
        .collect()
}

const BURN: [&str; 3] = ["burn", "cubecl", "wgpu"];
const TERMINAL: [&str; 3] = ["ratatui", "crossterm", "termion"];

#[test]
fn the_core_crate_has_neither_burn_nor_a_terminal() {
    let deps = dependencies_of("kiln-core");
    assert!(
        deps.contains("serde"),
        "the walk sees kiln-core's dependencies: {deps:?}"
    );
    assert_eq!(offending(&deps, &BURN), Vec::<&String>::new());
    assert_eq!(offending(&deps, &TERMINAL), Vec::<&String>::new());
}

#[test]
fn the_screen_crate_has_no_burn() {
    let deps = dependencies_of("kiln-screen");
    assert!(
        deps.contains("ratatui") && deps.contains("kiln-core"),
        "{deps:?}"
    );
    assert_eq!(offending(&deps, &BURN), Vec::<&String>::new());
}

#[test]
fn the_training_crate_has_burn_and_no_terminal() {
    let deps = dependencies_of("kiln-train");
    assert!(
        deps.contains("burn") && deps.contains("kiln-core"),
        "{deps:?}"
    );
    assert!(!deps.contains("kiln-screen"));
    assert_eq!(offending(&deps, &TERMINAL), Vec::<&String>::new());
}

/// The protocol is plain data shared by every side: no I/O, no clock, no environment in it
/// (those are `kiln_core::here`'s, and the event log's).
#[test]
fn the_protocol_reads_neither_clock_nor_files_nor_environment() {
    let source = std::fs::read_to_string(repo_path("crates/kiln-core/src/protocol.rs")).unwrap();
    for forbidden in [
        "std::env",
        "std::fs",
        "std::io",
        "std::process",
        "std::net",
        "SystemTime",
        "Instant",
        "chrono",
        "/proc",
    ] {
        assert!(
            !source.contains(forbidden),
            "protocol.rs names {forbidden}: move it out (see kiln_core::here)"
        );
    }
}
