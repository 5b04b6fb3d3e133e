//! The order an epoch sees the training images in: each once, shuffled; or drawn with
//! replacement so that every class is equally likely (`train.sampler = "balanced"`).

use rand::seq::{IndexedRandom, SliceRandom};
use rand_chacha::ChaCha8Rng;

use crate::experiment::Sampler;

/// One epoch's image indices: as many as `train` holds. `labels` are the whole dataset's.
pub fn epoch_order(
    train: &[usize],
    labels: &[usize],
    sampler: Sampler,
    rng: &mut ChaCha8Rng,
) -> Vec<usize> {
    match sampler {
        Sampler::Shuffle => {
            let mut order = train.to_vec();
            order.shuffle(rng);
            order
        }
        Sampler::Balanced => {
            let classes = labels.iter().copied().max().map_or(0, |c| c + 1);
            let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
            for &index in train {
                by_class[labels[index]].push(index);
            }
            by_class.retain(|members| !members.is_empty());
            // A class first, then one of its images: each image's chance is 1 / (k · n_c).
            (0..train.len())
                .filter_map(|_| by_class.choose(rng)?.choose(rng).copied())
                .collect()
        }
    }
}
