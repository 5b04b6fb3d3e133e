//! The diagnosis rules on a labelled set: synthetic learning curves whose truth is known
//! (clean overfit, overfit seen only in validation loss, noisy healthy, healthy with
//! augmentation, plateau, slow start), each with noise drawn at two levels from 20 seeds, and
//! the real ladder runs recorded in `tests/fixtures/ladder-histories.json`. Each rule's hits and
//! false alarms are counted and printed as a table; the test holds them to their targets.

use kiln_core::diagnose::{Context, diagnose};
use kiln_core::protocol::{EpochMetrics, Problem};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const EPOCHS: usize = 30;
const SEEDS: u64 = 20;

/// One standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = rng.random::<f64>().max(1e-12);
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// Clean curves: (train acc, val acc, train loss, val loss) at epoch t (from 1).
type Curve = fn(f64) -> (f64, f64, f64, f64);

struct Kind {
    name: &'static str,
    truth: Option<Problem>,
    curve: Curve,
}

fn kinds() -> Vec<Kind> {
    vec![
        Kind {
            name: "clean overfit",
            truth: Some(Problem::Overfitting),
            curve: |t| {
                let rise = (t - 8.0).max(0.0);
                (
                    1.0 - 0.5 * (-t / 3.0).exp(),
                    0.92 - 0.5 * (-t / 3.0).exp() - 0.004 * rise,
                    1.5 * (-t / 4.0).exp() + 0.01,
                    0.35 + 1.2 * (-t / 3.0).exp() + 0.012 * rise,
                )
            },
        },
        Kind {
            name: "overfit, val loss only",
            truth: Some(Problem::Overfitting),
            curve: |t| {
                let rise = (t - 10.0).max(0.0);
                (
                    0.96 - 0.5 * (-t / 3.0).exp(),
                    0.935 - 0.5 * (-t / 3.0).exp(),
                    1.5 * (-t / 4.0).exp() + 0.05,
                    0.20 + 1.2 * (-t / 3.0).exp() + 0.02 * rise,
                )
            },
        },
        Kind {
            name: "noisy healthy",
            truth: None,
            curve: |t| {
                (
                    0.975 - 0.5 * (-t / 3.0).exp(),
                    0.972 - 0.5 * (-t / 3.0).exp(),
                    1.5 * (-t / 4.0).exp() + 0.07,
                    0.08 + 1.2 * (-t / 3.0).exp(),
                )
            },
        },
        Kind {
            name: "healthy, augmented",
            truth: None,
            curve: |t| {
                (
                    0.93 - 0.6 * (-t / 5.0).exp(),
                    0.95 - 0.6 * (-t / 5.0).exp(),
                    0.25 + 2.0 * (-t / 5.0).exp(),
                    0.20 + 1.8 * (-t / 5.0).exp(),
                )
            },
        },
        Kind {
            name: "plateau",
            truth: Some(Problem::Underfitting),
            curve: |t| {
                (
                    0.55 + 0.1 * (1.0 - (-t / 2.0).exp()),
                    0.55 + 0.1 * (1.0 - (-t / 2.0).exp()),
                    1.1 + 0.5 * (-t / 2.0).exp(),
                    1.1 + 0.5 * (-t / 2.0).exp(),
                )
            },
        },
        Kind {
            name: "slow start",
            truth: Some(Problem::SlowConvergence),
            curve: |t| {
                (
                    0.10 + 0.02 * t,
                    0.10 + 0.02 * t,
                    2.3 * 0.965f64.powf(t),
                    2.3 * 0.965f64.powf(t) + 0.02,
                )
            },
        },
    ]
}

/// A curve with noise (one standard deviation): accuracies `level` × 0.5 points, training loss
/// `level` × 3% of itself, validation loss `level` × 6% (the ladder's runs on mnist-5k swing
/// about that much from epoch to epoch).
fn noisy(curve: Curve, level: f64, seed: u64) -> Vec<EpochMetrics> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let rows: Vec<(f64, f64, f64, f64)> = (1..=EPOCHS)
        .map(|epoch| {
            let (ta, va, tl, vl) = curve(epoch as f64);
            let z: [f64; 4] = std::array::from_fn(|_| normal(&mut rng));
            (
                (ta + level * 0.005 * z[0]).clamp(0.0, 1.0),
                (va + level * 0.005 * z[1]).clamp(0.0, 1.0),
                tl * (1.0 + level * 0.03 * z[2]),
                vl * (1.0 + level * 0.06 * z[3]),
            )
        })
        .collect();
    crate::diagnosis::history(&rows)
}

/// The unit tests' context (500 training images per class: "too little data" stays out of
/// the count) for runs of [`EPOCHS`].
fn context() -> Context {
    Context {
        epochs: EPOCHS,
        ..crate::diagnosis::context()
    }
}

/// Every problem raised at any epoch of the run (as the trainer diagnoses after each).
fn raised(history: &[EpochMetrics]) -> Vec<Problem> {
    let mut seen = Vec::new();
    for end in 1..=history.len() {
        for finding in diagnose(&history[..end], &context()) {
            if !seen.contains(&finding.problem) {
                seen.push(finding.problem);
            }
        }
    }
    seen
}

/// The real ladder runs: (rung, truth, per-epoch metrics), recorded from `kiln ladder`.
fn ladder_runs() -> Vec<(String, Option<Problem>, Vec<EpochMetrics>)> {
    let text = std::fs::read_to_string(crate::common::crate_path(
        "tests/fixtures/ladder-histories.json",
    ))
    .expect("the recorded ladder histories");
    let runs: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    runs.into_iter()
        .map(|run| {
            let truth = serde_json::from_value(run["truth"].clone()).unwrap();
            let epochs = serde_json::from_value(run["epochs"].clone()).unwrap();
            (run["rung"].as_str().unwrap().to_string(), truth, epochs)
        })
        .collect()
}

#[test]
fn each_rule_hits_its_problem_and_seldom_cries_wolf() {
    // (truth, problems raised) for every labelled run.
    let mut outcomes: Vec<(String, Option<Problem>, Vec<Problem>)> = Vec::new();
    for kind in kinds() {
        for level in [1.0, 2.0] {
            for seed in 0..SEEDS {
                let history = noisy(kind.curve, level, seed);
                outcomes.push((kind.name.to_string(), kind.truth, raised(&history)));
            }
        }
    }
    for (rung, truth, history) in ladder_runs() {
        outcomes.push((format!("ladder {rung}"), truth, raised(&history)));
    }
    let rules = [
        Problem::Overfitting,
        Problem::Underfitting,
        Problem::SlowConvergence,
    ];
    let mut table = String::from("rule               hits        false alarms\n");
    let mut failures = Vec::new();
    for rule in rules {
        let positives: Vec<_> = outcomes.iter().filter(|o| o.1 == Some(rule)).collect();
        let negatives: Vec<_> = outcomes.iter().filter(|o| o.1 != Some(rule)).collect();
        let hits = positives.iter().filter(|o| o.2.contains(&rule)).count();
        let alarms: Vec<&String> = negatives
            .iter()
            .filter(|o| o.2.contains(&rule))
            .map(|o| &o.0)
            .collect();
        table.push_str(&format!(
            "{:<18} {:>3}/{:<3} {:>5.1}%  {:>3}/{:<3} {:>5.1}%\n",
            rule.title(),
            hits,
            positives.len(),
            100.0 * hits as f64 / positives.len() as f64,
            alarms.len(),
            negatives.len(),
            100.0 * alarms.len() as f64 / negatives.len() as f64,
        ));
        if (hits as f64) < 0.9 * positives.len() as f64 {
            failures.push(format!("{}: hits {hits}/{}", rule.title(), positives.len()));
        }
        if alarms.len() as f64 > 0.05 * negatives.len() as f64 {
            failures.push(format!("{}: false alarms on {alarms:?}", rule.title()));
        }
    }
    table.push_str("\nmisses and false alarms by kind:\n");
    let names: Vec<&String> = {
        let mut names: Vec<&String> = outcomes.iter().map(|o| &o.0).collect();
        names.dedup();
        names
    };
    for name in names {
        let runs: Vec<_> = outcomes.iter().filter(|o| &o.0 == name).collect();
        let wrong = runs
            .iter()
            .filter(|o| match o.1 {
                Some(truth) => {
                    !o.2.contains(&truth) || o.2.iter().any(|p| rules.contains(p) && *p != truth)
                }
                None => o.2.iter().any(|p| rules.contains(p)),
            })
            .count();
        table.push_str(&format!("  {name:<24} {wrong}/{} wrong\n", runs.len()));
    }
    eprintln!("{table}");
    assert!(failures.is_empty(), "{table}{failures:#?}");
}
