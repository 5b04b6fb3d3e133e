//! Replacing a checkpoint is crash-safe: stopped after any step of the write, as a killed
//! process would be, the folder still holds one complete checkpoint of that name (the old or
//! the new), and a resume's tidy-up leaves exactly that one.

use burn::optim::AdamConfig;
use kiln::experiment::ModelConfig;
use kiln::model::{Classifier, ModelShape};
use kiln::train::checkpoint::{self, CheckpointState, WriteStep};

use crate::common::scratch;

fn state(learning_rate: f64) -> CheckpointState {
    CheckpointState {
        epochs_completed: 2,
        epoch: 2,
        batches_done: 0,
        step: 40,
        learning_rate,
        dropout: 0.1,
    }
}

fn folders(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_crash_at_any_step_of_a_replace_leaves_one_complete_checkpoint() {
    let config = ModelConfig::default();
    let shape = ModelShape {
        channels: 1,
        height: 8,
        width: 8,
        classes: 10,
    };
    let device = burn::tensor::Device::flex();
    let model = Classifier::new(&config, shape, &device);
    let optimizer = AdamConfig::new().init();
    for step in [
        WriteStep::Written,
        WriteStep::OldMovedAside,
        WriteStep::Renamed,
    ] {
        let dir = scratch("checkpoint-crash");
        let old = checkpoint::write(&dir, &model, &optimizer, &state(1e-3)).unwrap();
        let name = old.file_name().unwrap().to_string_lossy().into_owned();
        checkpoint::write_until(&dir, &model, &optimizer, &state(2e-3), Some(step)).unwrap();

        // What a resume or fork would find right after the crash.
        let found = checkpoint::list(&dir);
        assert_eq!(found.len(), 1, "{step:?}: {:?}", folders(&dir));
        let (path, saved) = &found[0];
        assert!(
            [1e-3, 2e-3].contains(&saved.learning_rate),
            "{step:?}: {saved:?}"
        );
        let fresh = Classifier::new(&config, shape, &device);
        assert!(
            checkpoint::load_weights(path, fresh).is_ok(),
            "{step:?}: the checkpoint found is complete"
        );

        // The tidy-up on resume leaves that one checkpoint under its own name, nothing else.
        checkpoint::remove_partial(&dir);
        assert_eq!(folders(&dir), vec![name.clone()], "{step:?}");
        let (_, tidied) = &checkpoint::list(&dir)[0];
        assert_eq!(
            tidied, saved,
            "{step:?}: the same checkpoint as before the tidy-up"
        );
    }

    // Uninterrupted, the replacement wins and nothing is left beside it.
    let dir = scratch("checkpoint-replace");
    checkpoint::write(&dir, &model, &optimizer, &state(1e-3)).unwrap();
    let path = checkpoint::write(&dir, &model, &optimizer, &state(2e-3)).unwrap();
    assert_eq!(folders(&dir).len(), 1);
    assert_eq!(checkpoint::load_state(&path).unwrap().learning_rate, 2e-3);
}
