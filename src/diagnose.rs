//! Pure rules that read a run's epoch history and say, in plain words, what is going wrong and
//! what to try: overfitting, underfitting, slow convergence, divergence.

use crate::protocol::EpochMetrics;

/// The thresholds the rules use; from the experiment's `[monitor]` section.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Train − validation accuracy above this is overfitting.
    pub gap: f64,
    /// Epochs a trend must hold before it is reported.
    pub patience: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    Overfitting,
    Underfitting,
    Divergence,
}

impl Problem {
    pub fn title(self) -> &'static str {
        match self {
            Problem::Overfitting => "overfitting",
            Problem::Underfitting => "underfitting",
            Problem::Divergence => "diverged",
        }
    }
}

/// Something to try, with the key that does it live, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remedy {
    pub text: String,
    pub key: Option<char>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub problem: Problem,
    /// First epoch of the streak that triggered the finding.
    pub since_epoch: usize,
    /// What is happening, with the numbers.
    pub evidence: String,
    pub remedies: Vec<Remedy>,
}

/// Findings for a history of epochs (index 0 is epoch 1), most severe first.
pub fn diagnose(history: &[EpochMetrics], thresholds: Thresholds) -> Vec<Finding> {
    let mut findings = Vec::new();
    if let Some(finding) = overfitting(history, thresholds) {
        findings.push(finding);
    }
    if let Some(finding) = underfitting(history, thresholds) {
        findings.push(finding);
    }
    findings
}

/// The finding for a loss that became NaN or infinite.
pub fn divergence(epoch: usize, loss: &str, learning_rate: f64) -> Finding {
    Finding {
        problem: Problem::Divergence,
        since_epoch: epoch,
        evidence: format!("training loss became {loss}; the run is paused"),
        remedies: vec![
            Remedy {
                text: format!("lower the learning rate (now {learning_rate:.0e})"),
                key: Some('l'),
            },
            Remedy {
                text: "resume".into(),
                key: Some(' '),
            },
        ],
    }
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

fn overfitting(history: &[EpochMetrics], t: Thresholds) -> Option<Finding> {
    let last = history.last()?;
    let n = history.len();
    // Streak of epochs (ending now) whose gap is over the threshold.
    let gap_streak = history.iter().rev().take_while(|m| m.gap() > t.gap).count();
    // Streak of epochs where validation loss rose while training loss fell.
    let diverging_streak = history
        .windows(2)
        .rev()
        .take_while(|w| {
            w[1].validation_loss > w[0].validation_loss && w[1].train_loss < w[0].train_loss
        })
        .count();
    let by_gap = gap_streak >= t.patience;
    let by_loss = diverging_streak >= t.patience;
    if !by_gap && !by_loss {
        return None;
    }
    let since = if by_gap {
        n - gap_streak + 1
    } else {
        n - diverging_streak + 1
    };
    let mut evidence = Vec::new();
    if by_gap {
        evidence.push(format!(
            "gap {:.1} pts: train {:.1}% vs val {:.1}% (limit {:.1})",
            last.gap() * 100.0,
            last.train_accuracy * 100.0,
            last.validation_accuracy * 100.0,
            t.gap * 100.0
        ));
    }
    if by_loss {
        evidence.push(format!(
            "val loss up {diverging_streak} epochs while train loss falls"
        ));
    }
    let dropout_target = (last.dropout + 0.2).min(0.5);
    Some(Finding {
        problem: Problem::Overfitting,
        since_epoch: since,
        evidence: evidence.join("; "),
        remedies: vec![
            Remedy {
                text: format!("dropout {dropout_target:.2}"),
                key: Some('D'),
            },
            Remedy {
                text: "augmentation".into(),
                key: None,
            },
            Remedy {
                text: format!("stop at best epoch {}", best_epoch(history).unwrap_or(1)),
                key: Some('s'),
            },
        ],
    })
}

fn underfitting(history: &[EpochMetrics], t: Thresholds) -> Option<Finding> {
    let n = history.len();
    if n < t.patience.max(2) {
        return None;
    }
    let window = &history[n - t.patience.max(2)..];
    let first = window.first()?;
    let last = window.last()?;
    let low = last.train_accuracy < 0.7;
    let flat = last.train_accuracy - first.train_accuracy < 0.01;
    if !(low && flat) {
        return None;
    }
    Some(Finding {
        problem: Problem::Underfitting,
        since_epoch: n - window.len() + 1,
        evidence: format!(
            "train accuracy {:.1}%, flat for {} epochs",
            last.train_accuracy * 100.0,
            window.len()
        ),
        remedies: vec![
            Remedy {
                text: "higher learning rate".into(),
                key: Some('L'),
            },
            Remedy {
                text: "a bigger model (conv blocks, channels, dense units)".into(),
                key: None,
            },
            Remedy {
                text: "more epochs".into(),
                key: None,
            },
        ],
    })
}
