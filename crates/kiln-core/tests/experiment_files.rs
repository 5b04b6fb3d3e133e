//! Experiment files: loading, `extends`, `--set`, and errors that name file, line and key.

use kiln_core::experiment::{BackendChoice, Experiment};

use crate::common::{repo_path, scratch, write};

fn error_for(text: &str, overrides: &[&str]) -> String {
    let dir = scratch("config");
    let path = dir.join("exp.toml");
    write(&path, text);
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    match Experiment::load(&path, &overrides) {
        Ok(experiment) => panic!("expected an error, loaded {experiment:#?}"),
        Err(err) => err.to_string(),
    }
}

fn assert_contains(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(
            message.contains(part),
            "expected {part:?} in the message:\n{message}"
        );
    }
}

#[test]
fn every_shipped_experiment_loads() {
    let dir = repo_path("experiments");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("experiments/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            // The case study's photos are not shipped; point it at a folder of that layout.
            let vehicles = path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("vehicles");
            let mut overrides = Vec::new();
            if vehicles {
                let folder = scratch("vehicles-layout");
                std::fs::create_dir_all(folder.join("images")).unwrap();
                write(&folder.join("train.csv"), "image_names,emergency_or_not\n");
                overrides.push(format!("data.dataset={}", folder.display()));
            }
            // Nor are torchvision's weights: the user saves them (docs/fine-tuning.md).
            if path.to_string_lossy().contains("pretrained") {
                let weights = scratch("weights").join("resnet18.pth");
                write(&weights, "a state_dict");
                overrides.push(kiln_core::experiment::string_override(
                    "model.weights",
                    &weights.display().to_string(),
                ));
            }
            let experiment = Experiment::load(&path, &overrides)
                .unwrap_or_else(|err| panic!("{} does not load: {err}", path.display()));
            names.push(experiment.name);
        }
    }
    names.sort();
    for expected in [
        "all-tricks",
        "augment",
        "baseline",
        "batchnorm",
        "bigger",
        "digits",
        "dropout",
        "vehicles",
        "vehicles-all",
        "vehicles-batchnorm",
        "vehicles-dropout",
        "vehicles-pretrained",
    ] {
        assert!(names.contains(&expected.to_string()), "missing {expected}");
    }
}

#[test]
fn extends_inherits_and_overrides() {
    let baseline = Experiment::load(&repo_path("experiments/baseline.toml"), &[]).unwrap();
    let dropout = Experiment::load(&repo_path("experiments/dropout.toml"), &[]).unwrap();
    assert_eq!(baseline.model.dropout, 0.0);
    assert_eq!(dropout.model.dropout, 0.3);
    assert_eq!(dropout.name, "dropout");
    // Everything the trick file does not state comes from the baseline.
    assert_eq!(dropout.data, baseline.data);
    assert_eq!(dropout.train, baseline.train);
    assert_eq!(dropout.model.conv_channels, baseline.model.conv_channels);
    assert_eq!(baseline.data.train_images, Some(1000));
}

#[test]
fn set_overrides_take_toml_values_and_bare_strings() {
    let dir = scratch("set");
    std::fs::create_dir_all(dir.join("vehicles/a")).unwrap();
    let path = dir.join("exp.toml");
    write(&path, "[data]\ndataset = \"digits\"\n");
    let folder = dir.join("vehicles");
    let overrides = vec![
        "model.dropout=0.25".to_string(),
        "model.conv_channels=[8, 8]".to_string(),
        format!("data.dataset={}", folder.display()),
        "train.backend=cpu".to_string(),
        "name=renamed".to_string(),
    ];
    let experiment = Experiment::load(&path, &overrides).unwrap();
    assert_eq!(experiment.model.dropout, 0.25);
    assert_eq!(experiment.model.conv_channels, vec![8, 8]);
    assert_eq!(experiment.data.dataset, folder.display().to_string());
    assert_eq!(experiment.train.backend, BackendChoice::Cpu);
    assert_eq!(experiment.name, "renamed");
}

#[test]
fn name_defaults_to_the_file_name() {
    let dir = scratch("name");
    let path = dir.join("my-experiment.toml");
    write(&path, "[train]\nepochs = 2\n");
    assert_eq!(Experiment::load(&path, &[]).unwrap().name, "my-experiment");
}

#[test]
fn unknown_key_names_file_line_and_nearest_key() {
    let message = error_for("[model]\nconv_channels = [8]\ndropuot = 0.3\n", &[]);
    assert_contains(
        &message,
        &[
            "exp.toml:3",
            "`model.dropuot`",
            "did you mean `model.dropout`",
        ],
    );
}

#[test]
fn key_in_the_wrong_section_suggests_the_right_one() {
    let message = error_for("[model]\nlearning_rate = 0.1\n", &[]);
    assert_contains(
        &message,
        &[
            "exp.toml:2",
            "`model.learning_rate`",
            "`train.learning_rate`",
        ],
    );
}

#[test]
fn unknown_section_is_reported() {
    let message = error_for("[trian]\nepochs = 3\n", &[]);
    assert_contains(&message, &["exp.toml:1", "`trian`", "did you mean `train`"]);
}

#[test]
fn wrong_type_names_expected_type() {
    let message = error_for("[train]\n\nepochs = \"ten\"\n", &[]);
    assert_contains(
        &message,
        &["exp.toml:3", "`train.epochs`", "an integer", "\"ten\""],
    );
}

#[test]
fn unknown_choice_lists_the_valid_ones() {
    let message = error_for("[train]\noptimizer = \"adagrad\"\n", &[]);
    assert_contains(
        &message,
        &[
            "exp.toml:2",
            "`train.optimizer`",
            "\"adam\", \"adamw\", \"sgd\"",
        ],
    );
}

#[test]
fn out_of_range_values_name_their_line() {
    let message = error_for(
        "[model]\ndropout = 1.5\n[train]\nlearning_rate = 0\nbatch_size = 0\n",
        &[],
    );
    assert_contains(
        &message,
        &[
            "exp.toml:2: `model.dropout` = 1.5",
            "[0, 1)",
            "exp.toml:4: `train.learning_rate` = 0",
            "positive learning rate",
            "exp.toml:5: `train.batch_size` = 0",
        ],
    );
}

#[test]
fn negative_integer_is_reported_not_a_type_error() {
    let message = error_for("[train]\nepochs = -3\n", &[]);
    assert_contains(
        &message,
        &["exp.toml:2", "`train.epochs` = -3", "non-negative"],
    );
}

#[test]
fn a_negative_whole_number_for_a_float_says_what_the_setting_must_be() {
    let message = error_for("[train]\nlearning_rate = -1\n", &[]);
    assert_contains(
        &message,
        &[
            "exp.toml:2",
            "`train.learning_rate` = -1",
            "positive learning rate",
        ],
    );
    let message = error_for("", &["model.dropout=-1"]);
    assert_contains(
        &message,
        &["--set model.dropout=-1", "probability in [0, 1)"],
    );
}

#[test]
fn empty_conv_list_is_rejected() {
    let message = error_for("[model]\nconv_channels = []\n", &[]);
    assert_contains(
        &message,
        &[
            "exp.toml:2",
            "`model.conv_channels`",
            "at least one conv block",
        ],
    );
}

#[test]
fn image_too_small_for_the_pooling_layers() {
    let message = error_for(
        "[data]\ndataset = \"digits\"\n[model]\nconv_channels = [8, 8, 8, 8]\n",
        &[],
    );
    assert_contains(
        &message,
        &[
            "exp.toml:4",
            "4 pooling layers need images of at least 16×16",
            "8×8",
        ],
    );
}

#[test]
fn missing_dataset_folder_is_reported() {
    let message = error_for("[data]\ndataset = \"no/such/folder\"\n", &[]);
    assert_contains(
        &message,
        &["exp.toml:2", "`data.dataset`", "no such folder"],
    );
}

#[test]
fn missing_extends_target_names_the_file_that_extends() {
    let message = error_for("extends = \"nowhere.toml\"\n", &[]);
    assert_contains(
        &message,
        &["exp.toml:1", "extends \"nowhere.toml\"", "cannot open"],
    );
}

#[test]
fn extends_cycle_is_detected() {
    let dir = scratch("cycle");
    write(&dir.join("a.toml"), "extends = \"b.toml\"\n");
    write(&dir.join("b.toml"), "extends = \"a.toml\"\n");
    let err = Experiment::load(&dir.join("a.toml"), &[]).unwrap_err();
    assert!(err.to_string().contains("cycle"), "{err}");
}

#[test]
fn errors_in_an_extended_file_name_that_file() {
    let dir = scratch("base-error");
    write(&dir.join("base.toml"), "[model]\n\n\ndropout = 2.0\n");
    write(&dir.join("child.toml"), "extends = \"base.toml\"\n");
    let err = Experiment::load(&dir.join("child.toml"), &[])
        .unwrap_err()
        .to_string();
    assert_contains(&err, &["base.toml:4", "`model.dropout` = 2"]);
}

#[test]
fn bad_set_overrides_are_explained() {
    let unknown = error_for("", &["model.dropot=0.3"]);
    assert_contains(
        &unknown,
        &["--set model.dropot=0.3", "did you mean `model.dropout`"],
    );
    let wrong_type = error_for("", &["train.epochs=many"]);
    assert_contains(&wrong_type, &["--set train.epochs=many", "an integer"]);
    let no_equals = error_for("", &["train.epochs"]);
    assert_contains(&no_equals, &["--set train.epochs", "KEY=VALUE"]);
    let out_of_range = error_for("", &["model.dropout=1"]);
    assert_contains(&out_of_range, &["--set model.dropout=1", "[0, 1)"]);
}

#[test]
fn toml_syntax_errors_give_the_line() {
    let message = error_for("[train]\nepochs = 3\nbatch_size = = 4\n", &[]);
    assert_contains(&message, &["exp.toml:3", "invalid TOML"]);
}

#[test]
fn resolved_experiment_round_trips_through_toml() {
    let experiment = Experiment::load(&repo_path("experiments/all-tricks.toml"), &[]).unwrap();
    let again = Experiment::from_toml(&experiment.to_toml().unwrap()).unwrap();
    assert_eq!(experiment, again);
}

/// The LibTorch backend is opt-in at build time: an experiment file that names it in a build
/// without it is told which line and how to get it (the command line: kiln's own tests).
#[cfg(not(feature = "torch"))]
#[test]
fn torch_backend_in_a_build_without_it_says_how_to_get_it() {
    let message = error_for("[train]\nepochs = 2\nbackend = \"torch\"\n", &[]);
    assert_contains(
        &message,
        &[
            "exp.toml:3: `train.backend` = \"torch\"",
            "--features torch",
            "\"auto\", \"gpu\", \"cuda\", \"wgpu\" or \"cpu\"",
        ],
    );
}
