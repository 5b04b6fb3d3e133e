//! The seeded, stratified train/validation split, with an optional stratified cap on the number
//! of training images.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Indices into a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<usize>,
    pub validation: Vec<usize>,
}

/// Splits each class by `validation_fraction` (every class with two or more images keeps at
/// least one of each side), then keeps at most `train_limit` training images in class proportion.
/// The same labels and seed always give the same split.
pub fn stratified_split(
    labels: &[usize],
    classes: usize,
    validation_fraction: f64,
    train_limit: Option<usize>,
    seed: u64,
) -> Split {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (index, &label) in labels.iter().enumerate() {
        by_class[label].push(index);
    }
    let mut validation = Vec::new();
    // (rank within class as a fraction, index): sorting by it interleaves classes in proportion.
    let mut ranked_train = Vec::new();
    for members in &mut by_class {
        members.shuffle(&mut rng);
        let n = members.len();
        let mut n_val = (n as f64 * validation_fraction).round() as usize;
        if n >= 2 {
            n_val = n_val.clamp(1, n - 1);
        } else {
            n_val = 0;
        }
        validation.extend_from_slice(&members[..n_val]);
        let train = &members[n_val..];
        ranked_train.extend(
            train
                .iter()
                .enumerate()
                .map(|(rank, &index)| ((rank as f64 + 0.5) / train.len() as f64, index)),
        );
    }
    ranked_train.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut train: Vec<usize> = ranked_train.into_iter().map(|(_, index)| index).collect();
    if let Some(limit) = train_limit {
        train.truncate(limit);
    }
    train.sort_unstable();
    validation.sort_unstable();
    Split { train, validation }
}
