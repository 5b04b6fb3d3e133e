//! Pictures for the image view: a run's training images beside augmented draws of them, and
//! the validation images its model gets wrong, each a captioned tile. Built off the screen's
//! thread from the run's own directory, so the trainer never waits for them.

use std::path::Path;

use crate::data::Augmenter;
use crate::experiment::{BackendChoice, Experiment};
use crate::infer::{CheckpointChoice, RunData, TrainedModel, mistakes};
pub use kiln_core::gallery::{AUGMENTED_IMAGES, DRAWS, Kind, MAX_MISTAKES, Pictures, Tile};

/// Builds the `kind` gallery of the run in `run` (`seed` draws the augmentation).
pub fn build(run: &Path, kind: Kind, seed: u64) -> Result<Pictures, String> {
    let built = match kind {
        Kind::Augmented => augmented(run, seed),
        Kind::Mistakes => mistakes(run).map(|(epoch, tiles)| Pictures {
            tiles,
            epoch: Some(epoch),
            note: None,
        }),
    };
    built.map_err(|err| format!("{err:#}"))
}

/// Rows of the original then [`DRAWS`] augmented copies, with the run's `[augment]` settings
/// drawn from `seed`.
pub fn augmented(run: &Path, seed: u64) -> anyhow::Result<Pictures> {
    let experiment = Experiment::load(&run.join(crate::runs::EXPERIMENT_FILE), &[])?;
    let dataset = crate::data::load(&experiment.data)?;
    let split = crate::train::split(&dataset, &experiment)?;
    let picked = crate::augment_preview::pick(&dataset, &split.train, AUGMENTED_IMAGES);
    let augmenter = Augmenter::new(experiment.augment.clone(), dataset.height, dataset.width);
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed);
    let mut tiles = Vec::new();
    for index in picked {
        let class = &dataset.classes[dataset.labels[index]];
        let original = dataset.image(index);
        tiles.push(Tile {
            image: dataset.rgb_image(original),
            caption: format!("{class} original"),
        });
        for draw in 1..=DRAWS {
            let augmented = augmenter.apply(original, &mut rng);
            tiles.push(Tile {
                image: dataset.rgb_image(&augmented),
                caption: format!("{class} draw {draw}"),
            });
        }
    }
    let note = (!augmenter.is_active())
        .then(|| "augmentation is off in this run: the draws are the originals".to_string());
    Ok(Pictures {
        tiles,
        epoch: None,
        note,
    })
}

/// The validation images the run's newest checkpoint gets wrong, the most confident first:
/// `true → predicted confidence`. Evaluated on the CPU, so a GPU trainer keeps its device.
pub fn mistakes(run: &Path) -> anyhow::Result<(usize, Vec<Tile>)> {
    let trained = TrainedModel::open(run, CheckpointChoice::Last, Some(BackendChoice::Cpu))?;
    let data = RunData::load(&trained.experiment)?;
    let wrong = mistakes::find(&trained, &data)?;
    let names = &trained.preprocessing.classes;
    let tiles = wrong
        .iter()
        .take(MAX_MISTAKES)
        .map(|m| Tile {
            image: data.dataset.rgb_image(data.dataset.image(m.index)),
            caption: format!(
                "{} → {} {:.2}",
                names[m.truth], names[m.predicted], m.confidence
            ),
        })
        .collect();
    Ok((trained.state.epochs_completed, tiles))
}
