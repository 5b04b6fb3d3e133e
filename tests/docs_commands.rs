//! The commands the README and `docs/` show are true: every line of every ```` ```sh ```` block
//! runs, in order, as a user would from the repository's root, and must succeed. Each page runs
//! in a scratch folder of its own holding a copy of `experiments/` (so its runs land there), with
//! `kiln` on the PATH and `RUN` standing for the newest run's id.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{repo_path, scratch};

/// The command lines of a page's ```` ```sh ```` blocks, comments dropped.
fn commands(page: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut in_sh = false;
    for line in page.lines() {
        let fence = line.trim_start();
        if fence.starts_with("```") {
            in_sh = !in_sh && fence.trim_start_matches('`').trim() == "sh";
            continue;
        }
        if in_sh {
            let command = line.split(" #").next().unwrap_or_default().trim();
            if !command.is_empty() && !command.starts_with('#') {
                found.push(command.to_string());
            }
        }
    }
    found
}

/// The id of the run started last in `runs` (its first event's time, to the millisecond).
fn newest_run(runs: &Path) -> Option<String> {
    std::fs::read_dir(runs)
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let log = std::fs::read_to_string(entry.path().join("events.jsonl")).ok()?;
            let first: serde_json::Value = serde_json::from_str(log.lines().next()?).ok()?;
            let time = first["time"].as_str()?.to_string();
            Some((time, entry.file_name().to_string_lossy().into_owned()))
        })
        .max()
        .map(|(_, id)| id)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Runs one page's commands; returns how many ran.
fn run_page(page: &Path) -> usize {
    let text = std::fs::read_to_string(page).unwrap();
    let lines = commands(&text);
    let name = page.file_stem().unwrap().to_string_lossy().into_owned();
    let root = scratch(&format!("docs-{name}"));
    copy_dir(&repo_path("experiments"), &root.join("experiments"));
    let bin: PathBuf = Path::new(env!("CARGO_BIN_EXE_kiln"))
        .parent()
        .unwrap()
        .into();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for line in &lines {
        let run = newest_run(&root.join("runs")).unwrap_or_else(|| "RUN".into());
        let command = line
            .split(' ')
            .map(|word| if word == "RUN" { run.as_str() } else { word })
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            command.starts_with("kiln "),
            "{}: not a kiln command: {line}",
            page.display()
        );
        let output = Command::new("sh")
            .args(["-c", &command])
            .current_dir(&root)
            .env("PATH", &path)
            .env("HOME", &root)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}: `{command}` failed ({}):\n{}\n{}",
            page.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    lines.len()
}

#[test]
fn the_readmes_commands_run() {
    let _guard = crate::common::training_lock();
    assert!(run_page(&repo_path("README.md")) >= 10);
}

#[test]
fn the_docs_commands_run() {
    let _guard = crate::common::training_lock();
    let mut pages: Vec<PathBuf> = std::fs::read_dir(repo_path("docs"))
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    let ran: usize = pages.iter().map(|page| run_page(page)).sum();
    assert!(ran >= 20, "only {ran} commands in docs/");
}

#[test]
fn the_reader_finds_sh_blocks_and_only_those() {
    let page = "text\n```sh\nkiln runs --plain   # list\n```\n```text\nkiln nope\n```\n```sh\nkiln show RUN\n```\n";
    assert_eq!(commands(page), ["kiln runs --plain", "kiln show RUN"]);
}
