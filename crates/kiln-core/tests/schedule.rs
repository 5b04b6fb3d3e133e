//! Each learning-rate schedule's rate against its formula at given steps.

use kiln_core::schedule::{At, Plan, ScheduleConfig, ScheduleKind};

fn plan(schedule: &ScheduleConfig) -> Plan<'_> {
    Plan {
        schedule,
        base: 1e-2,
        batches_per_epoch: 10,
        epochs: 5,
    }
}

fn at(epoch: usize, batch: usize) -> At {
    At { epoch, batch }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-15 + 1e-12 * b.abs()
}

#[test]
fn constant_and_step() {
    let constant = ScheduleConfig::default();
    assert_eq!(plan(&constant).rate(at(4, 7), &[]), 1e-2);
    let step = ScheduleConfig {
        kind: ScheduleKind::Step,
        every_epochs: 2,
        gamma: 0.5,
        ..ScheduleConfig::default()
    };
    let rates: Vec<f64> = (1..=5).map(|e| plan(&step).rate(at(e, 3), &[])).collect();
    assert_eq!(rates, [1e-2, 1e-2, 5e-3, 5e-3, 2.5e-3]);
}

#[test]
fn cosine_warms_up_linearly_then_falls_to_its_floor() {
    let cosine = ScheduleConfig {
        kind: ScheduleKind::Cosine,
        warmup_epochs: 1,
        min_lr: 1e-4,
        ..ScheduleConfig::default()
    };
    let p = plan(&cosine);
    // Warm-up: step k of 10 at (k + 1) / 10 of the base.
    assert!(close(p.rate(at(1, 1), &[]), 1e-3));
    assert!(close(p.rate(at(1, 10), &[]), 1e-2));
    // Then 40 steps from the base (step 10) to the floor (step 49), a cosine between.
    assert!(close(p.rate(at(2, 1), &[]), 1e-2));
    assert!(close(p.rate(at(5, 10), &[]), 1e-4));
    let progress = (29.0 - 10.0) / 39.0;
    let expected = 1e-4 + (1e-2 - 1e-4) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
    assert!(close(p.rate(at(3, 10), &[]), expected));
    let planned = p.planned(&[]);
    assert_eq!(planned.len(), 50);
    assert!(
        planned[10..].windows(2).all(|w| w[1] <= w[0]),
        "{planned:?}"
    );
}

#[test]
fn one_cycle_rises_to_the_base_then_falls_far_below_its_start() {
    let cycle = ScheduleConfig {
        kind: ScheduleKind::OneCycle,
        pct_start: 0.3,
        div_factor: 25.0,
        final_div_factor: 1e4,
        ..ScheduleConfig::default()
    };
    let p = plan(&cycle);
    assert!(close(p.rate(at(1, 1), &[]), 1e-2 / 25.0));
    // The rise takes 30% of 50 steps: step 15 (epoch 2, batch 6) is the peak.
    assert!(close(p.rate(at(2, 6), &[]), 1e-2));
    assert!(close(p.rate(at(5, 10), &[]), 1e-2 / 25.0 / 1e4));
    let planned = p.planned(&[]);
    let peak = planned
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap();
    assert_eq!(peak.0, 15);
}

#[test]
fn plateau_cuts_the_rate_after_patience_epochs_without_improvement() {
    let plateau = ScheduleConfig {
        kind: ScheduleKind::Plateau,
        factor: 0.5,
        patience: 2,
        min_lr: 2e-3,
        ..ScheduleConfig::default()
    };
    let p = plan(&plateau);
    // Improves twice, then two epochs without: one cut; two more: a second cut.
    let history = [1.0, 0.9, 0.95, 0.96, 0.97, 0.98];
    assert_eq!(
        p.rate(at(4, 1), &history),
        1e-2,
        "three epochs seen: no cut yet"
    );
    assert_eq!(p.rate(at(5, 1), &history), 5e-3, "after epoch 4: one cut");
    let longer = Plan { epochs: 10, ..p };
    assert_eq!(
        longer.rate(at(7, 1), &history),
        2.5e-3,
        "after epoch 6: two cuts"
    );
    // Never below its floor.
    let flat = [1.0; 9];
    assert_eq!(longer.rate(at(10, 1), &flat), 2e-3);
}
