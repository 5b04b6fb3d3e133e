//! Where kiln trains: the CUDA backend built in without LLVM, `--backend cuda` refused with its
//! reason where CUDA cannot run, `auto` falling back with each skipped backend's reason, the
//! CUDA header check, and `train.precision` validated.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kiln::experiment::Experiment;
use kiln::protocol::EventKind;
use kiln::runs::read_events;
use kiln::train::cuda;

use crate::common::{only_run, repo_path, scratch, write};

fn kiln(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .current_dir(repo_path(""))
        .output()
        .unwrap()
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

/// cubecl-cuda names cubecl-llvm, whose build downloads LLVM; kiln's stand-in replaces it. If
/// the real crate (or the LLVM it pulls) ever comes back, the build is no longer offline.
#[test]
fn the_lock_file_never_pulls_llvm() {
    let lock = std::fs::read_to_string(repo_path("Cargo.lock")).unwrap();
    for forbidden in ["llvm-sys", "tracel-llvm-bundler"] {
        assert!(
            !lock.contains(&format!("name = \"{forbidden}\"")),
            "{forbidden} is in Cargo.lock: something depends on the real cubecl-llvm again"
        );
    }
    let entry = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"cubecl-llvm\""))
        .expect("cubecl-cuda depends on cubecl-llvm");
    assert!(
        !entry.contains("source = "),
        "cubecl-llvm must be the local stand-in (a path package has no source): {entry}"
    );
    assert!(
        lock.contains("name = \"cubecl-cuda\""),
        "the CUDA backend is built in"
    );
}

/// `--backend cuda` on a machine where CUDA cannot run: exit 2, the reason, and no run
/// directory; where it can, it trains on CUDA. Every command that trains, evaluates, predicts
/// or benchmarks takes it.
#[test]
fn an_explicit_cuda_backend_trains_there_or_says_why_not() {
    let runs = scratch("cuda-cli");
    let runs_arg = runs.to_str().unwrap();
    let output = kiln(&[
        "train",
        "--headless",
        "--backend",
        "cuda",
        "--set",
        "train.epochs=1",
        "--runs-dir",
        runs_arg,
        "experiments/digits.toml",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    match cuda::probe() {
        Err(reason) => {
            assert_eq!(output.status.code(), Some(2), "{stderr}");
            assert!(
                stderr.contains("backend = \"cuda\" was asked for") && stderr.contains(&reason),
                "{stderr}"
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
            assert_eq!(entries(&runs), 0, "no run directory for a refused backend");
            for args in [
                vec!["bench", "--backend", "cuda", "--workload", "digits"],
                vec![
                    "evaluate",
                    "--backend",
                    "cuda",
                    "--runs-dir",
                    runs_arg,
                    "some-run",
                ],
                vec![
                    "predict",
                    "--backend",
                    "cuda",
                    "--runs-dir",
                    runs_arg,
                    "some-run",
                    "data",
                ],
                vec!["ladder", "--backend", "cuda", "--runs-dir", runs_arg],
            ] {
                let output = kiln(&args);
                let stderr = String::from_utf8_lossy(&output.stderr);
                assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
                assert!(stderr.contains(&reason), "{args:?}: {stderr}");
            }
        }
        Ok(gpu) => {
            assert!(output.status.success(), "{stderr}");
            let started = run_started(&only_run(&runs));
            assert_eq!(started.backend.name, "cuda");
            assert!(started.backend.device.contains(&gpu.name));
        }
    }
}

/// The run-start event of a finished run directory.
fn run_started(run: &Path) -> kiln::protocol::RunStarted {
    let events = read_events(&run.join("events.jsonl")).unwrap().events;
    events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::RunStarted(start) => Some(start.as_ref().clone()),
            _ => None,
        })
        .expect("a run-start event")
}

/// `auto` takes CUDA where it runs; elsewhere it falls back and the run's log says why each
/// faster backend was passed over, as the headless lines and `kiln show` do.
#[test]
fn auto_records_why_each_faster_backend_was_skipped() {
    let runs = scratch("auto");
    let output = kiln(&[
        "train",
        "--headless",
        "--set",
        "train.epochs=1",
        "--runs-dir",
        runs.to_str().unwrap(),
        "experiments/digits.toml",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let run = only_run(&runs);
    let backend = run_started(&run).backend;
    match cuda::probe() {
        Ok(_) => assert_eq!(backend.name, "cuda"),
        Err(reason) => {
            assert_ne!(backend.name, "cuda");
            assert_eq!(backend.skipped[0], format!("cuda: {reason}"));
            if backend.name == "flex" {
                assert!(backend.skipped[1].starts_with("wgpu: "), "{backend:?}");
                assert_eq!(backend.reason, "no GPU backend is usable");
            }
            assert_eq!(backend.precision, "f32");
            let line = format!("skipped cuda: {reason}");
            assert!(stdout.contains(&line), "{stdout}");
            let id = run.file_name().unwrap().to_str().unwrap();
            let shown = kiln(&["show", id, "--plain", "--runs-dir", runs.to_str().unwrap()]);
            let shown = String::from_utf8_lossy(&shown.stdout);
            assert!(
                shown.contains("backend     ") && shown.contains(&line),
                "{shown}"
            );
        }
    }
}

/// kiln looks for the CUDA headers where cubecl-cuda will (it hands that folder to NVRTC),
/// and says how to point it at them.
#[test]
fn the_cuda_headers_are_found_where_cubecl_looks_or_named_as_missing() {
    let root = scratch("cuda-root");
    let missing = cuda::headers(Some(root.clone()), &|p| p.exists()).unwrap_err();
    assert!(
        missing.starts_with("CUDA headers not found") && missing.contains("set CUDA_PATH"),
        "{missing}"
    );
    assert!(missing.contains(&root.join("include").display().to_string()));
    write(&root.join("include/cuda_fp16.h"), "// half\n");
    assert_eq!(
        cuda::headers(Some(root.clone()), &|p| p.exists()),
        Ok(root.join("include"))
    );

    // Without CUDA_PATH: /usr/local/cuda, then /opt/cuda, then /usr when nvcc is /usr/bin/nvcc.
    let only = |present: &'static [&'static str]| {
        move |p: &Path| present.iter().any(|q| p == Path::new(q))
    };
    let found = cuda::headers(None, &only(&["/opt/cuda", "/opt/cuda/include/cuda_fp16.h"]));
    assert_eq!(found, Ok(PathBuf::from("/opt/cuda/include")));
    let found = cuda::headers(None, &only(&["/usr/bin/nvcc", "/usr/include/cuda_fp16.h"]));
    assert_eq!(found, Ok(PathBuf::from("/usr/include")));
    let none = cuda::headers(None, &only(&[])).unwrap_err();
    assert!(none.contains("set CUDA_PATH"), "{none}");
}

#[test]
fn precision_names_its_choices_in_the_file_and_on_the_command_line() {
    let dir = scratch("precision");
    let file = dir.join("exp.toml");
    write(&file, "[train]\nepochs = 2\nprecision = \"fp16\"\n");
    let err = Experiment::load(&file, &[]).unwrap_err().to_string();
    assert!(
        err.contains("exp.toml:3") && err.contains("`train.precision`"),
        "{err}"
    );
    assert!(err.contains("\"f32\"") && err.contains("\"bf16\""), "{err}");

    let output = kiln(&[
        "check",
        "--set",
        "train.precision=half",
        "experiments/digits.toml",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("\"f32\", \"bf16\""), "{stderr}");

    let output = kiln(&["bench", "--precision", "half", "--workload", "digits"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("f32") && stderr.contains("bf16"),
        "{stderr}"
    );

    let ok = Experiment::load(
        &repo_path("experiments/digits.toml"),
        &["train.precision=\"bf16\"".into()],
    );
    assert_eq!(
        ok.unwrap().train.precision,
        kiln::experiment::Precision::Bf16
    );
}

/// A shared library built from `source` with the C compiler, as `dir/name`.
fn fake_library(dir: &Path, name: &str, source: &str) {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, source).unwrap();
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(dir.join(name))
        .arg(&c)
        .status()
        .expect("a C compiler (cc) for the fake CUDA libraries");
    assert!(status.success());
}

/// A driver library that answers kiln's questions (one "Fake GPU", compute capability 9.0)
/// and has nothing else: cubecl's device creation then fails inside cubecl.
const FAKE_DRIVER: &str = r#"
#include <string.h>
int cuInit(unsigned flags) { return 0; }
int cuDeviceGetCount(int *n) { *n = 1; return 0; }
int cuDeviceGet(int *d, int ordinal) { *d = 0; return 0; }
int cuDeviceGetName(char *name, int len, int dev) { strncpy(name, "Fake GPU", len); return 0; }
int cuDeviceGetAttribute(int *v, int attr, int dev) { *v = attr == 75 ? 9 : 0; return 0; }
int cuDeviceTotalMem_v2(unsigned long *bytes, int dev) { *bytes = 1ul << 34; return 0; }
"#;

/// `kiln train --backend cuda` (or `auto`) against the fake libraries in `lib`, with CUDA_PATH.
fn train_with_fakes(lib: &Path, cuda_path: &Path, backend: &str, runs: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["train", "--headless", "--backend", backend])
        .args(["--set", "train.epochs=1", "--runs-dir"])
        .arg(runs)
        .arg("experiments/digits.toml")
        .env("LD_LIBRARY_PATH", lib)
        .env("CUDA_PATH", cuda_path)
        .current_dir(repo_path(""))
        .output()
        .unwrap()
}

/// Each missing piece of a CUDA install, met one after another with fake libraries: the reason
/// names it, `--backend cuda` exits 2 without a run, `auto` falls back and records it, and no
/// panic (from cudarc's missing symbols, or cubecl's device thread) reaches the user.
#[test]
fn each_missing_piece_of_cuda_is_named_and_no_panic_escapes() {
    let dir = scratch("fake-cuda");
    let (lib, cuda_path, runs) = (dir.join("lib"), dir.join("cuda"), dir.join("runs"));
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::create_dir_all(&cuda_path).unwrap();
    let refused = |expected: &str| {
        let output = train_with_fakes(&lib, &cuda_path, "cuda", &runs);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(expected),
            "expected {expected:?} in {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(entries(&runs), 0, "no run directory for a refused backend");
        stderr.into_owned()
    };

    // A libcuda.so.1 without the driver's functions (cudarc panics on the missing symbol).
    fake_library(&lib, "libcuda.so.1", "int kiln_fake_driver;\n");
    refused("the CUDA driver failed");
    // A driver that does not start.
    fake_library(
        &lib,
        "libcuda.so.1",
        r#"
int cuInit(unsigned f) { return 100; }
int cuGetErrorName(int e, const char **s) { *s = "CUDA_ERROR_NO_DEVICE"; return 0; }
int cuGetErrorString(int e, const char **s) { *s = "no CUDA-capable device"; return 0; }
"#,
    );
    refused("the CUDA driver did not start");
    // A working driver without NVRTC.
    fake_library(&lib, "libcuda.so.1", FAKE_DRIVER);
    refused("NVRTC not found");
    let output = train_with_fakes(&lib, &cuda_path, "auto", &runs);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let backend = run_started(&only_run(&runs)).backend;
    assert!(
        backend.skipped[0].starts_with("cuda: NVRTC not found"),
        "{backend:?}"
    );
    std::fs::remove_dir_all(&runs).unwrap();
    // NVRTC, but no headers under CUDA_PATH.
    fake_library(
        &lib,
        "libnvrtc.so",
        "int nvrtcVersion(int *a, int *b) { *a = 13; *b = 0; return 0; }\n",
    );
    refused("CUDA headers not found");
    // Everything kiln checks is there: cubecl itself fails on the fake driver, and that is
    // reported as cleanly.
    write(&cuda_path.join("include/cuda_fp16.h"), "// fake\n");
    let stderr = refused("was asked for, but the ");
    assert!(
        stderr.contains("CUDA device could not be created")
            || stderr.contains("first CUDA kernel failed"),
        "{stderr}"
    );
}
