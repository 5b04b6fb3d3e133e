//! The experiment file: its typed settings and defaults, and `load`, which turns files, `extends`
//! chains and `--set` overrides into one checked [`Experiment`].

pub mod datasets;
mod error;
mod layers;
pub mod schema;
pub mod tricks;
mod validate;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use error::{ConfigError, Origin};

/// The `[slurm]` table: what `--slurm` asks of the scheduler for each run; unset keys are left
/// to the cluster's defaults. Training itself ignores it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlurmConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Wall-time limit of each run, in sbatch's format (`"02:00:00"`, `"90"` minutes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// GPUs for each run (`--gpus`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpus: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus_per_task: Option<usize>,
    /// Memory for each run (`--mem`, e.g. `"16G"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
    /// How long before the time limit Slurm warns the run, which then checkpoints and stops
    /// (120 s when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal_seconds: Option<usize>,
    /// Further sbatch options, one an entry (`"--constraint=a100"`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<String>,
}

impl SlurmConfig {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A fully resolved experiment: what a run was asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Experiment {
    pub name: String,
    pub description: String,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub augment: AugmentConfig,
    pub train: TrainConfig,
    /// How the learning rate moves over the run (`[schedule]`; constant by default).
    pub schedule: crate::schedule::ScheduleConfig,
    /// When to stop before the last epoch (`[early_stopping]`; off by default).
    pub early_stopping: EarlyStoppingConfig,
    pub monitor: MonitorConfig,
    /// Who hears when the run ends, fails or gets a new problem (`[notify]`).
    #[serde(skip_serializing_if = "NotifyConfig::is_default")]
    pub notify: NotifyConfig,
    /// Where the run is tracked besides its own log (`[track]`): the live TensorBoard file,
    /// an MLflow server.
    #[serde(skip_serializing_if = "TrackConfig::is_default")]
    pub track: TrackConfig,
    /// How `--slurm` submits this experiment's runs (the job script's `#SBATCH` lines).
    #[serde(skip_serializing_if = "SlurmConfig::is_empty")]
    pub slurm: SlurmConfig,
    /// What `kiln sweep` varies when given this file: dotted key to its values
    /// (`"model.dropout" = [0.0, 0.3]`); training a single run ignores it.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sweep: std::collections::BTreeMap<String, Vec<toml::Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// `digits`, `mnist-5k`, or a folder (image folder, or CSV-labelled when `csv` is set).
    pub dataset: String,
    /// Images are resized to `image_size`×`image_size`; native size when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
    /// 1 (grey) or 3 (RGB); 1 for the bundled sets and 3 for folders when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<usize>,
    pub validation_fraction: f64,
    /// Use at most this many training images (stratified); all when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_images: Option<usize>,
    /// CSV file (relative to the dataset folder) naming each image and its label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csv: Option<String>,
    /// Folder of the images a CSV names, relative to the dataset folder.
    pub image_dir: String,
    pub image_column: String,
    pub label_column: String,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dataset: "digits".into(),
            image_size: None,
            channels: None,
            validation_fraction: 0.2,
            train_images: None,
            csv: None,
            image_dir: "images".into(),
            image_column: "image".into(),
            label_column: "label".into(),
        }
    }
}

impl DataConfig {
    /// Side of the images the dataset yields when `data.image_size` is absent.
    pub fn native_image_size(&self) -> usize {
        datasets::bundled(&self.dataset).map_or(datasets::FOLDER_IMAGE_SIZE, |d| d.side)
    }

    pub fn is_bundled(&self) -> bool {
        datasets::bundled(&self.dataset).is_some()
    }

    /// Side length of the images fed to the model.
    pub fn image_side(&self) -> usize {
        self.image_size.unwrap_or_else(|| self.native_image_size())
    }

    /// Channels fed to the model: 1 for the bundled sets, 3 for folders, unless set.
    pub fn channel_count(&self) -> usize {
        self.channels
            .unwrap_or(if self.is_bundled() { 1 } else { 3 })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Output channels of each conv block (conv → [batch norm] → ReLU → max pool).
    pub conv_channels: Vec<usize>,
    pub kernel_size: usize,
    /// Hidden dense layer sizes between the conv blocks and the output layer.
    pub dense: Vec<usize>,
    pub dropout: f64,
    /// Also apply dropout after each conv block's pooling, not only in the dense head.
    pub dropout_after_conv: bool,
    pub batch_norm: bool,
    /// Batch norm after the ReLU instead of before it (the article's placement).
    pub batch_norm_after_relu: bool,
    /// A ResNet or MobileNetV2 (torchvision's architecture) instead of kiln's CNN; then
    /// `conv_channels`, `kernel_size`, `dense` and the batch-norm keys do not apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backbone: Option<Backbone>,
    /// torchvision weights for the backbone (a `state_dict` as `.pth` or `.safetensors`),
    /// relative to the file that names it; fresh weights when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<String>,
    /// Epochs the backbone stays frozen (its weights and batch norm statistics untouched) while
    /// the head trains; then the whole network trains.
    pub freeze_epochs: usize,
    /// The backbone's learning rate as a share of the head's (a discriminative rate: 0.1 trains
    /// the pretrained layers ten times slower than the new head); 1 gives both the same rate.
    pub backbone_lr_factor: f64,
}

/// `model.backbone`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backbone {
    Resnet18,
    Resnet34,
    Resnet50,
    #[serde(rename = "mobilenet_v2")]
    MobilenetV2,
}

impl Backbone {
    /// The name an experiment file uses.
    pub fn name(self) -> &'static str {
        match self {
            Backbone::Resnet18 => "resnet18",
            Backbone::Resnet34 => "resnet34",
            Backbone::Resnet50 => "resnet50",
            Backbone::MobilenetV2 => "mobilenet_v2",
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            conv_channels: vec![16, 32],
            kernel_size: 3,
            dense: vec![64],
            dropout: 0.0,
            dropout_after_conv: false,
            batch_norm: false,
            batch_norm_after_relu: false,
            backbone: None,
            weights: None,
            freeze_epochs: 0,
            backbone_lr_factor: 1.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    /// Random rotation up to ± this many degrees.
    pub rotation: f64,
    /// Random shear up to ± this many degrees.
    pub shear: f64,
    /// Random shift up to ± this fraction of the image size.
    pub shift: f64,
    /// Random zoom by a factor in [1 − zoom, 1 + zoom].
    pub zoom: f64,
    pub horizontal_flip: bool,
    pub vertical_flip: bool,
}

impl AugmentConfig {
    pub fn is_active(&self) -> bool {
        self.rotation > 0.0
            || self.shear > 0.0
            || self.shift > 0.0
            || self.zoom > 0.0
            || self.horizontal_flip
            || self.vertical_flip
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    #[default]
    Adam,
    AdamW,
    Sgd,
}

impl std::fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OptimizerKind::Adam => "adam",
            OptimizerKind::AdamW => "adamw",
            OptimizerKind::Sgd => "sgd",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The fastest usable: CUDA on an NVIDIA GPU, else another GPU through wgpu, else the CPU.
    #[default]
    Auto,
    /// A GPU: CUDA when usable, else wgpu; fails when there is none.
    Gpu,
    /// burn's CUDA backend (NVIDIA driver, NVRTC and the CUDA headers); fails without them.
    Cuda,
    /// burn-wgpu on a hardware adapter (Vulkan, Metal, DX12); fails when there is none.
    Wgpu,
    /// burn's CPU backend.
    Cpu,
    /// burn's LibTorch backend on the installed PyTorch (CUDA when it sees a GPU, else CPU);
    /// needs a kiln built with `--features torch`.
    Torch,
}

/// How to get a kiln that has the LibTorch backend.
pub const TORCH_BUILD: &str =
    "cargo build --release --features torch, against PyTorch 2.9; see docs/backends.md";

impl BackendChoice {
    /// Whether this build of kiln can train there at all (LibTorch is a build-time option).
    pub fn is_built(self) -> bool {
        self != BackendChoice::Torch || cfg!(feature = "torch")
    }

    /// The name an experiment file and `--backend` use.
    pub fn name(self) -> &'static str {
        match self {
            BackendChoice::Auto => "auto",
            BackendChoice::Gpu => "gpu",
            BackendChoice::Cuda => "cuda",
            BackendChoice::Wgpu => "wgpu",
            BackendChoice::Cpu => "cpu",
            BackendChoice::Torch => "torch",
        }
    }
}

/// The number format training computes in (`train.precision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 throughout (on CUDA, cubecl uses TF32 tensor cores in matrix products and
    /// convolutions where the GPU has them, as PyTorch does for convolutions by default).
    #[default]
    F32,
    /// Mixed precision: the forward and backward passes in bfloat16; weights, optimiser state,
    /// batch norm and the loss in f32.
    Bf16,
}

impl Precision {
    /// The name an experiment file and `--precision` use.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }
}

/// What makes an epoch the best one, whose weights `checkpoints/best/` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BestMetric {
    /// The highest validation accuracy.
    #[default]
    ValAccuracy,
    /// The lowest validation loss.
    ValLoss,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
    pub optimizer: OptimizerKind,
    /// SGD momentum.
    pub momentum: f64,
    pub weight_decay: f64,
    pub backend: BackendChoice,
    /// `"f32"`, or `"bf16"` mixed precision (needs a backend with bf16 arithmetic).
    pub precision: Precision,
    /// Write a checkpoint every N epochs (so a killed run resumes close to where it was and
    /// any epoch can be forked); 0 writes one only at the end.
    pub checkpoint_every: usize,
    /// How many of the routine checkpoints to keep, newest first; 0 keeps them all. Those taken
    /// by hand, the best epoch's and those a fork started from are kept besides.
    pub keep_checkpoints: usize,
    /// Which epoch `checkpoints/best/` keeps.
    pub best_metric: BestMetric,
    /// Label smoothing of the training loss: the target puts `1 − a` on the true class and
    /// spreads `a` over all classes (0 is off).
    pub label_smoothing: f64,
    /// Weights on each class's share of the training loss: `"balanced"` (inverse to its
    /// training images) or one number per class; unweighted when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_weights: Option<ClassWeights>,
    /// How each epoch's batches draw the training images.
    pub sampler: Sampler,
    /// Gradient clipping: each parameter tensor's gradient is scaled down to at most this L2
    /// norm before the step (burn's clipping, per tensor); 0 is off.
    pub grad_clip_norm: f64,
}

/// `train.class_weights`: a rule or the weights themselves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClassWeights {
    Rule(WeightRule),
    /// One weight per class, in the order of the data's classes.
    Given(Vec<f64>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightRule {
    /// Each class weighs `images / (classes × images of the class)`, so every class carries
    /// the same share of the loss (scikit-learn's rule).
    Balanced,
}

/// `train.sampler`: the order each epoch sees the training images in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Sampler {
    /// Every image once per epoch, shuffled.
    #[default]
    Shuffle,
    /// As many draws as images per epoch, with replacement, each class equally likely: a rare
    /// class's images come round more often, a common class's less.
    Balanced,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 64,
            learning_rate: 1e-3,
            seed: 42,
            optimizer: OptimizerKind::Adam,
            momentum: 0.9,
            weight_decay: 0.0,
            backend: BackendChoice::Auto,
            precision: Precision::F32,
            checkpoint_every: 1,
            // A resume needs only the newest; five leave recent epochs to fork from while a
            // long run's disk use stays bounded (the best epoch's is kept besides).
            keep_checkpoints: 5,
            best_metric: BestMetric::ValAccuracy,
            label_smoothing: 0.0,
            class_weights: None,
            sampler: Sampler::Shuffle,
            grad_clip_norm: 0.0,
        }
    }
}

/// The `[early_stopping]` table: the run stops when `train.best_metric` has not improved by
/// `min_delta` for `patience` epochs, and its model becomes the best epoch's. Off with
/// `patience = 0` (the default).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct EarlyStoppingConfig {
    pub patience: usize,
    pub min_delta: f64,
}

impl EarlyStoppingConfig {
    pub fn is_on(&self) -> bool {
        self.patience > 0
    }
}

/// The `[notify]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// A shell command (`sh -c`) run when the run ends, fails or gets a new problem, with the
    /// run's id, status and best accuracy in its environment (`--notify` sets it); see `crate::notify`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The live screen rings the terminal's bell.
    pub bell: bool,
    /// The live screen asks the terminal for a desktop notification.
    pub desktop: Desktop,
    /// Also notify when the diagnosis raises a problem the run did not have (not only at the
    /// end).
    pub problems: bool,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            command: None,
            bell: true,
            desktop: Desktop::Osc9,
            problems: true,
        }
    }
}

impl NotifyConfig {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// Which escape sequence asks the terminal for a desktop notification. Terminals differ:
/// iTerm2, WezTerm, kitty, ghostty and Windows Terminal read OSC 9; VTE terminals (GNOME
/// Terminal, Tilix), foot and urxvt OSC 777.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Desktop {
    Osc9,
    Osc777,
    /// Both (a terminal that reads both shows two).
    Both,
    Off,
}

/// The `[track]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackConfig {
    /// Write the run's TensorBoard event file into its directory while it trains.
    pub tensorboard: bool,
    /// An MLflow tracking server's address (`http://127.0.0.1:5000`): the run's parameters,
    /// per-epoch metrics, status and best model go there as it trains.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mlflow_uri: Option<String>,
    /// The MLflow experiment the run goes in (created if missing); kiln's experiment name when
    /// absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mlflow_experiment: Option<String>,
}

impl Default for TrackConfig {
    fn default() -> Self {
        Self {
            tensorboard: true,
            mlflow_uri: None,
            mlflow_experiment: None,
        }
    }
}

impl TrackConfig {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorConfig {
    /// Train − validation accuracy above this is an overfitting warning.
    pub gap_threshold: f64,
    /// Epochs a trend must hold before a warning appears or clears.
    pub patience: usize,
    /// Training accuracy below this, and flat, is underfitting.
    pub underfit_accuracy: f64,
    /// Training loss falling by less than this fraction per epoch (before the model fits) is
    /// slow convergence.
    pub slow_loss_drop: f64,
    /// Fewer training images per class than this is too little data (without augmentation).
    pub min_images_per_class: usize,
    /// A class whose validation recall is this far below the mean of the others is a weak
    /// class (a finding of its own).
    pub class_recall_gap: f64,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            gap_threshold: 0.05,
            patience: 3,
            underfit_accuracy: 0.8,
            slow_loss_drop: 0.05,
            min_images_per_class: 100,
            class_recall_gap: 0.25,
        }
    }
}

impl Default for Experiment {
    fn default() -> Self {
        Self {
            name: "experiment".into(),
            description: String::new(),
            data: DataConfig::default(),
            model: ModelConfig::default(),
            augment: AugmentConfig::default(),
            train: TrainConfig::default(),
            schedule: Default::default(),
            early_stopping: EarlyStoppingConfig::default(),
            monitor: MonitorConfig::default(),
            notify: Default::default(),
            track: Default::default(),
            slurm: SlurmConfig::default(),
            sweep: Default::default(),
        }
    }
}

impl Experiment {
    /// Loads `path` (following `extends`), applies `--set` overrides and validates the result.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Experiment, ConfigError> {
        let layer = layers::read_with_extends(path)?;
        let layer = layers::apply_overrides(layer, overrides)?;
        if let Some(err) = validate::negative_integer(&layer) {
            return Err(err);
        }
        let mut experiment: Experiment = toml::Value::Table(layer.table.clone())
            .try_into()
            .map_err(|err: toml::de::Error| ConfigError::Syntax {
                origin: Origin::File {
                    path: path.to_path_buf(),
                    line: 1,
                },
                message: err.message().trim().to_string(),
            })?;
        if layer.get("name").is_none() {
            experiment.name = path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_else(|| "experiment".into());
        }
        resolve_dataset_path(&mut experiment, &layer.origin("data.dataset"));
        if let Some(weights) = &experiment.model.weights {
            experiment.model.weights = Some(relative_to(weights, &layer.origin("model.weights")));
        }
        validate::check(&experiment, &layer)?;
        Ok(experiment)
    }

    /// The resolved experiment as TOML, for `experiment.toml` in a run directory.
    /// Fails rather than write a file that would not read back (e.g. a non-finite number).
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string_pretty(self)
    }

    /// Reads a resolved experiment written by [`Experiment::to_toml`].
    pub fn from_toml(text: &str) -> Result<Experiment, toml::de::Error> {
        toml::from_str(text)
    }
}

/// A `--set` argument that sets `key` to the string `value`, quoted as TOML reads it back
/// whatever it holds (quotes, spaces, `=`).
pub fn string_override(key: &str, value: &str) -> String {
    format!("{key}={}", toml::Value::String(value.to_string()))
}

/// The keys a list of `--set` arguments sets, read as [`Experiment::load`] reads them.
pub fn override_keys(overrides: &[String]) -> Vec<&str> {
    overrides
        .iter()
        .filter_map(|o| layers::split_override(o).map(|(key, _)| key))
        .collect()
}

/// A relative dataset folder is relative to the file that named it (or to the working directory
/// for `--set`), so experiments can be run from anywhere.
fn resolve_dataset_path(experiment: &mut Experiment, origin: &Origin) {
    if experiment.data.is_bundled() {
        return;
    }
    experiment.data.dataset = relative_to(&experiment.data.dataset, origin);
}

/// `path` made absolute: relative to the file that set it, or to the working directory.
fn relative_to(path: &str, origin: &Origin) -> String {
    let given = PathBuf::from(path);
    if given.is_absolute() {
        return path.to_string();
    }
    let base = match origin {
        Origin::File { path, .. } => path.parent().map(Path::to_path_buf).unwrap_or_default(),
        _ => PathBuf::new(),
    };
    let joined = base.join(given);
    let resolved = std::path::absolute(&joined).unwrap_or(joined);
    resolved.to_string_lossy().into_owned()
}
