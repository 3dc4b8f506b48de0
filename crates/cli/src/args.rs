//! The command line, as clap types.

use std::path::PathBuf;

use clap::builder::TypedValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use sweep_model::{Arch, DeviceName, OptimizerKind, ScheduleKind};

/// Hyperparameter grid search for image classifiers, trained with candle.
///
/// A sweep file's grid (neurons × learning rate × optimizer, …) becomes trials trained
/// concurrently on the machine's GPUs or CPU, with every epoch's metrics in a SQLite database,
/// loss-curve plots and a submission from the best trial. Try `sweep run sweeps/quick.toml`.
///
/// Exit codes: 0 success, 1 a failure while running, 2 bad input (sweep file, data,
/// arguments), 130 interrupted.
// The doc comment is the help's description: a bare `about` would show the crate's
// description (a note for developers) instead.
#[derive(Debug, Parser)]
#[command(name = "sweep", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Expand a sweep file's grid and run (or resume) its trials.
    Run(RunArgs),
    /// List the sweeps with their trial counts by status and best objective.
    Ls(DbArgs),
    /// Show a sweep's trials, best first, with their params and metrics.
    Show(SweepArgs),
    /// Show a sweep's best trial: params, metrics and checkpoint.
    Best(SweepArgs),
    /// Run read-only SQL over the results database.
    Query(QueryArgs),
    /// Write PNG plots, summary.md, trials.csv and report.html for a sweep (or every sweep).
    Report(ReportArgs),
    /// Which hyperparameters mattered: each one's share of the objective's variance (exact
    /// on a complete grid, estimated otherwise).
    Importance(ImportanceArgs),
    /// Serve the report page of each sweep, live while it runs (on 127.0.0.1).
    Serve(ServeArgs),
    /// Predict a split with the best (or a named) trial and write a submission CSV.
    Predict(PredictArgs),
    /// Follow a Slurm sweep's submitted jobs again (after Ctrl-C or --detach), recording
    /// their results; submits nothing.
    Attach(AttachArgs),
    /// Cancel a Slurm sweep's jobs; its running trials become interrupted (resumable).
    Cancel(SweepArgs),
    /// Run one trial of a sweep (started by `sweep run`).
    #[command(hide = true)]
    Trial(TrialArgs),
    /// Train one model and print its metrics per epoch.
    Train(Box<TrainArgs>),
    /// Work with data sets.
    #[command(subcommand)]
    Data(DataCommand),
    /// Time the training step of the seed's models (or, with --layers, the ResNet's convolutions).
    Bench(BenchArgs),
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Write the built-in synthetic data set in the competition's folder layout.
    Synth(SynthArgs),
    /// Load a data folder (decoding and caching it if needed) and describe it.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A data folder in the competition layout.
    pub dir: PathBuf,
    /// Where decoded data sets are cached.
    #[arg(long, default_value = "results/cache")]
    pub cache: PathBuf,
    /// Pause (checkpoint kept) once this many epochs are done: a pruned sweep's rung.
    #[arg(long)]
    pub until: Option<u32>,
}

/// The synthetic data set's size and seed.
#[derive(Debug, Clone, Args)]
pub struct SynthSpecArgs {
    /// Number of classes (2–100).
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
    /// Image side in pixels.
    #[arg(long, default_value_t = 32)]
    pub size: usize,
    /// Training images.
    #[arg(long, default_value_t = 2000)]
    pub train: usize,
    /// Validation images.
    #[arg(long, default_value_t = 400)]
    pub val: usize,
    /// Test images.
    #[arg(long, default_value_t = 400)]
    pub test: usize,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// The folder to write (train.csv, val.csv, test.csv, train_images/, …).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub spec: SynthSpecArgs,
    /// Seed of the drawing.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// A parser for one of the model crate's names (an architecture, an optimizer), which the
/// help lists.
fn names<T>(
    all: &'static [T],
    name: fn(&T) -> &'static str,
) -> impl clap::builder::TypedValueParser<Value = T>
where
    T: std::str::FromStr<Err = sweep_model::UnknownName> + Clone + Send + Sync + 'static,
{
    clap::builder::PossibleValuesParser::new(all.iter().map(name)).try_map(|text| text.parse::<T>())
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// A data folder in the competition layout; without it, the synthetic set is used.
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub synth: SynthSpecArgs,
    /// Seed of the synthetic data set's drawing.
    #[arg(long, default_value_t = 7)]
    pub data_seed: u64,
    /// Where decoded data sets are cached.
    #[arg(long, default_value = "results/cache")]
    pub cache: PathBuf,
    /// The network family: dense layers over the flattened image, or a small residual
    /// convolutional network with a dense head.
    #[arg(long, default_value = "resnet", value_parser = names(&Arch::ALL, Arch::name))]
    pub arch: Arch,
    /// ResNet stage widths, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64")]
    pub filters: Vec<usize>,
    /// ResNet residual blocks per stage, comma-separated, one per stage of --filters
    /// (default: 2 per stage; ResNet-34's are 3,4,6,3).
    #[arg(long, value_delimiter = ',')]
    pub blocks: Vec<usize>,
    /// ResNet: dense head width; MLP: first hidden layer width.
    #[arg(long, default_value_t = 32)]
    pub neurons: usize,
    /// MLP: widths of the further hidden layers, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "48")]
    pub hidden: Vec<usize>,
    /// Dropout before the output layer.
    #[arg(long, default_value_t = 0.3)]
    pub dropout: f64,
    /// Passes over the training images.
    #[arg(long, default_value_t = 5)]
    pub epochs: u32,
    /// Images per training step (at least 2).
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// The optimizer (sgd takes --momentum).
    #[arg(long, default_value = "adam", value_parser = names(&OptimizerKind::ALL, OptimizerKind::name))]
    pub optimizer: OptimizerKind,
    /// Learning rate.
    #[arg(long, default_value_t = 0.002)]
    pub lr: f64,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.0)]
    pub momentum: f64,
    /// SGD: Nesterov's momentum.
    #[arg(long)]
    pub nesterov: bool,
    /// Weight decay: coupled L2 for sgd, adam and rmsprop, decoupled for adamw.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Label smoothing of the training loss, in [0, 1].
    #[arg(long, default_value_t = 0.0)]
    pub label_smoothing: f64,
    /// End training once this many epochs pass without a better validation F1 (0: never).
    #[arg(long, default_value_t = 0)]
    pub patience: u32,
    /// Learning-rate schedule: constant, cosine, step, plateau (on validation F1) or
    /// onecycle (per batch).
    #[arg(long, default_value = "constant", value_parser = names(&ScheduleKind::ALL, ScheduleKind::name))]
    pub schedule: ScheduleKind,
    /// Epochs of linear warmup before the schedule (not onecycle).
    #[arg(long)]
    pub warmup_epochs: Option<u32>,
    /// The lowest rate: cosine's end, plateau's floor, onecycle's last rate (default 0).
    #[arg(long)]
    pub min_lr: Option<f64>,
    /// step: epochs between two reductions.
    #[arg(long)]
    pub step_size: Option<u32>,
    /// step: the factor of each reduction (default 0.1).
    #[arg(long)]
    pub gamma: Option<f64>,
    /// plateau: the factor of each reduction (default 0.1).
    #[arg(long)]
    pub factor: Option<f64>,
    /// plateau: epochs without a better validation F1 before a reduction (default 10).
    #[arg(long)]
    pub plateau_patience: Option<u32>,
    /// onecycle: the peak rate, reached after 30% of the steps from --lr.
    #[arg(long)]
    pub max_lr: Option<f64>,
    /// Seed of the weights' initialisation, the shuffling and the augmentation.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Largest random rotation in degrees (0: off).
    #[arg(long, default_value_t = 0.0)]
    pub rotation: f64,
    /// Largest random shift as a fraction of the size (0: off).
    #[arg(long, default_value_t = 0.0)]
    pub shift: f64,
    /// Largest random zoom as a fraction (0: off).
    #[arg(long, default_value_t = 0.0)]
    pub zoom: f64,
    /// Flip half of the training images left to right.
    #[arg(long)]
    pub hflip: bool,
    /// Device: cpu or cuda:K.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceName,
    /// The trial folder for checkpoints; an existing checkpoint there is resumed.
    #[arg(long, default_value = "results/train")]
    pub out: PathBuf,
    /// Print each epoch's metrics as a JSON line instead of a table row.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Image side in pixels.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Images per step.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Timed steps per measurement (the median is reported).
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Device: cpu or cuda:K.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceName,
    /// The ResNet's stage widths, comma-separated (default: the seed's 64,128,256).
    #[arg(long, value_delimiter = ',', conflicts_with = "layers")]
    pub filters: Option<Vec<usize>>,
    /// The ResNet's residual blocks per stage, one per stage (default: 2 each; ResNet-34's
    /// depth with four --filters is 3,4,6,3).
    #[arg(long, value_delimiter = ',', conflicts_with = "layers")]
    pub blocks: Vec<usize>,
    /// Only the cases whose name contains this (resnet, mlp, train, infer, …).
    #[arg(long, conflicts_with = "layers")]
    pub case: Option<String>,
    /// Time each distinct convolution of the seed's ResNet instead of the steps: its forward,
    /// input gradient and weight gradient on this CPU's kernels and on im2col (CPU only).
    #[arg(long)]
    pub layers: bool,
}

/// Where the results database is.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// The results database.
    #[arg(long, env = "SWEEP_DB", default_value = "results/sweep.db")]
    pub db: PathBuf,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The sweep file (TOML).
    pub file: PathBuf,
    #[command(flatten)]
    pub db: DbArgs,
    /// Where trials' checkpoints and the data cache go.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Concurrent trials per device, instead of the file's `run.trials_per_device`.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Devices instead of the file's `run.devices`: auto, cpu, or cuda:K,cuda:L,…
    #[arg(long)]
    pub devices: Option<String>,
    /// Print the expanded trials (by number) and what pruning would train; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run the sweep's failed trials again (after fixing what made them fail): they resume
    /// from their last checkpoint, and their attempts keep counting.
    #[arg(long)]
    pub retry_failed: bool,
    /// Where trials run, instead of the file's `run.executor`: local processes, or Slurm
    /// jobs (with the file's `[run.slurm]` settings).
    #[arg(long, value_parser = ["local", "slurm"])]
    pub executor: Option<String>,
    /// Slurm: submit the trials and return at once; the jobs run on (`sweep attach FILE`
    /// follows them).
    #[arg(long)]
    pub detach: bool,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// The sweep file (TOML) the jobs were submitted from.
    pub file: PathBuf,
    #[command(flatten)]
    pub db: DbArgs,
    /// The results folder the trials were submitted with.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
}

#[derive(Debug, Args)]
pub struct TrialArgs {
    /// The trial's folder, holding its config.json.
    pub dir: PathBuf,
    /// Device: cpu or cuda:K.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceName,
    /// Where decoded data sets are cached.
    #[arg(long, default_value = "results/cache")]
    pub cache: PathBuf,
    /// Pause (checkpoint kept) once this many epochs are done: a pruned sweep's rung.
    #[arg(long)]
    pub until: Option<u32>,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The sweep's name.
    pub sweep: String,
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// Aligned columns under a header.
    Table,
    /// Comma-separated values with a header line.
    Csv,
    /// A JSON array of objects, one per row.
    Json,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The SQL (the database is opened read-only).
    pub sql: String,
    /// How to print the rows.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The sweep's name; without it, every sweep in the database.
    pub sweep: Option<String>,
    /// The folder to write into (default: results/SWEEP/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ImportanceFormat {
    /// A line on the method, then aligned columns: term, share, interval.
    Table,
    /// One JSON object: the method, what was left out and the shares.
    Json,
}

#[derive(Debug, Args)]
pub struct ImportanceArgs {
    /// The sweep's name.
    pub sweep: String,
    /// How to print the importance.
    #[arg(long, value_enum, default_value_t = ImportanceFormat::Table)]
    pub format: ImportanceFormat,
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The address to listen on (port 0: any free port); only this machine by default.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SplitArg {
    /// The test images (unlabelled: the submission).
    Test,
    /// The validation images (labelled: also prints the macro F1).
    Val,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The sweep's name.
    pub sweep: String,
    /// A trial (its number in `sweep show`) instead of the best one.
    #[arg(long)]
    pub trial: Option<i64>,
    /// Which images to label.
    #[arg(long, value_enum, default_value_t = SplitArg::Test)]
    pub split: SplitArg,
    /// The submission CSV to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Where decoded data sets are cached.
    #[arg(long, default_value = "results/cache")]
    pub cache: PathBuf,
    /// Device: cpu or cuda:K.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceName,
    #[command(flatten)]
    pub db: DbArgs,
}
