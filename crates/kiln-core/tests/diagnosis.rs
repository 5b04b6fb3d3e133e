//! The diagnosis rules on synthetic histories: each problem appears after `patience` epochs,
//! clears after as many good ones, and does not flap on noise.

use kiln_core::diagnose::{Context, best_epoch, diagnose};
use kiln_core::experiment::{Backbone, Experiment, MonitorConfig};
use kiln_core::protocol::{EpochMetrics, Finding, Fix, Problem};

pub fn context() -> Context {
    Context {
        monitor: MonitorConfig::default(),
        class_counts: vec![500; 10],
        parameters: 200_000,
        dropout: 0.0,
        learning_rate: 1e-3,
        batch_norm: false,
        augmentation: false,
        conv_channels: vec![16, 32],
        dense: vec![128],
        epochs: 20,
        class_names: (0..10).map(|d| d.to_string()).collect(),
        backbone: None,
        pretrained: false,
        image_side: 28,
        controls: Default::default(),
    }
}

/// Epochs from (train acc, val acc, train loss, val loss).
pub fn history(rows: &[(f64, f64, f64, f64)]) -> Vec<EpochMetrics> {
    rows.iter()
        .map(|&(train, val, train_loss, val_loss)| EpochMetrics {
            train_loss,
            train_accuracy: train,
            validation_loss: val_loss,
            validation_accuracy: val,
            learning_rate: 1e-3,
            dropout: 0.0,
            seconds: 1.0,
            images_per_second: 1000.0,
            classes: None,
        })
        .collect()
}

fn problems(findings: &[Finding]) -> Vec<Problem> {
    findings.iter().map(|f| f.problem).collect()
}

/// Problems after each prefix of the history.
fn timeline(h: &[EpochMetrics], c: &Context) -> Vec<Vec<Problem>> {
    (1..=h.len())
        .map(|n| problems(&diagnose(&h[..n], c)))
        .collect()
}

#[test]
fn healthy_training_raises_nothing() {
    let h = history(&[
        (0.70, 0.70, 1.00, 1.00),
        (0.82, 0.81, 0.60, 0.62),
        (0.90, 0.89, 0.40, 0.42),
        (0.94, 0.93, 0.25, 0.27),
        (0.96, 0.95, 0.17, 0.19),
    ]);
    assert!(timeline(&h, &context()).iter().all(Vec::is_empty));
}

#[test]
fn overfitting_needs_patience_epochs_then_names_fixes() {
    let h = history(&[
        (0.80, 0.79, 0.60, 0.60),
        (0.90, 0.84, 0.40, 0.45),
        (0.96, 0.85, 0.20, 0.46),
        (0.99, 0.85, 0.10, 0.50),
        (1.00, 0.84, 0.05, 0.57),
    ]);
    let t = timeline(&h, &context());
    // The mean gap of the last 3 epochs is over the limit from epoch 3 on: raised at epoch 5.
    assert!(
        t[3].is_empty(),
        "2 epochs over the limit are not yet 3: {t:?}"
    );
    assert_eq!(t[4], vec![Problem::Overfitting]);
    let findings = diagnose(&h, &context());
    let f = &findings[0];
    assert_eq!(f.since_epoch, 3);
    assert!(f.evidence.contains("gap 13.7 pts"), "{}", f.evidence);
    let fixes: Vec<&Fix> = f.remedies.iter().map(|r| &r.fix).collect();
    assert_eq!(fixes[0], &Fix::SetDropout { value: 0.2 });
    assert!(matches!(fixes[1], Fix::NewExperiment { suffix, .. } if suffix == "augment"));
    assert!(
        fixes.contains(&&Fix::Stop),
        "best epoch 3 is behind: {fixes:?}"
    );
    assert!(
        fixes
            .iter()
            .any(|f| matches!(f, Fix::NewExperiment { suffix, settings }
            if suffix == "early-stop"
                && settings == &vec![("early_stopping.patience".to_string(), "3".to_string())])),
        "early stopping is offered: {fixes:?}"
    );
    let stopping = Context {
        controls: kiln_core::diagnose::Controls {
            early_stopping: true,
            ..Default::default()
        },
        ..context()
    };
    assert!(
        !diagnose(&h, &stopping)[0]
            .remedies
            .iter()
            .any(|r| r.text.starts_with("early stopping")),
        "not to a run that has it"
    );
    assert_eq!(best_epoch(&h), Some(3));
}

#[test]
fn borderline_gap_at_the_threshold_is_not_overfitting() {
    // Exactly 5 points is not over a 5-point limit, and losses move together.
    let h = history(&[
        (0.90, 0.85, 0.40, 0.45),
        (0.92, 0.87, 0.35, 0.40),
        (0.93, 0.88, 0.30, 0.35),
        (0.94, 0.89, 0.28, 0.33),
    ]);
    assert!(timeline(&h, &context()).iter().all(Vec::is_empty));
}

#[test]
fn noisy_gap_does_not_flap() {
    // The gap crosses the limit every other epoch: never three in a row, so never raised.
    let mut rows = Vec::new();
    for i in 0..10 {
        let gap = if i % 2 == 0 { 0.07 } else { 0.03 };
        let loss = 0.5 - i as f64 * 0.02;
        rows.push((0.95, 0.95 - gap, loss, loss + 0.05 - (i % 2) as f64 * 0.01));
    }
    let h = history(&rows);
    assert!(
        timeline(&h, &context())
            .iter()
            .all(|p| !p.contains(&Problem::Overfitting))
    );
}

#[test]
fn a_raised_problem_clears_only_after_patience_good_epochs() {
    let mut rows = vec![(0.99, 0.90, 0.05, 0.30); 4];
    rows.extend([(0.95, 0.94, 0.04, 0.29); 4]);
    let t = timeline(&history(&rows), &context());
    assert!(t[3].contains(&Problem::Overfitting));
    assert!(
        t[4].contains(&Problem::Overfitting),
        "one good epoch does not clear it"
    );
    // The mean gap of the last 3 epochs falls under the limit at epoch 6; three epochs
    // without the signal (6, 7, 8) clear it.
    assert!(t[5].contains(&Problem::Overfitting));
    assert!(t[6].contains(&Problem::Overfitting));
    assert!(
        !t[7].contains(&Problem::Overfitting),
        "three good epochs clear it: {t:?}"
    );
}

#[test]
fn underfitting_is_low_and_flat() {
    let h = history(&[
        (0.40, 0.41, 1.60, 1.60),
        (0.45, 0.45, 1.50, 1.50),
        (0.452, 0.45, 1.49, 1.49),
        (0.455, 0.45, 1.485, 1.49),
        (0.457, 0.46, 1.48, 1.48),
        (0.458, 0.46, 1.478, 1.48),
        (0.459, 0.46, 1.476, 1.48),
        (0.460, 0.46, 1.475, 1.48),
    ]);
    let t = timeline(&h, &context());
    assert!(
        t[6].is_empty(),
        "the fitted line still climbs a point an epoch early on: {t:?}"
    );
    let findings = diagnose(&h, &context());
    assert_eq!(problems(&findings), vec![Problem::Underfitting]);
    // Flat on the fitted line (under a point per epoch) from epoch 6, once the early jump
    // weighs less in the window.
    assert_eq!(findings[0].since_epoch, 6);
    let remedies: Vec<&str> = findings[0]
        .remedies
        .iter()
        .map(|r| r.text.as_str())
        .collect();
    assert!(
        remedies[0].starts_with("bigger model (conv [32, 64, 128], dense [256])"),
        "{remedies:?}"
    );
    // A plateau: a lower rate now, or a schedule that lowers it on plateaus.
    assert_eq!(
        findings[0].remedies[1].fix,
        Fix::SetLearningRate { value: 1e-4 }
    );
    assert!(matches!(&findings[0].remedies[2].fix,
        Fix::NewExperiment { suffix, settings } if suffix == "plateau"
            && settings == &vec![("schedule.kind".to_string(), "\"plateau\"".to_string())]));
    let scheduled = Context {
        controls: kiln_core::diagnose::Controls {
            scheduled: true,
            ..Default::default()
        },
        ..context()
    };
    let findings = diagnose(&h, &scheduled);
    assert!(
        !findings[0]
            .remedies
            .iter()
            .any(|r| r.text.contains("schedule")),
        "a run with a schedule is not offered one"
    );
    // A backbone grows to the next deeper ResNet; past ResNet-50 there is none to offer.
    use kiln_core::experiment::Backbone;
    let on = |backbone| Context {
        backbone: Some(backbone),
        ..context()
    };
    let findings = diagnose(&h, &on(Backbone::Resnet18));
    assert!(matches!(&findings[0].remedies[0].fix,
        Fix::NewExperiment { settings, .. }
            if settings == &vec![("model.backbone".to_string(), "\"resnet34\"".to_string())]));
    let findings = diagnose(&h, &on(Backbone::Resnet50));
    assert!(
        !findings[0]
            .remedies
            .iter()
            .any(|r| r.text.starts_with("bigger")),
        "{:?}",
        findings[0].remedies
    );
}

#[test]
fn slow_convergence_suggests_batch_norm_until_it_is_on() {
    // Accuracy low but rising two points an epoch (not underfitting), loss falling steadily
    // by under 5% an epoch.
    let h = history(&[
        (0.30, 0.30, 1.800, 1.81),
        (0.32, 0.32, 1.746, 1.75),
        (0.34, 0.34, 1.694, 1.70),
        (0.36, 0.36, 1.643, 1.65),
        (0.38, 0.38, 1.594, 1.60),
    ]);
    let findings = diagnose(&h, &context());
    assert_eq!(problems(&findings), vec![Problem::SlowConvergence]);
    assert!(matches!(&findings[0].remedies[0].fix,
        Fix::NewExperiment { suffix, settings } if suffix == "batchnorm"
            && settings == &vec![("model.batch_norm".to_string(), "true".to_string())]));
    let with_bn = Context {
        batch_norm: true,
        ..context()
    };
    let findings = diagnose(&h, &with_bn);
    assert!(matches!(
        findings[0].remedies[0].fix,
        Fix::SetLearningRate { .. }
    ));
}

#[test]
fn too_little_data_is_reported_without_augmentation() {
    let small = Context {
        class_counts: vec![30; 10],
        ..context()
    };
    let h = history(&[(0.7, 0.7, 1.0, 1.0)]);
    let findings = diagnose(&h, &small);
    assert_eq!(problems(&findings), vec![Problem::TooLittleData]);
    assert!(
        findings[0]
            .evidence
            .starts_with("30 training images per class (under 100)")
    );
    let augmented = Context {
        augmentation: true,
        ..small
    };
    assert!(diagnose(&h, &augmented).is_empty());
}

#[test]
fn too_little_data_counts_each_class_on_its_own() {
    let h = history(&[(0.7, 0.7, 1.0, 1.0)]);
    // Exactly the limit is enough, for every class.
    let at_limit = Context {
        class_counts: vec![100; 10],
        ..context()
    };
    assert!(diagnose(&h, &at_limit).is_empty());
    // A mean of 100 hides a class one short of it.
    let mut counts = vec![100; 10];
    counts[3] = 99;
    counts[4] = 101;
    let one_short = Context {
        class_counts: counts,
        ..context()
    };
    let findings = diagnose(&h, &one_short);
    assert_eq!(problems(&findings), vec![Problem::TooLittleData]);
    assert!(
        findings[0]
            .evidence
            .starts_with("class(es) 3 of 10 have under 100 training images (fewest 99)"),
        "{}",
        findings[0].evidence
    );
}

#[test]
fn a_finding_held_while_it_clears_still_says_why() {
    let c = context();
    // Three epochs over the gap limit raise it; the fourth and fifth are back under the limit
    // with a falling validation loss (the recent mean gap too, at the fifth), but the warning is
    // held until `patience` clean epochs pass.
    let h = history(&[
        (0.90, 0.80, 0.5, 0.60),
        (0.95, 0.85, 0.4, 0.55),
        (0.99, 0.88, 0.3, 0.50),
        (0.99, 0.97, 0.2, 0.40),
        (0.99, 0.98, 0.15, 0.35),
    ]);
    let findings = diagnose(&h, &c);
    let overfitting = findings
        .iter()
        .find(|f| f.problem == Problem::Overfitting)
        .expect("still held");
    assert!(
        overfitting
            .evidence
            .starts_with("gap 1.0 pts now (limit 5.0)"),
        "{}",
        overfitting.evidence
    );
}

#[test]
fn a_class_far_below_the_others_is_a_finding_with_its_remedy() {
    // Ten classes of 50 validation images: class 7 recalls 30 of them, the others 48.
    let matrix = |weak: u64| -> Vec<u64> {
        let mut m = vec![0u64; 100];
        for c in 0..10 {
            m[c * 10 + c] = 48;
            m[c * 10 + (c + 1) % 10] = 2;
        }
        m[7 * 10 + 7] = weak;
        m[7 * 10 + 8] = 50 - weak;
        m
    };
    let epoch = |weak: u64| {
        let mut m = history(&[(0.95, 0.93, 0.2, 0.25)]).remove(0);
        m.classes = Some(kiln_core::protocol::ClassCounts::from_matrix(
            &matrix(weak),
            10,
        ));
        m
    };
    let mut runs: Vec<EpochMetrics> = Vec::new();
    for _ in 0..2 {
        runs.push(epoch(30));
        assert!(
            !diagnose(&runs, &context())
                .iter()
                .any(|f| f.problem == Problem::WeakClass),
            "before patience epochs"
        );
    }
    runs.push(epoch(30));
    let findings = diagnose(&runs, &context());
    let weak = findings
        .iter()
        .find(|f| f.problem == Problem::WeakClass)
        .expect("a weak class after 3 epochs");
    assert_eq!(weak.since_epoch, 1);
    assert!(
        weak.evidence
            .starts_with("class 7: recall 0.60 vs 0.96 mean of the others (50 val images)"),
        "{}",
        weak.evidence
    );
    assert!(matches!(weak.remedies[0].fix, Fix::NewExperiment { .. }));
    assert!(
        weak.remedies
            .iter()
            .any(|r| matches!(&r.fix, Fix::NewExperiment { settings, .. }
            if settings == &vec![("train.class_weights".to_string(), "\"balanced\"".to_string())])),
        "balanced class weights are offered: {:?}",
        weak.remedies
    );
    // Within the gap (recall 0.74 vs 0.96) it is no finding; old logs without counts neither.
    let close: Vec<EpochMetrics> = (0..3).map(|_| epoch(37)).collect();
    assert!(
        !diagnose(&close, &context())
            .iter()
            .any(|f| f.problem == Problem::WeakClass)
    );
    let old = history(&[(0.95, 0.93, 0.2, 0.25); 3]);
    assert!(
        !diagnose(&old, &context())
            .iter()
            .any(|f| f.problem == Problem::WeakClass)
    );
}

#[test]
fn validation_loss_rising_out_of_its_noise_is_overfitting_and_inside_it_is_not() {
    // The gap stays small; validation loss turns and climbs steadily while training loss falls.
    let climbing = [0.30, 0.28, 0.27, 0.28, 0.31, 0.35, 0.40, 0.46, 0.53];
    let rows: Vec<(f64, f64, f64, f64)> = climbing
        .iter()
        .enumerate()
        .map(|(i, &v)| (0.95, 0.93, 0.30 - 0.02 * i as f64, v))
        .collect();
    let findings = diagnose(&history(&rows), &context());
    let f = findings
        .iter()
        .find(|f| f.problem == Problem::Overfitting)
        .expect("a steady climb is overfitting");
    assert!(f.evidence.contains("val loss rising"), "{}", f.evidence);

    // The false alarm of the all-tricks run: validation loss up three epochs running
    // (0.064 → 0.080 → 0.083 → 0.096) inside swings of ±0.03, a gap of +0.3 points.
    let noisy = [0.090, 0.062, 0.095, 0.070, 0.064, 0.080, 0.083, 0.096];
    let rows: Vec<(f64, f64, f64, f64)> = noisy
        .iter()
        .enumerate()
        .map(|(i, &v)| (0.978, 0.975, 0.080 - 0.002 * i as f64, v))
        .collect();
    assert!(
        timeline(&history(&rows), &context())
            .iter()
            .all(|p| !p.contains(&Problem::Overfitting)),
        "rises inside the noise are not overfitting"
    );
}

/// Early stopping counts the epochs since the best metric last improved by more than its
/// `min_delta`, for either metric.
#[test]
fn early_stopping_counts_epochs_without_improvement() {
    use kiln_core::diagnose::epochs_without_improvement;
    use kiln_core::experiment::BestMetric;
    let epochs = history(&[
        (0.9, 0.80, 0.3, 0.50),
        (0.9, 0.85, 0.3, 0.40),
        (0.9, 0.84, 0.3, 0.41),
        (0.9, 0.86, 0.3, 0.39),
    ]);
    assert_eq!(
        epochs_without_improvement(&epochs, BestMetric::ValLoss, 0.0),
        0
    );
    assert_eq!(
        epochs_without_improvement(&epochs[..3], BestMetric::ValLoss, 0.0),
        1
    );
    // 0.39 beats 0.40 by less than 0.02: not an improvement.
    assert_eq!(
        epochs_without_improvement(&epochs, BestMetric::ValLoss, 0.02),
        2
    );
    assert_eq!(
        epochs_without_improvement(&epochs, BestMetric::ValAccuracy, 0.0),
        0
    );
    assert_eq!(epochs_without_improvement(&[], BestMetric::ValLoss, 0.0), 0);
}

#[test]
fn photos_with_too_little_data_are_offered_a_pretrained_backbone() {
    let photos = Context {
        class_counts: vec![30; 2],
        class_names: vec!["car".into(), "ambulance".into()],
        image_side: 224,
        ..context()
    };
    let h = history(&[(0.7, 0.7, 1.0, 1.0)]);
    let remedies = |context: &Context| -> Vec<String> {
        diagnose(&h, context)
            .iter()
            .flat_map(|f| f.remedies.iter().map(|r| r.text.clone()))
            .collect()
    };
    let pretrained = "pretrained ResNet-18 (ImageNet weights at weights/resnet18.pth)";
    assert_eq!(remedies(&photos), ["augmentation", pretrained]);
    // Augmented already: the backbone is what is left to try; with pretrained weights, or on
    // images too small for ImageNet's features, it is not offered.
    let augmented = Context {
        augmentation: true,
        ..photos.clone()
    };
    assert_eq!(remedies(&augmented), [pretrained]);
    let fine_tuned = Context {
        pretrained: true,
        ..augmented.clone()
    };
    assert!(remedies(&fine_tuned).is_empty());
    let icons = Context {
        image_side: 32,
        ..augmented
    };
    assert!(remedies(&icons).is_empty());

    // The remedy's file extends the run's experiment; until the weights are there it says how
    // to get them, then it loads as a fine-tuning experiment.
    let Some(Fix::NewExperiment { suffix, settings }) = diagnose(&h, &photos)
        .into_iter()
        .flat_map(|f| f.remedies)
        .map(|r| r.fix)
        .next_back()
    else {
        panic!("no new experiment")
    };
    let dir = crate::common::scratch("pretrained-remedy");
    let base = dir.join("photos.toml");
    std::fs::write(&base, "name = \"photos\"\n[data]\ndataset = \"digits\"\n").unwrap();
    let written = kiln_core::fixes::write_extending(&base, &suffix, &settings).unwrap();
    assert_eq!(written, dir.join("photos-pretrained.toml"));
    let missing = Experiment::load(&written, &[]).unwrap_err().to_string();
    assert!(missing.contains("model.weights"), "{missing}");
    assert!(
        missing.contains("torchvision.models.resnet18(weights='DEFAULT')"),
        "{missing}"
    );
    std::fs::create_dir_all(dir.join("weights")).unwrap();
    std::fs::write(dir.join("weights/resnet18.pth"), b"a state_dict").unwrap();
    let experiment = Experiment::load(&written, &[]).unwrap();
    assert_eq!(experiment.model.backbone, Some(Backbone::Resnet18));
    assert_eq!(experiment.model.freeze_epochs, 2);
    assert_eq!(experiment.model.backbone_lr_factor, 0.1);
    assert_eq!(experiment.data.channel_count(), 3);
}
