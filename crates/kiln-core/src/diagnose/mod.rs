//! Pure rules that read a run's epoch history and say, in plain words, which of the article's
//! problems it has — overfitting, underfitting, slow convergence, too little data — with the
//! numbers and the fixes to try. A problem must show for `patience` epochs in a row to be
//! reported and stay absent as long to clear, so noisy metrics do not make warnings flap.

mod trend;

use trend::{Trend, recent_mean};

use crate::experiment::{BestMetric, MonitorConfig, tricks};
use crate::protocol::{EpochMetrics, Finding, Fix, Problem, Remedy, Severity};

/// What the rules need besides the history: thresholds and the run's current set-up.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    pub monitor: MonitorConfig,
    /// Training images of each class.
    pub class_counts: Vec<usize>,
    pub parameters: usize,
    pub dropout: f64,
    pub learning_rate: f64,
    pub batch_norm: bool,
    pub augmentation: bool,
    pub conv_channels: Vec<usize>,
    pub dense: Vec<usize>,
    pub epochs: usize,
    /// The class names, for findings about one class.
    pub class_names: Vec<String>,
    /// The backbone the model is, if it is one (kiln's CNN otherwise).
    pub backbone: Option<crate::experiment::Backbone>,
    /// Whether the model starts from pretrained weights (`model.weights`).
    pub pretrained: bool,
    /// The model's input: the shorter side of its images, in pixels.
    pub image_side: usize,
    /// The training controls already on, so a remedy never offers what the run has: a
    /// learning-rate schedule, early stopping, class weights or the balanced sampler.
    pub controls: Controls,
}

/// Which of the training controls a run uses (see [`Context::controls`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Controls {
    pub scheduled: bool,
    pub early_stopping: bool,
    /// Class weights or the balanced sampler.
    pub class_balance: bool,
}

/// The 1-based epoch with the highest validation accuracy (the earliest of equals).
pub fn best_epoch(history: &[EpochMetrics]) -> Option<usize> {
    history
        .iter()
        .enumerate()
        .max_by(|a, b| {
            a.1.validation_accuracy
                .total_cmp(&b.1.validation_accuracy)
                .then(b.0.cmp(&a.0))
        })
        .map(|(i, _)| i + 1)
}

/// The best epoch (1-based) by `metric`; the earliest of equals.
pub fn best_epoch_by(history: &[EpochMetrics], metric: BestMetric) -> Option<usize> {
    match metric {
        BestMetric::ValAccuracy => best_epoch(history),
        BestMetric::ValLoss => history
            .iter()
            .enumerate()
            .filter(|(_, m)| m.validation_loss.is_finite())
            .min_by(|a, b| {
                a.1.validation_loss
                    .total_cmp(&b.1.validation_loss)
                    .then(a.0.cmp(&b.0))
            })
            .map(|(i, _)| i + 1),
    }
}

/// Epochs since `metric` last improved on its best by more than `min_delta` (0 when the last
/// epoch is the best): what early stopping counts against its patience.
pub fn epochs_without_improvement(
    history: &[EpochMetrics],
    metric: BestMetric,
    min_delta: f64,
) -> usize {
    let value = |m: &EpochMetrics| match metric {
        BestMetric::ValAccuracy => m.validation_accuracy,
        BestMetric::ValLoss => -m.validation_loss,
    };
    let mut best = f64::NEG_INFINITY;
    let mut waited = 0;
    for epoch in history {
        let v = value(epoch);
        if v.is_finite() && v > best + min_delta {
            best = v;
            waited = 0;
        } else {
            waited += 1;
        }
    }
    waited
}

/// Active findings after the last epoch of `history`, most severe first.
pub fn diagnose(history: &[EpochMetrics], context: &Context) -> Vec<Finding> {
    let m = &context.monitor;
    let mut findings = Vec::new();
    if let Some(since) = held(history, m.patience, |h| {
        overfitting_signal(h, m.gap_threshold)
    }) {
        findings.push(overfitting(history, context, since));
    }
    if let Some(since) = held(history, m.patience, |h| {
        underfitting_signal(h, m.underfit_accuracy)
    }) {
        findings.push(underfitting(history, context, since));
    } else if let Some(since) = held(history, m.patience, |h| {
        slow_signal(h, m.slow_loss_drop, m.underfit_accuracy)
    }) {
        findings.extend(slow_convergence(history, context, since));
    }
    if !history.is_empty() {
        findings.extend(too_little_data(context));
    }
    if held(history, m.patience, |h| {
        lagging(h, m.class_recall_gap).is_some()
    })
    .is_some()
    {
        findings.extend(weak_class(history, context));
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    findings
}

/// Replays a per-epoch signal with hysteresis; `Some(first epoch of the streak)` when the
/// problem is active after the last epoch.
fn held(
    history: &[EpochMetrics],
    patience: usize,
    signal: impl Fn(&[EpochMetrics]) -> bool,
) -> Option<usize> {
    let patience = patience.max(1);
    let (mut active, mut on, mut off, mut since) = (false, 0, 0, 0);
    for end in 1..=history.len() {
        if signal(&history[..end]) {
            on += 1;
            off = 0;
            if !active && on >= patience {
                active = true;
                since = end + 1 - on;
            }
        } else {
            off += 1;
            on = 0;
            if active && off >= patience {
                active = false;
            }
        }
    }
    active.then_some(since)
}

/// Epochs the level rules (gap, accuracy) average, so that one noisy epoch does not decide.
const LEVEL_EPOCHS: usize = 3;

/// Overfitting as of the last epoch: the recent mean gap over the threshold, or validation
/// loss climbing out of its own noise (see [`validation_loss_rising`]).
fn overfitting_signal(history: &[EpochMetrics], gap: f64) -> bool {
    if history.is_empty() {
        return false;
    }
    // A hair of tolerance: 0.90 − 0.85 is 0.05000000000000004 in floating point.
    recent_mean(history, LEVEL_EPOCHS, EpochMetrics::gap) > gap + 1e-9
        || validation_loss_rising(history)
}

/// Validation loss on a rising trend that its epoch-to-epoch scatter does not explain, while
/// training loss is not rising, and already materially above its best (by a tenth, and by twice
/// its noise): the model has started to learn its training images rather than the task. A run
/// of small rises inside the noise is not enough, nor a drift of a few percent.
fn validation_loss_rising(history: &[EpochMetrics]) -> bool {
    let (Some(validation), Some(train)) = (
        Trend::of(history, |m| m.validation_loss),
        Trend::of(history, |m| m.train_loss),
    ) else {
        return false;
    };
    let best = history
        .iter()
        .map(|m| m.validation_loss)
        .fold(f64::INFINITY, f64::min);
    let above_best = validation.last - best;
    validation.rising()
        && !train.rising()
        && above_best > 2.0 * validation.noise
        && above_best > 0.1 * best
}

/// Training accuracy low (its recent mean) and flat: under a point gained per epoch on the
/// fitted line.
fn underfitting_signal(history: &[EpochMetrics], low: f64) -> bool {
    let Some(accuracy) = Trend::of(history, |m| m.train_accuracy) else {
        return false;
    };
    recent_mean(history, LEVEL_EPOCHS, |m| m.train_accuracy) < low && accuracy.slope < 0.01
}

/// Training loss falling steadily (a trend, not noise) but by less than `drop` of itself per
/// epoch, while training accuracy is still low and climbing: the model learns, slowly. A loss
/// that slows as accuracy nears its ceiling is convergence, not this.
fn slow_signal(history: &[EpochMetrics], drop: f64, low: f64) -> bool {
    let (Some(loss), Some(accuracy)) = (
        Trend::of(history, |m| m.train_loss.max(1e-12).ln()),
        Trend::of(history, |m| m.train_accuracy),
    ) else {
        return false;
    };
    let fall_per_epoch = 1.0 - loss.slope.exp();
    recent_mean(history, LEVEL_EPOCHS, |m| m.train_accuracy) < low
        && loss.falling()
        && fall_per_epoch < drop
        && accuracy.slope >= 0.01
}

/// Validation images a class needs before its recall counts (a recall step of 0.1 or finer).
const MIN_CLASS_SUPPORT: u64 = 10;

/// The last epoch's lagging class, when its per-class counts show one.
fn lagging(history: &[EpochMetrics], gap: f64) -> Option<(crate::metrics::ClassScore, f64)> {
    let counts = history.last()?.classes.as_ref()?;
    crate::metrics::lagging_class(counts, gap, MIN_CLASS_SUPPORT)
}

/// One class far behind the others: the model misses it, whatever the overall accuracy says.
/// Its remedy is more (or augmented) images of it.
fn weak_class(history: &[EpochMetrics], context: &Context) -> Option<Finding> {
    let (worst, others) = lagging(history, context.monitor.class_recall_gap)?;
    let name = context
        .class_names
        .get(worst.class)
        .cloned()
        .unwrap_or_else(|| worst.class.to_string());
    // The streak's start for this class: the epochs it has lagged in a row.
    let since = history.len()
        - history
            .iter()
            .rev()
            .take_while(|m| {
                m.classes.as_ref().is_some_and(|c| {
                    crate::metrics::lagging_class(
                        c,
                        context.monitor.class_recall_gap,
                        MIN_CLASS_SUPPORT,
                    )
                    .is_some_and(|(s, _)| s.class == worst.class)
                })
            })
            .count()
        + 1;
    let mut remedies = Vec::new();
    if !context.augmentation {
        remedies.push(Remedy {
            text: "augmentation".into(),
            fix: augment_fix(),
        });
    }
    if !context.controls.class_balance {
        remedies.push(Remedy {
            text: "balanced class weights".into(),
            fix: Fix::NewExperiment {
                suffix: "balanced".into(),
                settings: vec![("train.class_weights".into(), "\"balanced\"".into())],
            },
        });
    }
    Some(Finding {
        problem: Problem::WeakClass,
        severity: Severity::Notice,
        since_epoch: since,
        evidence: format!(
            "class {name}: recall {:.2} vs {:.2} mean of the others ({} val images); more images \
             of it would help",
            worst.recall, others, worst.support
        ),
        remedies,
    })
}

fn augment_fix() -> Fix {
    Fix::NewExperiment {
        suffix: "augment".into(),
        settings: tricks::AUGMENT
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect(),
    }
}

fn list(values: &[usize]) -> String {
    let items: Vec<String> = values.iter().map(ToString::to_string).collect();
    format!("[{}]", items.join(", "))
}

fn overfitting(history: &[EpochMetrics], context: &Context, since: usize) -> Finding {
    let last = &history[history.len() - 1];
    let mut evidence = Vec::new();
    let mean_gap = recent_mean(history, LEVEL_EPOCHS, EpochMetrics::gap);
    if mean_gap > context.monitor.gap_threshold + 1e-9 {
        evidence.push(format!(
            "gap {:.1} pts over the last {} epochs (limit {:.1}): train {:.1}% vs val {:.1}% now",
            mean_gap * 100.0,
            LEVEL_EPOCHS.min(history.len()),
            context.monitor.gap_threshold * 100.0,
            last.train_accuracy * 100.0,
            last.validation_accuracy * 100.0
        ));
    }
    if let Some(trend) = Trend::of(history, |m| m.validation_loss)
        && validation_loss_rising(history)
    {
        evidence.push(format!(
            "val loss rising {:.3}/epoch over {} epochs (noise ±{:.3}) while train loss falls",
            trend.slope, trend.points, trend.noise
        ));
    }
    if evidence.is_empty() {
        // Held while it clears: say so rather than show an empty warning.
        evidence.push(format!(
            "gap {:.1} pts now (limit {:.1}); the warning clears after {} epoch(s) without \
             overfitting",
            last.gap() * 100.0,
            context.monitor.gap_threshold * 100.0,
            context.monitor.patience.max(1)
        ));
    }
    let best = best_epoch(history).unwrap_or(1);
    let dropout = ((context.dropout + 0.2).min(0.5) * 100.0).round() / 100.0;
    let mut remedies = Vec::new();
    if dropout > context.dropout {
        remedies.push(Remedy {
            text: format!("dropout {dropout:.2}"),
            fix: Fix::SetDropout { value: dropout },
        });
    }
    if !context.augmentation {
        remedies.push(Remedy {
            text: "augmentation".into(),
            fix: augment_fix(),
        });
    }
    if best < history.len() {
        remedies.push(Remedy {
            text: format!("stop (best was epoch {best})"),
            fix: Fix::Stop,
        });
    }
    if !context.controls.early_stopping {
        remedies.push(Remedy {
            text: format!("early stopping (patience {EARLY_STOPPING_PATIENCE})"),
            fix: Fix::NewExperiment {
                suffix: "early-stop".into(),
                settings: vec![(
                    "early_stopping.patience".into(),
                    EARLY_STOPPING_PATIENCE.to_string(),
                )],
            },
        });
    }
    let smaller: Vec<usize> = context.dense.iter().map(|d| (d / 2).max(8)).collect();
    if !context.dense.is_empty() && smaller != context.dense {
        remedies.push(Remedy {
            text: format!("fewer parameters (dense {})", list(&smaller)),
            fix: Fix::NewExperiment {
                suffix: "smaller".into(),
                settings: vec![("model.dense".into(), list(&smaller))],
            },
        });
    }
    Finding {
        problem: Problem::Overfitting,
        severity: Severity::Warning,
        since_epoch: since,
        evidence: evidence.join("; "),
        remedies,
    }
}

/// The patience the overfitting remedy proposes: enough epochs to ride out one noisy epoch,
/// few enough to stop before the gap grows much.
const EARLY_STOPPING_PATIENCE: usize = 3;

/// A schedule as a remedy: a new experiment with `[schedule] kind`.
fn schedule_remedy(text: &str, kind: &str) -> Remedy {
    Remedy {
        text: text.into(),
        fix: Fix::NewExperiment {
            suffix: kind.replace('_', "-"),
            settings: vec![("schedule.kind".into(), format!("\"{kind}\""))],
        },
    }
}

/// A bigger model: kiln's CNN twice as wide with a third block, or the next deeper ResNet
/// (none past ResNet-50 and MobileNetV2, whose bigger siblings kiln does not build).
fn bigger_fix(context: &Context) -> Option<(String, Fix)> {
    use crate::experiment::Backbone;
    if let Some(backbone) = context.backbone {
        let deeper = match backbone {
            Backbone::Resnet18 => Backbone::Resnet34,
            Backbone::Resnet34 => Backbone::Resnet50,
            Backbone::Resnet50 | Backbone::MobilenetV2 => return None,
        };
        return Some((
            format!("bigger model ({})", deeper.name()),
            Fix::NewExperiment {
                suffix: "bigger".into(),
                settings: vec![("model.backbone".into(), format!("\"{}\"", deeper.name()))],
            },
        ));
    }
    let mut conv: Vec<usize> = context.conv_channels.iter().map(|c| c * 2).collect();
    if conv.len() < 3 {
        conv.push(conv.last().copied().unwrap_or(16) * 2);
    }
    let dense: Vec<usize> = if context.dense.is_empty() {
        vec![128]
    } else {
        context.dense.iter().map(|d| d * 2).collect()
    };
    Some((
        format!(
            "bigger model (conv {}, dense {})",
            list(&conv),
            list(&dense)
        ),
        Fix::NewExperiment {
            suffix: "bigger".into(),
            settings: vec![
                ("model.conv_channels".into(), list(&conv)),
                ("model.dense".into(), list(&dense)),
            ],
        },
    ))
}

fn underfitting(history: &[EpochMetrics], context: &Context, since: usize) -> Finding {
    let last = &history[history.len() - 1];
    // Flat at a high loss: the steps may be too large to settle (what reduce-on-plateau
    // answers), when the model is not simply too small.
    let lr = context.learning_rate / 10.0;
    let mut remedies: Vec<Remedy> = bigger_fix(context)
        .map(|(text, fix)| Remedy { text, fix })
        .into_iter()
        .collect();
    remedies.push(Remedy {
        text: format!("lower learning rate {lr:.0e}"),
        fix: Fix::SetLearningRate { value: lr },
    });
    if !context.controls.scheduled {
        remedies.push(schedule_remedy("reduce-on-plateau schedule", "plateau"));
    }
    remedies.push(Remedy {
        text: format!("{} epochs", context.epochs * 2),
        fix: Fix::NewExperiment {
            suffix: "longer".into(),
            settings: vec![("train.epochs".into(), (context.epochs * 2).to_string())],
        },
    });
    Finding {
        problem: Problem::Underfitting,
        severity: Severity::Warning,
        since_epoch: since,
        evidence: format!(
            "train accuracy {:.1}%, flat (under a point per epoch) since epoch {since} (below \
             {:.0}%)",
            last.train_accuracy * 100.0,
            context.monitor.underfit_accuracy * 100.0
        ),
        remedies,
    }
}

fn slow_convergence(history: &[EpochMetrics], context: &Context, since: usize) -> Option<Finding> {
    let last = history.last()?;
    let loss = Trend::of(history, |m| m.train_loss.max(1e-12).ln())?;
    let fell = (1.0 - loss.slope.exp()) * 100.0;
    let mut remedies = Vec::new();
    if !context.batch_norm {
        remedies.push(Remedy {
            text: "batch normalisation".into(),
            fix: Fix::NewExperiment {
                suffix: "batchnorm".into(),
                settings: vec![("model.batch_norm".into(), "true".into())],
            },
        });
    }
    let lr = context.learning_rate * 2.0;
    remedies.push(Remedy {
        text: format!("learning rate {lr:.0e}"),
        fix: Fix::SetLearningRate { value: lr },
    });
    if !context.controls.scheduled {
        // One-cycle's high middle rates are what it is known for: fast convergence.
        remedies.push(schedule_remedy("one-cycle schedule", "one_cycle"));
    }
    Some(Finding {
        problem: Problem::SlowConvergence,
        severity: Severity::Notice,
        since_epoch: since,
        evidence: format!(
            "train loss falling {fell:.1}% per epoch over {} epochs (under {:.0}%) at {:.1}% \
             train accuracy",
            loss.points,
            context.monitor.slow_loss_drop * 100.0,
            last.train_accuracy * 100.0
        ),
        remedies,
    })
}

/// Judged on each class's own count: a mean hides one starved class, and a class with exactly
/// the limit has enough.
fn too_little_data(context: &Context) -> Option<Finding> {
    let limit = context.monitor.min_images_per_class;
    let under: Vec<(usize, usize)> = context
        .class_counts
        .iter()
        .copied()
        .enumerate()
        .filter(|&(_, count)| count < limit)
        .collect();
    let mut remedies = Vec::new();
    if !context.augmentation {
        remedies.push(Remedy {
            text: "augmentation".into(),
            fix: augment_fix(),
        });
    }
    remedies.extend(pretrained_remedy(context));
    if remedies.is_empty() || under.is_empty() {
        return None;
    }
    let (fewest_class, fewest) = under
        .iter()
        .copied()
        .min_by_key(|&(_, n)| n)
        .unwrap_or_default();
    let classes = context.class_counts.len();
    let which = if under.len() == classes {
        let mean = context.class_counts.iter().sum::<usize>() as f64 / classes as f64;
        let spread = if under.iter().all(|&(_, n)| n == fewest) {
            String::new()
        } else {
            format!("; fewest {fewest}, class {fewest_class}")
        };
        format!(
            "{:.0} training images per class (under {limit}{spread})",
            mean
        )
    } else {
        let names: Vec<String> = under.iter().map(|(c, _)| c.to_string()).collect();
        format!(
            "class(es) {} of {classes} have under {limit} training images (fewest {fewest})",
            names.join(", ")
        )
    };
    Some(Finding {
        problem: Problem::TooLittleData,
        severity: Severity::Notice,
        since_epoch: 0,
        evidence: format!("{which} for {} parameters", context.parameters),
        remedies,
    })
}

/// Where [`pretrained_remedy`]'s experiment looks for the weights, relative to its own file;
/// the weights themselves come from torchvision (docs/fine-tuning.md says how).
pub const PRETRAINED_WEIGHTS: &str = "weights/resnet18.pth";

/// Images this size or larger carry what ImageNet features describe; smaller ones (digits,
/// icons) gain little from them.
const PRETRAINED_MIN_SIDE: usize = 64;

/// Start from an ImageNet-pretrained ResNet-18 (for photos, when the run has no pretrained
/// weights): its head trains alone for two epochs, then the backbone joins at a tenth of the
/// rate, as fine-tuning recipes do.
fn pretrained_remedy(context: &Context) -> Option<Remedy> {
    if context.pretrained || context.image_side < PRETRAINED_MIN_SIDE {
        return None;
    }
    let settings = [
        ("data.channels", "3".to_string()),
        ("model.backbone", "\"resnet18\"".to_string()),
        ("model.weights", format!("\"{PRETRAINED_WEIGHTS}\"")),
        ("model.freeze_epochs", "2".to_string()),
        ("model.backbone_lr_factor", "0.1".to_string()),
        ("train.learning_rate", "1e-3".to_string()),
    ];
    Some(Remedy {
        text: format!("pretrained ResNet-18 (ImageNet weights at {PRETRAINED_WEIGHTS})"),
        fix: Fix::NewExperiment {
            suffix: "pretrained".into(),
            settings: settings
                .into_iter()
                .map(|(key, value)| (key.to_string(), value))
                .collect(),
        },
    })
}

/// The finding for a loss that became NaN or infinite (the trainer has paused the run).
pub fn divergence(epoch: usize, loss: &str, learning_rate: f64) -> Finding {
    let lower = learning_rate / 10.0;
    Finding {
        problem: Problem::Divergence,
        severity: Severity::Critical,
        since_epoch: epoch,
        evidence: format!("training loss became {loss}; the run is paused"),
        remedies: vec![Remedy {
            text: format!("learning rate {lower:.0e}, then resume (space)"),
            fix: Fix::SetLearningRate { value: lower },
        }],
    }
}
