//! The command line's schema (clap): every command, its arguments and their defaults.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::experiment::{BackendChoice, Precision};

/// The experiment `kiln` and `kiln train` run when none is named.
pub const DEFAULT_EXPERIMENT: &str = "experiments/baseline.toml";
/// Where run directories go unless `--runs-dir` says otherwise.
pub const DEFAULT_RUNS_DIR: &str = "runs";

#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    about = "Train and watch image classifiers from the terminal"
)]
pub struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Action>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Action {
    /// Train an experiment (default: experiments/baseline.toml).
    Train(TrainArgs),
    /// Validate an experiment and print it fully resolved, without training.
    Check(CheckArgs),
    /// Draw training images beside augmented copies of them, as a PNG grid.
    AugmentPreview(AugmentPreviewArgs),
    /// Open the live screen on a run another kiln process trains (default: the newest running).
    Attach(AttachArgs),
    /// Continue an interrupted or stopped run from its newest checkpoint, in the same run.
    Resume(ResumeArgs),
    /// Start a new run from a checkpoint of another, with changed settings.
    Fork(ForkArgs),
    /// Browse past runs (a table with --plain).
    Runs(RunsArgs),
    /// Review one past run with the live views (a text report with --plain).
    Show(ShowArgs),
    /// Compare runs side by side (a table with --plain).
    Compare(CompareArgs),
    /// Export a run's per-epoch metrics (CSV) or its curves (PNG).
    Export(ExportArgs),
    /// Score a run's model on its validation split or other data: accuracy, loss, per-class
    /// table and confusion matrix.
    Evaluate(EvaluateArgs),
    /// Classify image files or folders with a run's model.
    Predict(PredictArgs),
    /// Remove the checkpoints a run's retention policy does not keep (asks first).
    Prune(PruneArgs),
    /// Print a shell completion script, e.g. `kiln completions bash > ~/.local/share/bash-completion/completions/kiln`.
    Completions(CompletionsArgs),
    /// Print kiln's man page (roff), e.g. `kiln man > ~/.local/share/man/man1/kiln.1`.
    Man,
    /// Run the article's tricks one after another on the same data and seed, then compare.
    Ladder(LadderArgs),
    /// Train every combination of a few settings (each an ordinary run), grouped as a sweep;
    /// `kiln sweep status` shows its table.
    Sweep(SweepArgs),
    /// Stop a run gracefully (checkpoint, final event), or a whole sweep.
    Cancel(CancelArgs),
    /// Measure training speed: kiln's full loop against a bare burn loop, side by side.
    Bench(BenchArgs),
    /// Find a learning rate: a short run whose rate grows each step, the loss against the rate
    /// drawn here (and as a PNG), a suggested rate and the line to put in the file.
    LrFind(LrFindArgs),
}

impl Action {
    /// The backend named on the command line, if any.
    pub(crate) fn backend(&self) -> Option<BackendChoice> {
        match self {
            Action::Train(args) => args.follow.backend,
            Action::Resume(args) => args.follow.backend,
            Action::Fork(args) => args.follow.backend,
            Action::Ladder(args) => args.backend,
            Action::Sweep(args) => args.backend,
            Action::Bench(args) => Some(args.backend),
            Action::LrFind(args) => args.backend,
            Action::Evaluate(args) => args.model.backend,
            Action::Predict(args) => args.model.backend,
            _ => None,
        }
    }

    /// The precision named on the command line (only `bench` has one); f32 otherwise.
    pub(crate) fn precision(&self) -> Precision {
        match self {
            Action::Bench(args) => args.precision,
            _ => Precision::F32,
        }
    }

    /// Whether the command hands its runs to Slurm, whose nodes (not this machine) train them.
    pub(crate) fn on_slurm(&self) -> bool {
        match self {
            Action::Train(args) => args.slurm.slurm,
            Action::Resume(args) => args.slurm.slurm,
            Action::Ladder(args) => args.slurm.slurm,
            Action::Sweep(args) => args.slurm.slurm,
            _ => false,
        }
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) backend: BackendChoice,
    /// f32, or bf16 mixed precision (kiln's loops only; the model and data stay the same).
    #[arg(long, value_enum, default_value = "f32")]
    pub(crate) precision: Precision,
    /// Only these workloads (repeatable): digits, mnist, small64, small64-bn, case-study,
    /// resnet18.
    #[arg(long = "workload", value_name = "NAME")]
    pub(crate) workloads: Vec<String>,
    /// Also write the measurements as JSON here.
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
    /// Untimed steps first (compilation, autotuning, caches).
    #[arg(long, default_value_t = 5)]
    pub(crate) warmup: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 30)]
    pub(crate) steps: usize,
    /// Alternating repetitions of both loops; medians are reported.
    #[arg(long, default_value_t = 3)]
    pub(crate) repeat: usize,
    /// Time each operation of the models on its own instead (the median of --steps runs
    /// after --warmup), on every workload but case-study unless --workload names it.
    #[arg(long)]
    pub(crate) ops: bool,
    /// Time using a model instead: evaluate on 1,000 28x28 images, predict on 224x224 JPEG
    /// files (decoding included) beside decoding alone.
    #[arg(long, conflicts_with = "ops")]
    pub(crate) inference: bool,
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct SweepArgs {
    #[command(subcommand)]
    pub(crate) command: Option<SweepCommand>,
    /// Experiment file every run extends (default: experiments/baseline.toml).
    pub(crate) experiment: Option<PathBuf>,
    /// A swept setting and its values, e.g. --grid model.dropout=0.0,0.3 (repeatable; values
    /// are TOML, so --grid model.conv_channels=[16,32],[32,64] sweeps two lists).
    /// Added to (or replacing keys of) the experiment file's `[sweep]` table.
    #[arg(long = "grid", value_name = "KEY=V1,V2,…")]
    pub(crate) grid: Vec<String>,
    /// Override a setting in every run (repeatable; the value is TOML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) overrides: Vec<String>,
    /// Runs trained at a time, each a process of its own (on one CPU or one GPU, 1 is fastest:
    /// they share it).
    #[arg(long, value_name = "N", default_value_t = 1, conflicts_with = "slurm")]
    pub(crate) parallel: usize,
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUNS_DIR)]
    pub(crate) runs_dir: PathBuf,
    #[arg(long, value_enum)]
    pub(crate) backend: Option<BackendChoice>,
    #[command(flatten)]
    pub(crate) slurm: SlurmArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CancelArgs {
    /// A run (id, unique prefix or directory) or a sweep (id or unique prefix).
    pub(crate) target: String,
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUNS_DIR)]
    pub(crate) runs_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SweepCommand {
    /// A sweep's runs: the swept settings against best validation accuracy, gap and state.
    Status(SweepStatusArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct SweepStatusArgs {
    /// The sweep's id (default: the newest).
    pub(crate) sweep: Option<String>,
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUNS_DIR)]
    pub(crate) runs_dir: PathBuf,
    /// Plain text for scripts (the table is plain text either way).
    #[arg(long)]
    pub(crate) plain: bool,
    /// The rows as JSON (one object per run: settings, state, task, run id, results).
    #[arg(long, conflicts_with = "plain")]
    pub(crate) json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct LadderArgs {
    /// Base experiment (default: experiments/baseline.toml).
    pub(crate) experiment: Option<PathBuf>,
    /// Override a setting in every rung (repeatable; the value is TOML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) overrides: Vec<String>,
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUNS_DIR)]
    pub(crate) runs_dir: PathBuf,
    #[arg(long, value_enum)]
    pub(crate) backend: Option<BackendChoice>,
    /// Validation accuracy whose first epoch counts as convergence speed.
    #[arg(long, default_value_t = 0.9)]
    pub(crate) target: f64,
    /// Only the final table (no per-epoch progress).
    #[arg(long)]
    pub(crate) plain: bool,
    #[command(flatten)]
    pub(crate) slurm: SlurmArgs,
}

/// How the screen draws; shared by every command that opens it.
#[derive(Debug, clap::Args)]
pub(crate) struct ScreenOptions {
    /// Draw with plain ASCII instead of block and braille characters.
    #[arg(long)]
    pub(crate) ascii: bool,
    /// How the image view (a, m) shows pictures: auto (the terminal's graphics protocol, else
    /// half blocks; a text list with --ascii or NO_COLOR), halfblocks, sixel, kitty, or off.
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) images: crate::tui::theme::ImagesChoice,
}

impl ScreenOptions {
    pub(crate) fn theme(&self) -> crate::tui::theme::Theme {
        crate::tui::theme::Theme::from_env(self.ascii, self.images)
    }
}

/// Where past runs are and how to show them; shared by `runs`, `show` and `compare`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReviewOptions {
    /// Where run directories are.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUNS_DIR)]
    pub(crate) runs_dir: PathBuf,
    /// Print plain text for scripts instead of opening the screen.
    #[arg(long)]
    pub(crate) plain: bool,
    #[command(flatten)]
    pub(crate) screen: ScreenOptions,
}

/// How a run started by `train`, `resume` or `fork` is shown, and where it trains.
#[derive(Debug, clap::Args)]
pub(crate) struct FollowOptions {
    /// Print plain progress lines instead of the live screen (automatic when stdout is not a
    /// terminal).
    #[arg(long)]
    pub(crate) headless: bool,
    #[command(flatten)]
    pub(crate) screen: ScreenOptions,
    /// Where run directories are.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUNS_DIR)]
    pub(crate) runs_dir: PathBuf,
    /// Where to train; overrides train.backend.
    #[arg(long, value_enum)]
    pub(crate) backend: Option<BackendChoice>,
    /// A shell command to run when the run ends, fails or gets a new problem, with KILN_RUN_ID,
    /// KILN_STATUS, KILN_BEST_ACCURACY, KILN_MESSAGE, … in its environment (sets
    /// notify.command).
    #[arg(long, value_name = "CMD")]
    pub(crate) notify: Option<String>,
}

impl FollowOptions {
    /// `--notify` as a `--set` override, so it travels wherever overrides do (detached runs,
    /// Slurm jobs) and stays in the run's experiment.toml.
    pub(crate) fn notify_override(&self) -> Option<String> {
        self.notify
            .as_ref()
            .map(|command| crate::experiment::string_override("notify.command", command))
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct ResumeArgs {
    /// Run id, a unique prefix of it, or its directory.
    pub(crate) run: String,
    #[command(flatten)]
    pub(crate) follow: FollowOptions,
    #[command(flatten)]
    pub(crate) slurm: SlurmArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ForkArgs {
    /// The parent run: id, a unique prefix of it, or its directory.
    pub(crate) run: String,
    /// Start from the checkpoint taken at the end of this epoch (default: the newest).
    #[arg(long)]
    pub(crate) epoch: Option<usize>,
    /// Change a setting, e.g. --set model.dropout=0.5 (repeatable; the value is TOML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) overrides: Vec<String>,
    /// Name of the new experiment (default: the parent's with "-fork").
    #[arg(long)]
    pub(crate) name: Option<String>,
    #[command(flatten)]
    pub(crate) follow: FollowOptions,
}

#[derive(Debug, clap::Args)]
pub(crate) struct AttachArgs {
    /// Run id, a unique prefix of it, or its directory (default: the newest running run).
    pub(crate) run: Option<String>,
    /// Relay the run's control protocol over standard input and output instead of showing it:
    /// the far end of a bridge, e.g. `ssh HOST kiln attach --stdio RUN`.
    #[arg(long, conflicts_with_all = ["headless", "ascii"])]
    pub(crate) stdio: bool,
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUNS_DIR)]
    pub(crate) runs_dir: PathBuf,
    /// Print plain progress lines instead of the live screen.
    #[arg(long)]
    pub(crate) headless: bool,
    #[command(flatten)]
    pub(crate) screen: ScreenOptions,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RunsArgs {
    #[command(flatten)]
    pub(crate) view: ReviewOptions,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    /// Run id, a unique prefix of it, or its directory.
    pub(crate) run: String,
    #[command(flatten)]
    pub(crate) view: ReviewOptions,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CompareArgs {
    /// Two or more runs (ids, unique prefixes or directories).
    #[arg(required = true, num_args = 2..)]
    pub(crate) runs: Vec<String>,
    #[command(flatten)]
    pub(crate) view: ReviewOptions,
}

/// Which run(s) to export and to what.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("format").required(true).multiple(true)
    .args(["csv", "classes_csv", "png", "tensorboard", "misclassified", "mlflow"])))]
#[command(group(clap::ArgGroup::new("which").required(true).args(["run", "all"])))]
pub(crate) struct ExportArgs {
    /// Run id, a unique prefix of it, or its directory.
    pub(crate) run: Option<String>,
    /// Every run in the runs folder (with --tensorboard only).
    #[arg(long, conflicts_with_all = ["csv", "classes_csv", "png", "misclassified", "mlflow"])]
    pub(crate) all: bool,
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUNS_DIR)]
    pub(crate) runs_dir: PathBuf,
    /// Write per-epoch metrics here (one row per epoch, with a header).
    #[arg(long, value_name = "FILE")]
    pub(crate) csv: Option<PathBuf>,
    /// Write per-class validation metrics here (one row per epoch and class).
    #[arg(long, value_name = "FILE")]
    pub(crate) classes_csv: Option<PathBuf>,
    /// Write loss and accuracy curves with change markers here.
    #[arg(long, value_name = "FILE")]
    pub(crate) png: Option<PathBuf>,
    /// Write TensorBoard event files under DIR/<run id>/ (open with `tensorboard --logdir
    /// DIR`; W&B reads them too).
    #[arg(long, value_name = "DIR")]
    pub(crate) tensorboard: Option<PathBuf>,
    /// Write the validation images the model gets wrong here, as
    /// TRUE-PREDICTED-CONFIDENCE-INDEX.png, most confident first.
    #[arg(long, value_name = "DIR")]
    pub(crate) misclassified: Option<PathBuf>,
    /// The checkpoint --misclassified uses: best, last or an epoch number.
    #[arg(long, value_name = "WHICH", default_value = "best")]
    pub(crate) checkpoint: crate::infer::CheckpointChoice,
    /// Send the run to this MLflow tracking server, again if it was sent before: its
    /// parameters, the epochs the server lacks, its status and model (into
    /// track.mlflow_experiment, else the experiment's name).
    #[arg(long, value_name = "URI")]
    pub(crate) mlflow: Option<String>,
}

/// Which run's model `evaluate` and `predict` use, from which checkpoint, and where.
#[derive(Debug, clap::Args)]
pub(crate) struct ModelOptions {
    /// Run id, a unique prefix of it, or its directory.
    pub(crate) run: String,
    /// best (the best epoch's, train.best_metric), last, or an epoch number.
    #[arg(long, value_name = "WHICH", default_value = "best")]
    pub(crate) checkpoint: crate::infer::CheckpointChoice,
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUNS_DIR)]
    pub(crate) runs_dir: PathBuf,
    /// Where to run the model; default: the run's train.backend.
    #[arg(long, value_enum)]
    pub(crate) backend: Option<BackendChoice>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct EvaluateArgs {
    #[command(flatten)]
    pub(crate) model: ModelOptions,
    /// Other data instead of the run's validation split: a bundled dataset's name, an image
    /// folder, or an experiment file whose [data] table says where (e.g. a CSV layout).
    #[arg(long, value_name = "DATASET|EXPERIMENT")]
    pub(crate) data: Option<String>,
    /// The report as plain text (the default; kept for symmetry with the other commands).
    #[arg(long, conflicts_with = "json")]
    pub(crate) plain: bool,
    /// The report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct PredictArgs {
    #[command(flatten)]
    pub(crate) model: ModelOptions,
    /// Image files or folders (searched recursively).
    #[arg(required = true, value_name = "IMAGE|FOLDER")]
    pub(crate) inputs: Vec<PathBuf>,
    /// Show the K most likely classes of each image.
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub(crate) top: usize,
    /// Also write the predictions here as CSV (path, class, probability, the other top
    /// classes, error).
    #[arg(long, value_name = "FILE")]
    pub(crate) csv: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CompletionsArgs {
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub(crate) struct PruneArgs {
    /// Runs (ids, unique prefixes or directories); default: every run not training.
    pub(crate) runs: Vec<String>,
    /// Keep this many of the newest routine checkpoints (default: each run's
    /// train.keep_checkpoints); those taken by hand, the best epoch's and those forks started
    /// from stay whatever the number.
    #[arg(long, value_name = "N")]
    pub(crate) keep: Option<usize>,
    /// Remove without asking (for scripts).
    #[arg(long)]
    pub(crate) yes: bool,
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUNS_DIR)]
    pub(crate) runs_dir: PathBuf,
}

#[derive(Debug, clap::Args)]
pub(crate) struct TrainArgs {
    /// Experiment file (TOML).
    pub(crate) experiment: Option<PathBuf>,
    /// Override a setting, e.g. --set model.dropout=0.3 (repeatable; the value is TOML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) overrides: Vec<String>,
    #[command(flatten)]
    pub(crate) follow: FollowOptions,
    /// Start the run in the background and return at once, printing its id.
    #[arg(long, conflicts_with = "slurm")]
    pub(crate) detach: bool,
    #[command(flatten)]
    pub(crate) slurm: SlurmArgs,
}

/// Handing runs to a Slurm cluster instead of training them here.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct SlurmArgs {
    /// Submit to Slurm as one `sbatch --array` job (a task per run) and return; the job
    /// script is kept beside the sweep record. The runs dir must be on a filesystem the
    /// compute nodes share.
    #[arg(long)]
    pub(crate) slurm: bool,
    /// An sbatch option for every task, e.g. --sbatch=--partition=gpu --sbatch=--gpus=1
    /// (repeatable; after the experiment's [slurm] table).
    #[arg(
        long = "sbatch",
        value_name = "ARG",
        allow_hyphen_values = true,
        requires = "slurm"
    )]
    pub(crate) sbatch: Vec<String>,
    /// Submit even with a runs dir under /tmp (a one-node cluster, where nodes share it).
    #[arg(long, requires = "slurm")]
    pub(crate) force: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct AugmentPreviewArgs {
    /// Experiment file (default: experiments/baseline.toml).
    pub(crate) experiment: Option<PathBuf>,
    /// Override a setting, e.g. --set augment.rotation=40 (repeatable; the value is TOML).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) overrides: Vec<String>,
    /// The PNG to write.
    #[arg(long, value_name = "FILE", default_value = "augment-preview.png")]
    pub(crate) out: PathBuf,
    /// Training images to show, one per class in turn.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub(crate) n: usize,
    /// Augmented copies beside each.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub(crate) draws: usize,
    /// Seed of the augmentation draws (the same seed draws the same grid).
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
}

#[derive(Debug, clap::Args)]
pub(crate) struct LrFindArgs {
    /// Experiment file (TOML); its data, model, optimiser and batch size are swept.
    pub(crate) experiment: Option<PathBuf>,
    /// Override a setting, e.g. --set train.batch_size=32 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) overrides: Vec<String>,
    /// The first rate of the sweep.
    #[arg(long, default_value_t = 1e-7)]
    pub(crate) start: f64,
    /// The last rate of the sweep (it stops earlier once the loss blows up).
    #[arg(long, default_value_t = 10.0)]
    pub(crate) end: f64,
    /// Training steps (batches) in the sweep, one rate each.
    #[arg(long, default_value_t = 100)]
    pub(crate) steps: usize,
    /// Also draw the curve to this PNG file.
    #[arg(long, value_name = "FILE")]
    pub(crate) png: Option<PathBuf>,
    /// Where to train; overrides train.backend.
    #[arg(long, value_enum)]
    pub(crate) backend: Option<BackendChoice>,
    /// Draw the curve with plain ASCII dots.
    #[arg(long)]
    pub(crate) ascii: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    /// Experiment file (TOML).
    pub(crate) experiment: PathBuf,
    /// Override a setting, e.g. --set model.dropout=0.3 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) overrides: Vec<String>,
}

impl TrainArgs {
    /// `kiln` alone: the default experiment, shown live, in the default runs folder.
    pub(crate) fn default_run() -> Self {
        TrainArgs {
            experiment: None,
            overrides: Vec::new(),
            follow: FollowOptions {
                headless: false,
                screen: ScreenOptions {
                    ascii: false,
                    images: Default::default(),
                },
                runs_dir: PathBuf::from(DEFAULT_RUNS_DIR),
                backend: None,
                notify: None,
            },
            detach: false,
            slurm: SlurmArgs::default(),
        }
    }
}
