//! Class balance settings: how `train.class_weights`, `label_smoothing`, `sampler` and
//! `grad_clip_norm` read from a file, the errors for bad values, and the balanced weights'
//! formula.

use kiln_core::balance::class_weights;
use kiln_core::experiment::{ClassWeights, Experiment, Sampler, WeightRule};

use crate::common::{scratch, write};

fn load(text: &str) -> Result<Experiment, String> {
    let dir = scratch("balance");
    let path = dir.join("exp.toml");
    write(&path, text);
    Experiment::load(&path, &[]).map_err(|err| err.to_string())
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|c| format!("c{c}")).collect()
}

#[test]
fn the_settings_read_from_the_file_and_round_trip() {
    let experiment = load(
        "[train]\nclass_weights = \"balanced\"\nlabel_smoothing = 0.1\nsampler = \"balanced\"\n\
         grad_clip_norm = 1\n",
    )
    .unwrap();
    let t = &experiment.train;
    assert_eq!(
        t.class_weights,
        Some(ClassWeights::Rule(WeightRule::Balanced))
    );
    assert_eq!(t.label_smoothing, 0.1);
    assert_eq!(t.sampler, Sampler::Balanced);
    assert_eq!(t.grad_clip_norm, 1.0);
    let again = Experiment::from_toml(&experiment.to_toml().unwrap()).unwrap();
    assert_eq!(again, experiment);

    // Integers are numbers too; a list reads back as a list.
    let listed = load("[train]\nclass_weights = [1, 2.5]\n").unwrap();
    assert_eq!(
        listed.train.class_weights,
        Some(ClassWeights::Given(vec![1.0, 2.5]))
    );
    let again = Experiment::from_toml(&listed.to_toml().unwrap()).unwrap();
    assert_eq!(again, listed);
    // Off by default, and then absent from the resolved file.
    let plain = load("[train]\nepochs = 2\n").unwrap();
    assert_eq!(plain.train.class_weights, None);
    assert!(!plain.to_toml().unwrap().contains("class_weights"));
}

#[test]
fn bad_values_name_the_line_and_what_is_expected() {
    let message = load("[train]\nclass_weights = \"equal\"\n").unwrap_err();
    assert!(
        message.contains("exp.toml:2") && message.contains("\"balanced\" or a list of numbers"),
        "{message}"
    );
    let message = load("[train]\nepochs = 2\nclass_weights = [1.0, 0]\n").unwrap_err();
    assert!(
        message.contains("exp.toml:3") && message.contains("one positive number per class"),
        "{message}"
    );
    let message = load("[train]\nlabel_smoothing = 1.0\n").unwrap_err();
    assert!(
        message.contains("exp.toml:2") && message.contains("[0, 1)"),
        "{message}"
    );
    let message = load("[train]\ngrad_clip_norm = -1\n").unwrap_err();
    assert!(message.contains("non-negative gradient norm"), "{message}");
    let message = load("[train]\nsampler = \"weighted\"\n").unwrap_err();
    assert!(message.contains("\"shuffle\", \"balanced\""), "{message}");
}

#[test]
fn balanced_weights_give_every_class_the_same_share_of_the_loss() {
    let rule = ClassWeights::Rule(WeightRule::Balanced);
    let counts = [90, 10, 20];
    let weights = class_weights(Some(&rule), &counts, &names(3))
        .unwrap()
        .unwrap();
    // n / (k · n_c): 120 / (3 · 90), 120 / (3 · 10), 120 / (3 · 20).
    let expected = [120.0 / 270.0, 4.0, 2.0];
    for (w, e) in weights.iter().zip(expected) {
        assert!((w - e).abs() < 1e-12, "{weights:?}");
    }
    // Each class's total weight is the same: n / k.
    for (w, n) in weights.iter().zip(counts) {
        assert!((w * n as f64 - 40.0).abs() < 1e-9);
    }
    assert_eq!(class_weights(None, &counts, &names(3)).unwrap(), None);
}

#[test]
fn a_list_must_give_one_weight_per_class() {
    let given = ClassWeights::Given(vec![1.0, 3.0]);
    assert_eq!(
        class_weights(Some(&given), &[5, 5], &names(2)).unwrap(),
        Some(vec![1.0, 3.0])
    );
    let err = class_weights(Some(&given), &[5, 5, 5], &names(3)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "train.class_weights gives 2 weight(s) but the data has 3 classes (c0, c1, c2); \
         give one per class in that order, or \"balanced\""
    );
}
