//! `liveness-trainer`: train, eval, score and bench the liveness model.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use liveness_core::evaluate;
use liveness_trainer::checkpoint::load_model;
use liveness_trainer::dataset::{SubjectRule, scan};
use liveness_trainer::loader::{FrameStore, worker_pool};
use liveness_trainer::model::parse_device;
use liveness_trainer::onnx_runtime::Engine;
use liveness_trainer::optim::{OptimizerConfig, OptimizerKind};
use liveness_trainer::scoring::ScoreLine;
use liveness_trainer::split::parse_subjects;
use liveness_trainer::train::{
    self, Outcome, Precision, RunOptions, Schedule, TrainConfig, report_lines,
};
use liveness_trainer::{bench, scoring};

#[derive(Parser)]
#[command(
    name = "liveness-trainer",
    version,
    about = "Train and check the face-liveness model (tch / libtorch)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train on DATA/{real,replay,printed,2dmask}/<sample>/<5 frames>, validating on held-out subjects.
    Train(Box<TrainArgs>),
    /// Metrics of a checkpoint on a data folder.
    Eval(EvalArgs),
    /// One JSON line per sample: {"path","class","spoof"}.
    Score(EvalArgs),
    /// Training-step throughput (frames/s), synthetic or through the data loader; one JSON line.
    Bench(BenchArgs),
    /// Write NAME.onnx (wonnx's dialect) and its manifest NAME.json from a checkpoint.
    Export(ExportArgs),
    /// Like `score`, but with an exported ONNX model on the CPU (tract) and the browser's preprocessing.
    ScoreOnnx(ScoreOnnxArgs),
    /// Cross-validation summary of fold runs: threshold from pooled validation scores, per-fold
    /// and mean ± std metrics, ROC and training-curve PNGs, report.json.
    Report(ReportArgs),
    /// Write a small generated dataset (live vs textured "attack" frames) for smoke runs.
    Synth(SynthArgs),
}

#[derive(Args)]
struct ExportArgs {
    /// Checkpoint file.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Output model path (NAME.onnx); the manifest is written as NAME.json next to it.
    #[arg(long)]
    out: PathBuf,
    /// Input side in pixels (default: the checkpoint's training size).
    #[arg(long)]
    size: Option<u32>,
    /// Samples per run (static shape; wonnx limits it at large sizes).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Decision threshold on p_spoof stored in the manifest (default: the checkpoint's).
    #[arg(long)]
    threshold: Option<f32>,
    /// Name of the training data, recorded in the manifest.
    #[arg(long)]
    data_name: String,
    /// Terms of use of the training data, recorded in the manifest (e.g. "research use only").
    #[arg(long)]
    data_terms: String,
    /// A `report` folder's report.json: its cross-validation figures go into the manifest
    /// (needed for a model trained with --train-on-all, whose own validation saw its people).
    #[arg(long)]
    cross_validation: Option<PathBuf>,
    /// The command that reproduces the model, recorded in the manifest.
    #[arg(long)]
    training_command: Option<String>,
}

#[derive(Args)]
struct ScoreOnnxArgs {
    /// Exported model (NAME.onnx).
    #[arg(long)]
    model: PathBuf,
    /// Its manifest (default: NAME.json next to the model).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Dataset folder.
    #[arg(long)]
    data: PathBuf,
    /// Runtime: tract (CPU) or wonnx (GPU through wgpu/Vulkan, the browser's runtime).
    #[arg(long, value_enum, default_value_t = Engine::Tract)]
    engine: Engine,
}

#[derive(Args)]
struct ReportArgs {
    /// Run folders, one per fold (each with val_scores.jsonl and metrics.jsonl).
    #[arg(long, num_args = 1.., required = true)]
    runs: Vec<PathBuf>,
    /// Folder for report.json and the plots.
    #[arg(long)]
    out: PathBuf,
    /// Use this threshold instead of the pooled equal-error point.
    #[arg(long)]
    threshold: Option<f32>,
}

#[derive(Args)]
struct SynthArgs {
    /// Folder to create.
    #[arg(long)]
    out: PathBuf,
    /// Number of subjects.
    #[arg(long, default_value_t = 6)]
    subjects: u32,
    /// Samples per class and subject.
    #[arg(long, default_value_t = 4)]
    per_class: u32,
    /// Frame width.
    #[arg(long, default_value_t = 80)]
    width: u32,
    /// Frame height.
    #[arg(long, default_value_t = 64)]
    height: u32,
}

#[derive(Args)]
struct Common {
    /// Device: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Data-loading threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    workers: usize,
    /// Do not keep resized frames in memory (saves RAM on large folders; eval and score read
    /// each sample once and never cache).
    #[arg(long)]
    no_cache: bool,
}

#[derive(Args)]
struct TrainArgs {
    /// Dataset folder.
    #[arg(long)]
    data: PathBuf,
    /// Run folder for checkpoints (e1.safetensors…, last.safetensors), metrics.jsonl, split.json.
    #[arg(long)]
    out: PathBuf,
    /// Continue from OUT/last.safetensors with its settings (only --epochs may change).
    #[arg(long)]
    resume: bool,
    /// Epochs in total.
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Training samples per step (each 5 frames).
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Validation samples per forward pass.
    #[arg(long, default_value_t = 32)]
    val_batch_size: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Learning-rate schedule.
    #[arg(long, value_enum, default_value_t = Schedule::Constant)]
    lr_schedule: Schedule,
    /// Optimiser.
    #[arg(long, value_enum, default_value_t = OptimizerKind::Sgd)]
    optimizer: OptimizerKind,
    /// Weight decay.
    #[arg(long, default_value_t = 1e-7)]
    weight_decay: f64,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.0)]
    momentum: f64,
    /// Input side in pixels (frames are centre-cropped square and resized to it).
    #[arg(long, default_value_t = liveness_core::DEFAULT_INPUT_SIZE)]
    input_size: u32,
    /// Turn off the random horizontal flip.
    #[arg(long)]
    no_flip: bool,
    /// Seed of initialisation, split, shuffling and flips.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Share of each class for validation (chosen by subject).
    #[arg(long, default_value_t = 0.3)]
    val_fraction: f64,
    /// Validation subjects by name, comma-separated (overrides --val-fraction).
    #[arg(long)]
    val_subjects: Option<String>,
    /// Train on every sample, the validation subjects' too (a final model measured by folds).
    #[arg(long)]
    train_on_all: bool,
    /// Train only on samples whose folder name matches this regular expression.
    #[arg(long)]
    train_only: Option<String>,
    /// Validate only on samples whose folder name matches this regular expression
    /// (e.g. --train-only '_01_[0-9]+$' --val-only '_02_[0-9]+$' for a cross-session check).
    #[arg(long)]
    val_only: Option<String>,
    /// Regular expression taking the subject from a sample name (first group, else whole match).
    #[arg(long, default_value = SubjectRule::DEFAULT)]
    subject_pattern: String,
    /// Decision threshold on p(spoof) for validation metrics.
    #[arg(long, default_value_t = 0.5)]
    threshold: f32,
    /// Training precision (fp16 = autocast, CUDA only).
    #[arg(long, value_enum, default_value_t = Precision::Fp32)]
    precision: Precision,
    /// torchvision resnet18 state_dict as safetensors, to initialise the encoder.
    #[arg(long)]
    init_weights: Option<PathBuf>,
    /// Batches prepared ahead of the device.
    #[arg(long, default_value_t = 4)]
    prefetch: usize,
    #[command(flatten)]
    augment: liveness_trainer::augment::Augment,
    /// Stop (saving last) after this many steps, as Ctrl+C would.
    #[arg(long)]
    stop_after_steps: Option<usize>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct EvalArgs {
    /// Checkpoint file.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Dataset folder.
    #[arg(long)]
    data: PathBuf,
    /// Decision threshold (default: the checkpoint's).
    #[arg(long)]
    threshold: Option<f32>,
    /// Samples per forward pass.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Print the report as one JSON object (eval only).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct BenchArgs {
    /// Samples per step (each 5 frames).
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Input side.
    #[arg(long, default_value_t = liveness_core::DEFAULT_INPUT_SIZE)]
    input_size: u32,
    /// Precision.
    #[arg(long, value_enum, default_value_t = Precision::Fp32)]
    precision: Precision,
    /// Timed steps.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Feed training through the data loader from this folder instead of synthetic tensors.
    #[arg(long)]
    data: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

fn train(a: TrainArgs) -> Result<ExitCode> {
    let config = TrainConfig {
        epochs: a.epochs,
        batch_size: a.batch_size,
        val_batch_size: a.val_batch_size,
        lr: a.lr,
        schedule: a.lr_schedule,
        optimizer: OptimizerConfig {
            kind: a.optimizer,
            weight_decay: a.weight_decay,
            momentum: a.momentum,
        },
        input_size: a.input_size,
        flip: !a.no_flip,
        seed: a.seed,
        val_fraction: a.val_fraction,
        val_subjects: a
            .val_subjects
            .as_deref()
            .map(parse_subjects)
            .transpose()?
            .map(|s| s.into_iter().collect()),
        train_only: a.train_only,
        train_on_all: a.train_on_all,
        val_only: a.val_only,
        subject_pattern: a.subject_pattern,
        threshold: a.threshold,
        precision: a.precision,
        normalization: liveness_core::Normalization::IMAGENET,
        augment: a.augment,
    };
    let opts = RunOptions {
        data: a.data,
        out: a.out,
        device: parse_device(&a.common.device)?,
        workers: a.common.workers,
        prefetch: a.prefetch,
        cache: !a.common.no_cache,
        resume: a.resume,
        init_weights: a.init_weights,
        stop_after_steps: a.stop_after_steps,
    };
    let flag = train::interrupt_flag()?;
    match train::run(config, &opts, &flag)? {
        Outcome::Finished => Ok(ExitCode::SUCCESS),
        // Ctrl+C: state saved; the conventional exit status of SIGINT.
        Outcome::Interrupted if flag.load(std::sync::atomic::Ordering::SeqCst) => {
            Ok(ExitCode::from(130))
        }
        Outcome::Interrupted => Ok(ExitCode::SUCCESS),
    }
}

fn eval_or_score(a: EvalArgs, as_scores: bool) -> Result<ExitCode> {
    let device = parse_device(&a.common.device)?;
    let (model, meta) = load_model(&a.checkpoint, device)?;
    let samples = scan(&a.data, &SubjectRule::default())?;
    let pool = worker_pool(a.common.workers)?;
    // One pass over the folder: a cache would only hold every frame in RAM for nothing.
    let store = Arc::new(FrameStore::new(samples, meta.input_size, false));
    let all: Vec<usize> = (0..store.samples().len()).collect();
    let scores = scoring::score(
        &model,
        &store,
        &all,
        a.batch_size.max(1),
        &meta.normalization,
        pool,
        device,
    )?;
    if as_scores {
        for line in scores.lines(&store) {
            println!("{}", serde_json::to_string(&line)?);
        }
    } else {
        let report = evaluate(
            &scores.scored(&store),
            a.threshold.unwrap_or(meta.config.threshold),
        );
        if a.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!(
                "{}: {} samples, loss {:.4}",
                a.data.display(),
                report.samples,
                scores.loss(&store)
            );
            println!("{}", report_lines(&report));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run() -> Result<ExitCode> {
    match Cli::parse().command {
        Command::Train(a) => train(*a),
        Command::Eval(a) => eval_or_score(a, false),
        Command::Score(a) => eval_or_score(a, true),
        Command::Export(a) => {
            let done =
                liveness_trainer::export::export(&liveness_trainer::export::ExportOptions {
                    checkpoint: a.checkpoint,
                    out: a.out.clone(),
                    size: a.size,
                    batch: a.batch,
                    threshold: a.threshold,
                    data_name: a.data_name,
                    data_terms: a.data_terms,
                    cross_validation: a.cross_validation,
                    training_command: a.training_command,
                })?;
            let m = &done.manifest;
            println!(
                "wrote {} ({} bytes, input [{}, 5, 3, {}, {}], sha256 {}) and {} in {:.2}s",
                a.out.display(),
                done.bytes,
                m.input.batch,
                m.input.size,
                m.input.size,
                m.sha256,
                done.manifest_path.display(),
                done.seconds
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::ScoreOnnx(a) => {
            let model = liveness_trainer::onnx_runtime::OnnxModel::load(
                &a.model,
                a.manifest.as_deref(),
                a.engine,
            )?;
            let samples = scan(&a.data, &SubjectRule::default())?;
            let logits = model.score_samples(&samples)?;
            for (s, logit) in samples.iter().zip(logits) {
                let spoof = 1.0 / (1.0 + (-logit).exp());
                println!("{}", serde_json::to_string(&ScoreLine::new(s, spoof))?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(a) => {
            let r = liveness_trainer::report::cross_validate(&a.runs, a.threshold, &a.out)?;
            println!("{}", liveness_trainer::report::markdown(&r));
            Ok(ExitCode::SUCCESS)
        }
        Command::Synth(a) => {
            liveness_trainer::synthetic::write_dataset(
                &a.out,
                a.subjects,
                a.per_class,
                a.width,
                a.height,
            )?;
            println!(
                "wrote {} samples to {}",
                2 * a.subjects * a.per_class,
                a.out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(a) => {
            let result = bench::run(&bench::BenchOptions {
                batch_size: a.batch_size,
                input_size: a.input_size,
                precision: a.precision,
                steps: a.steps,
                warmup: a.warmup,
                device: parse_device(&a.common.device)?,
                data: a.data,
                workers: a.common.workers,
                cache: !a.common.no_cache,
            })
            .context("bench failed")?;
            println!("{}", serde_json::to_string(&result)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
