//! The learning-rate finder's arithmetic: the rates of the sweep, when it stops, and the rate it
//! suggests on curves whose answer is known.

use kiln_core::lr_find::{Sweep, SweepPlan, rate_text};

/// A finder's textbook curve: flat, then falling fastest at `steep` (per tenfold), lowest near
/// 1e-1, then blowing up; with a wobble of ±`noise` that smoothing has to see through.
fn curve(lr: f64, steep: f64, noise: f64, step: usize) -> f64 {
    let x = lr.log10();
    let wobble = noise * ((step as f64) * 2.1).sin();
    let fall = 2.3 - 1.5 / (1.0 + (-(x - steep.log10()) * 2.5).exp());
    let blow_up = if x > -1.0 {
        40.0 * (x + 1.0).powi(2)
    } else {
        0.0
    };
    fall + blow_up + wobble
}

fn sweep_of(plan: SweepPlan, steep: f64, noise: f64) -> Sweep {
    let mut sweep = Sweep::default();
    for step in 0..plan.steps {
        let rate = plan.rate(step);
        if !sweep.record(rate, curve(rate, steep, noise, step)) {
            break;
        }
    }
    sweep
}

#[test]
fn the_rates_grow_evenly_on_a_log_scale_and_bad_plans_are_refused() {
    let plan = SweepPlan::default();
    assert_eq!(plan.rate(0), 1e-7);
    assert!((plan.rate(99) - 10.0).abs() < 1e-9);
    let ratio = plan.rate(1) / plan.rate(0);
    assert!((plan.rate(51) / plan.rate(50) - ratio).abs() < 1e-9);
    assert_eq!(plan.problem(), None);
    let few = SweepPlan { steps: 5, ..plan };
    assert_eq!(
        few.problem().unwrap(),
        "--steps 5: expected at least 10 steps"
    );
    let upside_down = SweepPlan {
        start: 1.0,
        end: 1e-3,
        ..plan
    };
    assert!(upside_down.problem().unwrap().starts_with("--end 0.001"));
    assert_eq!(rate_text(3.16e-3), "3.2e-3");
    assert_eq!(rate_text(1e-2), "1e-2");
}

#[test]
fn the_suggestion_is_where_the_loss_falls_fastest_noise_or_not() {
    for steep in [1e-4, 1e-3, 3e-3] {
        for noise in [0.0, 0.05] {
            let sweep = sweep_of(SweepPlan::default(), steep, noise);
            let s = sweep.suggestion().expect("a suggestion");
            let off = (s.steepest / steep).log10().abs();
            assert!(
                off < 0.25,
                "steepest fall at {steep:e}, suggested {:e} (noise {noise})",
                s.steepest
            );
            assert!(s.lowest > s.steepest && s.lowest < 0.2, "{s:?}");
        }
    }
}

#[test]
fn the_sweep_stops_once_the_loss_blows_up_and_a_flat_curve_suggests_nothing() {
    let sweep = sweep_of(SweepPlan::default(), 1e-3, 0.0);
    // The blow-up past 1e-1 takes the running average over 4× its best well before 1e1.
    assert!(sweep.rates.len() < 100, "{} steps", sweep.rates.len());
    assert!(*sweep.rates.last().unwrap() < 1.0);
    let mut stopped = Sweep::default();
    assert!(stopped.record(1e-5, 2.0));
    assert!(!stopped.record(1e-4, f64::NAN));

    let mut flat = Sweep::default();
    let plan = SweepPlan::default();
    for step in 0..plan.steps {
        flat.record(plan.rate(step), 2.3 + 0.01 * (step as f64).sin());
    }
    assert_eq!(flat.suggestion(), None);
}
