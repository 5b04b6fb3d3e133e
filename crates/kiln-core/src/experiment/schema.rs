//! The list of keys an experiment file may hold, with the TOML type each one expects.
//!
//! One table drives unknown-key detection, "did you mean" suggestions and type checks, so the
//! accepted keys and the error messages can never drift apart.

/// The TOML type a key expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Integer,
    /// A float; an integer is accepted too (`learning_rate = 1` means 1.0).
    Float,
    Boolean,
    IntegerList,
    StringList,
    /// A string from a fixed set.
    Choice(&'static [&'static str]),
    /// A string from a fixed set, or a list of numbers.
    ChoiceOrNumbers(&'static [&'static str]),
}

impl Kind {
    pub fn describe(self) -> String {
        match self {
            Kind::String => "a string".into(),
            Kind::Integer => "an integer".into(),
            Kind::Float => "a number".into(),
            Kind::Boolean => "true or false".into(),
            Kind::IntegerList => "a list of integers".into(),
            Kind::StringList => "a list of strings".into(),
            Kind::Choice(names) => {
                let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
                format!("one of {}", quoted.join(", "))
            }
            Kind::ChoiceOrNumbers(names) => {
                format!("{} or a list of numbers", Kind::Choice(names).describe())
            }
        }
    }

    /// Whether `value` has this type.
    pub fn accepts(self, value: &toml::Value) -> bool {
        match (self, value) {
            (Kind::String, toml::Value::String(_))
            | (Kind::Integer, toml::Value::Integer(_))
            | (Kind::Float, toml::Value::Float(_) | toml::Value::Integer(_))
            | (Kind::Boolean, toml::Value::Boolean(_)) => true,
            (Kind::Choice(names), toml::Value::String(value)) => names.contains(&value.as_str()),
            (Kind::IntegerList, toml::Value::Array(items)) => {
                items.iter().all(|item| item.is_integer())
            }
            (Kind::StringList, toml::Value::Array(items)) => items.iter().all(|item| item.is_str()),
            (Kind::ChoiceOrNumbers(names), toml::Value::String(_)) => {
                Kind::Choice(names).accepts(value)
            }
            (Kind::ChoiceOrNumbers(_), toml::Value::Array(items)) => items
                .iter()
                .all(|item| item.is_float() || item.is_integer()),
            _ => false,
        }
    }
}

/// Top-level keys that are not sections.
pub const TOP_LEVEL: &[(&str, Kind)] = &[
    ("extends", Kind::String),
    ("name", Kind::String),
    ("description", Kind::String),
];

/// The sections and their keys.
pub const SECTIONS: &[(&str, &[(&str, Kind)])] = &[
    (
        "data",
        &[
            ("dataset", Kind::String),
            ("image_size", Kind::Integer),
            ("channels", Kind::Integer),
            ("validation_fraction", Kind::Float),
            ("train_images", Kind::Integer),
            ("csv", Kind::String),
            ("image_dir", Kind::String),
            ("image_column", Kind::String),
            ("label_column", Kind::String),
        ],
    ),
    (
        "model",
        &[
            ("conv_channels", Kind::IntegerList),
            ("kernel_size", Kind::Integer),
            ("dense", Kind::IntegerList),
            ("dropout", Kind::Float),
            ("dropout_after_conv", Kind::Boolean),
            ("batch_norm", Kind::Boolean),
            ("batch_norm_after_relu", Kind::Boolean),
            (
                "backbone",
                Kind::Choice(&["resnet18", "resnet34", "resnet50", "mobilenet_v2"]),
            ),
            ("weights", Kind::String),
            ("freeze_epochs", Kind::Integer),
            ("backbone_lr_factor", Kind::Float),
        ],
    ),
    (
        "augment",
        &[
            ("rotation", Kind::Float),
            ("shear", Kind::Float),
            ("shift", Kind::Float),
            ("zoom", Kind::Float),
            ("horizontal_flip", Kind::Boolean),
            ("vertical_flip", Kind::Boolean),
        ],
    ),
    (
        "train",
        &[
            ("epochs", Kind::Integer),
            ("batch_size", Kind::Integer),
            ("learning_rate", Kind::Float),
            ("seed", Kind::Integer),
            ("optimizer", Kind::Choice(&["adam", "adamw", "sgd"])),
            ("momentum", Kind::Float),
            ("weight_decay", Kind::Float),
            (
                "backend",
                Kind::Choice(&["auto", "gpu", "cuda", "wgpu", "cpu", "torch"]),
            ),
            ("precision", Kind::Choice(&["f32", "bf16"])),
            ("checkpoint_every", Kind::Integer),
            ("keep_checkpoints", Kind::Integer),
            ("best_metric", Kind::Choice(&["val_accuracy", "val_loss"])),
            ("label_smoothing", Kind::Float),
            ("class_weights", Kind::ChoiceOrNumbers(&["balanced"])),
            ("sampler", Kind::Choice(&["shuffle", "balanced"])),
            ("grad_clip_norm", Kind::Float),
        ],
    ),
    (
        "schedule",
        &[
            (
                "kind",
                Kind::Choice(&["constant", "step", "cosine", "one_cycle", "plateau"]),
            ),
            ("every_epochs", Kind::Integer),
            ("gamma", Kind::Float),
            ("warmup_epochs", Kind::Integer),
            ("min_lr", Kind::Float),
            ("pct_start", Kind::Float),
            ("div_factor", Kind::Float),
            ("final_div_factor", Kind::Float),
            ("factor", Kind::Float),
            ("patience", Kind::Integer),
            ("min_delta", Kind::Float),
        ],
    ),
    (
        "early_stopping",
        &[("patience", Kind::Integer), ("min_delta", Kind::Float)],
    ),
    (
        "monitor",
        &[
            ("gap_threshold", Kind::Float),
            ("patience", Kind::Integer),
            ("underfit_accuracy", Kind::Float),
            ("slow_loss_drop", Kind::Float),
            ("min_images_per_class", Kind::Integer),
            ("class_recall_gap", Kind::Float),
        ],
    ),
    (
        "notify",
        &[
            ("command", Kind::String),
            ("bell", Kind::Boolean),
            ("desktop", Kind::Choice(&["osc9", "osc777", "both", "off"])),
            ("problems", Kind::Boolean),
        ],
    ),
    (
        "track",
        &[
            ("tensorboard", Kind::Boolean),
            ("mlflow_uri", Kind::String),
            ("mlflow_experiment", Kind::String),
        ],
    ),
    (
        "slurm",
        &[
            ("partition", Kind::String),
            ("account", Kind::String),
            ("time", Kind::String),
            ("gpus", Kind::Integer),
            ("cpus_per_task", Kind::Integer),
            ("mem", Kind::String),
            ("signal_seconds", Kind::Integer),
            ("extra", Kind::StringList),
        ],
    ),
];

/// The expected type of a dotted key (`model.dropout`), or `None` if no such key exists.
pub fn kind_of(path: &str) -> Option<Kind> {
    match path.split_once('.') {
        None => TOP_LEVEL
            .iter()
            .find(|(key, _)| *key == path)
            .map(|(_, kind)| *kind),
        Some((section, key)) => SECTIONS
            .iter()
            .find(|(name, _)| *name == section)
            .and_then(|(_, keys)| keys.iter().find(|(k, _)| *k == key))
            .map(|(_, kind)| *kind),
    }
}

/// Whether `name` is a section (`[data]`, `[model]`, …).
pub fn is_section(name: &str) -> bool {
    SECTIONS.iter().any(|(section, _)| *section == name)
}

/// Every valid dotted key, sections first as `section` then their keys.
pub fn all_paths() -> impl Iterator<Item = String> {
    let top = TOP_LEVEL.iter().map(|(key, _)| key.to_string());
    let sections = SECTIONS.iter().map(|(section, _)| section.to_string());
    let keys = SECTIONS
        .iter()
        .flat_map(|(section, keys)| keys.iter().map(move |(key, _)| format!("{section}.{key}")));
    top.chain(sections).chain(keys)
}

/// The valid key closest in spelling to `path`, when it is close enough to be a likely typo.
pub fn nearest(path: &str) -> Option<String> {
    let last = |p: &str| p.rsplit('.').next().unwrap_or(p).to_string();
    all_paths()
        .map(|candidate| {
            // Compare whole paths and also the last segment, so `model.learning_rate` suggests
            // `train.learning_rate` (a key in the wrong section).
            let whole = strsim::normalized_damerau_levenshtein(path, &candidate);
            let tail = strsim::normalized_damerau_levenshtein(&last(path), &last(&candidate));
            (whole.max(tail), candidate)
        })
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}
