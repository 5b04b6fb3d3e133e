//! Per-class scores (support, recall, precision, F1) from an evaluation's [`ClassCounts`], and
//! the finding-sized question "which class lags the others".

use crate::protocol::ClassCounts;

/// How one class fares; a score with nothing to divide by is 0, as scikit-learn reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassScore {
    /// Index into the run's class names.
    pub class: usize,
    pub support: u64,
    /// Of this class's images, the share predicted as it (per-class accuracy).
    pub recall: f64,
    /// Of the images predicted as this class, the share that are.
    pub precision: f64,
    pub f1: f64,
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Every class's scores, in class order.
pub fn scores(counts: &ClassCounts) -> Vec<ClassScore> {
    (0..counts.classes())
        .map(|class| {
            let (support, correct) = (counts.support[class], counts.correct[class]);
            let recall = ratio(correct, support);
            let precision = ratio(correct, counts.predicted[class]);
            let f1 = if recall + precision == 0.0 {
                0.0
            } else {
                2.0 * recall * precision / (recall + precision)
            };
            ClassScore {
                class,
                support,
                recall,
                precision,
                f1,
            }
        })
        .collect()
}

/// The scores with the worst recall first (ties: fewer images first, then class order), the
/// order a user reads them in: what the model misses most.
pub fn worst_first(counts: &ClassCounts) -> Vec<ClassScore> {
    let mut all = scores(counts);
    all.sort_by(|a, b| {
        a.recall
            .total_cmp(&b.recall)
            .then(a.support.cmp(&b.support))
            .then(a.class.cmp(&b.class))
    });
    all
}

/// Share of all images predicted right.
pub fn accuracy(counts: &ClassCounts) -> f64 {
    ratio(counts.correct.iter().sum(), counts.support.iter().sum())
}

/// Mean recall over the classes that have images (balanced accuracy).
pub fn mean_recall(counts: &ClassCounts) -> f64 {
    let present: Vec<ClassScore> = scores(counts)
        .into_iter()
        .filter(|s| s.support > 0)
        .collect();
    if present.is_empty() {
        return 0.0;
    }
    present.iter().map(|s| s.recall).sum::<f64>() / present.len() as f64
}

/// A class whose recall lags the mean of the others by at least `margin` (and that has enough
/// images for its recall to mean something): the worst such class, with the others' mean.
pub fn lagging_class(
    counts: &ClassCounts,
    margin: f64,
    min_support: u64,
) -> Option<(ClassScore, f64)> {
    let all = scores(counts);
    let present: Vec<&ClassScore> = all.iter().filter(|s| s.support > 0).collect();
    if present.len() < 2 {
        return None;
    }
    let worst = present
        .iter()
        .filter(|s| s.support >= min_support)
        .min_by(|a, b| a.recall.total_cmp(&b.recall).then(a.class.cmp(&b.class)))?;
    let others: Vec<f64> = present
        .iter()
        .filter(|s| s.class != worst.class)
        .map(|s| s.recall)
        .collect();
    let others_mean = others.iter().sum::<f64>() / others.len() as f64;
    (others_mean - worst.recall >= margin).then(|| ((*worst).clone(), others_mean))
}
