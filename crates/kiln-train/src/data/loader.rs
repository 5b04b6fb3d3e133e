//! The loader thread: shuffles each epoch, augments and normalises images, and hands ready
//! batches to the trainer through a bounded channel so decoding never stalls a training step.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, bounded};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{Augmenter, Dataset};

/// Batches prepared ahead of the trainer; enough to hide a slow augmentation, small enough to
/// keep memory flat.
const PREFETCH: usize = 4;

/// Per-channel mean and standard deviation of the training images (in 0–1 units).
#[derive(Debug, Clone, PartialEq)]
pub struct Normalizer {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalizer {
    /// The per-channel statistics torchvision's pretrained weights were trained with (RGB).
    pub fn imagenet() -> Self {
        Self {
            mean: vec![0.485, 0.456, 0.406],
            std: vec![0.229, 0.224, 0.225],
        }
    }

    pub fn fit(dataset: &Dataset, indices: &[usize]) -> Self {
        let plane = dataset.height * dataset.width;
        let mut sum = vec![0f64; dataset.channels];
        let mut sum_sq = vec![0f64; dataset.channels];
        for &index in indices {
            for (c, pixels) in dataset.image(index).chunks_exact(plane).enumerate() {
                for &p in pixels {
                    let v = p as f64 / 255.0;
                    sum[c] += v;
                    sum_sq[c] += v * v;
                }
            }
        }
        let n = (indices.len() * plane).max(1) as f64;
        let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
        let std = sum_sq
            .iter()
            .zip(&mean)
            .map(|(sq, &m)| ((sq / n - (m as f64).powi(2)).max(0.0).sqrt() as f32).max(1e-3))
            .collect();
        Self { mean, std }
    }

    /// Appends the normalised floats of one planar byte image to `out`.
    pub fn extend(&self, image: &[u8], out: &mut Vec<f32>) {
        let start = out.len();
        out.resize(start + image.len(), 0.0);
        self.write(image, &mut out[start..]);
    }

    /// Writes the normalised floats of one planar byte image into `out` (of the same length).
    pub fn write(&self, image: &[u8], out: &mut [f32]) {
        let plane = image.len() / self.mean.len();
        for (c, (pixels, target)) in image
            .chunks_exact(plane)
            .zip(out.chunks_exact_mut(plane))
            .enumerate()
        {
            let (mean, inv_std) = (self.mean[c], 1.0 / self.std[c]);
            for (value, &p) in target.iter_mut().zip(pixels) {
                *value = (p as f32 / 255.0 - mean) * inv_std;
            }
        }
    }

    /// The normalised images at `indices`, back to back.
    pub fn images(&self, dataset: &Dataset, indices: &[usize]) -> Vec<f32> {
        let mut out = Vec::with_capacity(indices.len() * dataset.image_len());
        for &index in indices {
            self.extend(dataset.image(index), &mut out);
        }
        out
    }
}

/// One training batch, ready to become tensors.
#[derive(Debug, Clone)]
pub struct Batch {
    /// 1-based epoch this batch belongs to.
    pub epoch: usize,
    /// 1-based batch index within the epoch.
    pub index: usize,
    /// `[len, channels, height, width]` normalised floats.
    pub images: Vec<f32>,
    pub labels: Vec<i64>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// What the loader thread produces.
#[derive(Debug, Clone)]
pub struct LoaderPlan {
    pub train: Vec<usize>,
    pub batch_size: usize,
    pub seed: u64,
    pub first_epoch: usize,
    /// Batches of `first_epoch` already trained (a run resumed mid-epoch): not produced again.
    pub skip_batches: usize,
    pub last_epoch: usize,
    pub normalizer: Normalizer,
    pub augmenter: Augmenter,
    /// How each epoch draws its images from `train`.
    pub sampler: crate::experiment::Sampler,
}

impl LoaderPlan {
    pub fn batches_per_epoch(&self) -> usize {
        self.train.len().div_ceil(self.batch_size)
    }
}

/// A running loader thread; dropping it stops the thread at its next send.
pub struct Loader {
    pub batches: Receiver<Batch>,
    handle: Option<JoinHandle<()>>,
}

impl Loader {
    pub fn spawn(dataset: Arc<Dataset>, plan: LoaderPlan) -> std::io::Result<Self> {
        let (sender, batches) = bounded(PREFETCH);
        // Augmenting a batch's images in parallel keeps a GPU fed: one core warps ~300 224x224
        // images a second, a GPU trains on thousands. A pool of its own keeps this work apart
        // from the CPU backend's.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("kiln-augment-{i}"))
            .build()
            .map_err(std::io::Error::other)?;
        let handle = std::thread::Builder::new()
            .name("kiln-loader".into())
            .spawn(move || {
                for epoch in plan.first_epoch..=plan.last_epoch {
                    let skip = if epoch == plan.first_epoch {
                        plan.skip_batches
                    } else {
                        0
                    };
                    for batch in epoch_batches(&dataset, &plan, &pool, epoch, skip) {
                        if sender.send(batch).is_err() {
                            return; // the trainer is gone
                        }
                    }
                }
            })?;
        Ok(Self {
            batches,
            handle: Some(handle),
        })
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        // Swap in a closed receiver so the thread's pending send fails and it can be joined.
        let (_, closed) = bounded(0);
        drop(std::mem::replace(&mut self.batches, closed));
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// Seeds derived from (run seed, epoch, batch) keep augmentation reproducible however the
/// loader and trainer threads interleave.
fn derived_seed(seed: u64, epoch: usize, batch: usize) -> u64 {
    seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (batch as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
}

/// The batches of one epoch after the first `skip`, built lazily so the bounded channel limits
/// work done ahead. The order depends only on the seed and epoch, so a resumed run sees the same.
fn epoch_batches<'a>(
    dataset: &'a Dataset,
    plan: &'a LoaderPlan,
    pool: &'a rayon::ThreadPool,
    epoch: usize,
    skip: usize,
) -> impl Iterator<Item = Batch> + 'a {
    let order = super::sampler::epoch_order(
        &plan.train,
        &dataset.labels,
        plan.sampler,
        &mut ChaCha8Rng::seed_from_u64(derived_seed(plan.seed, epoch, 0)),
    );
    let chunks: Vec<Vec<usize>> = order
        .chunks(plan.batch_size)
        .map(<[usize]>::to_vec)
        .collect();
    chunks
        .into_iter()
        .enumerate()
        .skip(skip)
        .map(move |(i, indices)| {
            let batch_seed = derived_seed(plan.seed, epoch, i + 1);
            let image_len = dataset.image_len();
            let mut images = vec![0f32; indices.len() * image_len];
            let fill = |(position, (&index, out)): (usize, (&usize, &mut [f32]))| {
                let image = dataset.image(index);
                if plan.augmenter.is_active() {
                    // One generator per image: the same draws however the pool splits the work.
                    let mut rng = ChaCha8Rng::seed_from_u64(
                        batch_seed ^ (position as u64 + 1).wrapping_mul(0x1656_67B1_9E37_79F9),
                    );
                    plan.augmenter
                        .apply_normalised(image, &mut rng, &plan.normalizer, out);
                } else {
                    plan.normalizer.write(image, out);
                }
            };
            if plan.augmenter.is_active() {
                use rayon::prelude::*;
                pool.install(|| {
                    indices
                        .par_iter()
                        .zip(images.par_chunks_mut(image_len))
                        .enumerate()
                        .for_each(fill)
                });
            } else {
                // Normalising alone is a memory copy: not worth waking the pool.
                indices
                    .iter()
                    .zip(images.chunks_mut(image_len))
                    .enumerate()
                    .for_each(fill);
            }
            Batch {
                epoch,
                index: i + 1,
                images,
                labels: indices.iter().map(|&i| dataset.labels[i] as i64).collect(),
            }
        })
}
