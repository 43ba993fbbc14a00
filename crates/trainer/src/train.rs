//! The training loop: epochs of shuffled batches, validation over the whole validation set after
//! each, `metrics.jsonl`, per-epoch and `last` checkpoints, resume, and a clean stop on Ctrl+C.

use std::collections::{BTreeSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};
use liveness_core::{AttackClass, Normalization, Report, evaluate};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::augment::{Augment, seed_step};
use crate::checkpoint::{self, FORMAT, Meta};
use crate::dataset::{SubjectRule, scan};
use crate::loader::{Flip, FrameStore, epoch_order, stream, worker_pool};
use crate::model::{ARCH, MIN_INPUT_SIZE, SpoofModel, normalize, to_unit};
use crate::optim::{Optimizer, OptimizerConfig, OptimizerKind};
use crate::scoring;
use crate::split::{Split, SplitRule, describe, keep_matching, split};

/// Learning-rate schedule over the whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// The same rate throughout (the recipe).
    Constant,
    /// Cosine decay from the rate to 0 over all steps.
    Cosine,
}

/// Numeric precision of the training step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Plain f32.
    Fp32,
    /// f16 autocast (CUDA only).
    Fp16,
}

/// Everything that determines a run's result; saved in every checkpoint and reused on resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Epochs to train in total.
    pub epochs: usize,
    /// Training samples per step.
    pub batch_size: usize,
    /// Validation samples per forward pass.
    pub val_batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Optimiser.
    pub optimizer: OptimizerConfig,
    /// Input side in pixels.
    pub input_size: u32,
    /// Random horizontal flip of training samples.
    pub flip: bool,
    /// Seed of initialisation, split, shuffling and flips.
    pub seed: u64,
    /// Validation share when choosing subjects by seed.
    pub val_fraction: f64,
    /// Validation subjects given by name (overrides the fraction).
    pub val_subjects: Option<Vec<String>>,
    /// Only training samples whose name matches this (e.g. one recording session).
    #[serde(default)]
    pub train_only: Option<String>,
    /// Only validation samples whose name matches this.
    #[serde(default)]
    pub val_only: Option<String>,
    /// Train on every sample, validation subjects included (for a final model whose quality was
    /// measured on folds); its "validation" is then only a sanity check on seen people.
    #[serde(default)]
    pub train_on_all: bool,
    /// Regular expression that takes the subject from a sample name.
    pub subject_pattern: String,
    /// Decision threshold on `p_spoof` for the validation metrics.
    pub threshold: f32,
    /// Precision of the training step.
    pub precision: Precision,
    /// Pixel normalisation.
    pub normalization: Normalization,
    /// Training-time augmentation beyond the flip.
    #[serde(default)]
    pub augment: Augment,
}

/// How to run (does not change the result).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Dataset folder.
    pub data: PathBuf,
    /// Run folder: checkpoints and metrics.jsonl.
    pub out: PathBuf,
    /// Device.
    pub device: Device,
    /// Loader threads (0 = one per core).
    pub workers: usize,
    /// Batches prepared ahead.
    pub prefetch: usize,
    /// Keep resized frames in memory.
    pub cache: bool,
    /// Continue from `out/last.safetensors`.
    pub resume: bool,
    /// torchvision ResNet-18 weights for the encoder.
    pub init_weights: Option<PathBuf>,
    /// Stop as if interrupted after this many steps (tests, quick looks).
    pub stop_after_steps: Option<usize>,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch number (1-based).
    pub epoch: usize,
    /// Mean training loss of the epoch (`None` if it had no step).
    pub train_loss: Option<f64>,
    /// Mean validation loss.
    pub val_loss: Option<f64>,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Wall time of the epoch (training and validation), seconds.
    pub seconds: f64,
    /// Validation metrics.
    pub validation: Report,
}

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// All epochs done.
    Finished,
    /// Stopped early (Ctrl+C or `--stop-after-steps`); `last` holds the state.
    Interrupted,
}

/// One optimisation step: forward in training mode (f16 autocast if asked), BCE-with-logits
/// against `labels`, backward, update. Returns the loss.
pub fn train_step(
    model: &SpoofModel,
    optim: &mut Optimizer,
    input: &Tensor,
    labels: &Tensor,
    precision: Precision,
    lr: f64,
) -> Tensor {
    let loss = tch::autocast(precision == Precision::Fp16, || {
        model
            .forward_t(input, true)
            .to_kind(Kind::Float)
            .flatten(0, -1)
            .binary_cross_entropy_with_logits::<Tensor>(labels, None, None, tch::Reduction::Mean)
    });
    optim.zero_grad();
    loss.backward();
    optim.step(lr);
    loss
}

/// The flag set by Ctrl+C.
pub fn interrupt_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    ctrlc::set_handler(move || f.store(true, Ordering::SeqCst))
        .context("cannot install the Ctrl+C handler")?;
    Ok(flag)
}

fn lr_at(config: &TrainConfig, step: usize, total: usize) -> f64 {
    match config.schedule {
        Schedule::Constant => config.lr,
        Schedule::Cosine => {
            let t = step as f64 / total.max(1) as f64;
            config.lr * 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
        }
    }
}

/// Path of the checkpoint after `epoch`.
pub fn epoch_path(out: &Path, epoch: usize) -> PathBuf {
    out.join(format!("e{epoch}.safetensors"))
}

/// Path of the latest checkpoint.
pub fn last_path(out: &Path) -> PathBuf {
    out.join("last.safetensors")
}

/// Trains. `config` is ignored on resume except for `epochs` (the checkpoint's own is used).
pub fn run(
    mut config: TrainConfig,
    opts: &RunOptions,
    interrupted: &AtomicBool,
) -> Result<Outcome> {
    // A fresh run must not overwrite another run's checkpoints and records.
    if !opts.resume && last_path(&opts.out).exists() {
        bail!(
            "run folder {} already holds a run (last.safetensors): add --resume to continue it, or choose another --out",
            opts.out.display()
        );
    }
    let resumed = if opts.resume {
        let path = last_path(&opts.out);
        let ckpt = checkpoint::load(&path)
            .with_context(|| format!("--resume: cannot resume from {}", path.display()))?;
        let epochs = config.epochs;
        config = ckpt.meta.config.clone();
        config.epochs = epochs;
        Some(ckpt)
    } else {
        None
    };
    if config.input_size < MIN_INPUT_SIZE {
        bail!(
            "--input-size {} is too small: the ResNet-18 encoder needs at least {MIN_INPUT_SIZE}",
            config.input_size
        );
    }
    if config.batch_size == 0 || config.val_batch_size == 0 {
        bail!("--batch-size and --val-batch-size must be at least 1");
    }
    if config.precision != Precision::Fp32 && opts.device == Device::Cpu {
        bail!(
            "--precision {:?} needs a CUDA device; use fp32 on the CPU",
            config.precision
        );
    }

    let rule = SubjectRule::new(&config.subject_pattern)?;
    let samples = scan(&opts.data, &rule)?;
    let split_rule = match &config.val_subjects {
        Some(names) => SplitRule::Subjects(names.iter().cloned().collect()),
        None => SplitRule::Fraction {
            fraction: config.val_fraction,
            seed: config.seed,
        },
    };
    let mut split: Split = split(&samples, &split_rule)?;
    if config.train_on_all {
        split.train = (0..samples.len()).collect();
        println!(
            "--train-on-all: training on every sample; validation figures below are on people seen in training"
        );
    }
    if let Some(p) = &config.train_only {
        keep_matching(&samples, &mut split.train, p, "--train-only")?;
    }
    if let Some(p) = &config.val_only {
        keep_matching(&samples, &mut split.val, p, "--val-only")?;
    }
    println!(
        "data {}: {} samples\n{}",
        opts.data.display(),
        samples.len(),
        describe(&samples, &split)
    );

    let pool = worker_pool(opts.workers)?;
    let store = Arc::new(FrameStore::new(samples, config.input_size, opts.cache));
    check_all(&store, &pool)?;

    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create run folder {}", opts.out.display()))?;
    std::fs::write(
        opts.out.join("split.json"),
        serde_json::to_vec_pretty(&split)?,
    )?;

    tch::manual_seed(config.seed as i64);
    let mut model = SpoofModel::new(opts.device);
    let mut optim = Optimizer::new(config.optimizer, model.vs.variables());
    let (mut epoch_done, mut skip_steps, mut last_report) = (0, 0, None);
    // Loss sum and step count of an epoch interrupted part-way, so its record stays whole.
    let mut partial_loss: Option<(f64, usize)> = None;
    match &resumed {
        Some(ckpt) => {
            let path = last_path(&opts.out);
            ckpt.apply_to(&model, &path)?;
            optim.load_state(&ckpt.optim, ckpt.meta.optimizer_step)?;
            epoch_done = ckpt.meta.epoch;
            skip_steps = ckpt.meta.step_in_epoch;
            last_report = ckpt.meta.validation.clone();
            partial_loss = Some(ckpt.meta.epoch_loss);
            keep_records_up_to(&opts.out, epoch_done)?;
            println!(
                "resumed from {} at epoch {epoch_done}, step {skip_steps}",
                path.display()
            );
        }
        None => {
            if let Some(w) = &opts.init_weights {
                model.load_torchvision_encoder(w)?;
                println!("encoder initialised from {}", w.display());
            }
        }
    }

    let classes: Vec<AttackClass> = split
        .train
        .iter()
        .map(|&i| store.samples()[i].class)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let steps_per_epoch = split.train.len().div_ceil(config.batch_size);
    let total_steps = steps_per_epoch * config.epochs;
    let mut steps_this_run = 0usize;
    let save = |epoch: usize,
                step_in_epoch: usize,
                epoch_loss: (f64, usize),
                report: Option<Report>,
                optim: &Optimizer,
                paths: &[PathBuf]|
     -> Result<()> {
        let meta = Meta {
            format: FORMAT.to_owned(),
            arch: ARCH.to_owned(),
            epoch,
            step_in_epoch,
            epoch_loss,
            optimizer_step: optim.step,
            input_size: config.input_size,
            normalization: config.normalization,
            config: config.clone(),
            classes: classes.clone(),
            validation: report,
            written_by: concat!("liveness-trainer ", env!("CARGO_PKG_VERSION")).to_owned(),
        };
        let bytes = checkpoint::encode(&meta, &model, &optim.state())?;
        paths
            .iter()
            .try_for_each(|p| checkpoint::write_atomic(p, &bytes))
    };

    for epoch in epoch_done + 1..=config.epochs {
        // Ctrl+C while reading frames or validating: the last checkpoint is already current.
        if interrupted.load(Ordering::SeqCst) {
            println!(
                "stopped before epoch {epoch}; {} is current",
                last_path(&opts.out).display()
            );
            return Ok(Outcome::Interrupted);
        }
        let started = Instant::now();
        let order = epoch_order(&split.train, config.seed, epoch);
        let skip = skip_steps * config.batch_size;
        let flip = config.flip.then_some(Flip {
            seed: config.seed,
            epoch,
        });
        let (batches, producer) = stream(
            store.clone(),
            order[skip.min(order.len())..].to_vec(),
            config.batch_size,
            flip,
            opts.prefetch,
            pool.clone(),
        );
        let bar = ProgressBar::new(steps_per_epoch as u64).with_position(skip_steps as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}<{eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(format!("{epoch}/{}", config.epochs));
        let mut recent: VecDeque<f64> = VecDeque::with_capacity(10);
        let (mut loss_sum, mut loss_n) = partial_loss.take().unwrap_or((0.0, 0));
        let mut step_in_epoch = skip_steps;
        let mut lr = lr_at(
            &config,
            (epoch - 1) * steps_per_epoch + step_in_epoch,
            total_steps,
        );
        for batch in batches {
            let batch = batch?;
            lr = lr_at(
                &config,
                (epoch - 1) * steps_per_epoch + step_in_epoch,
                total_steps,
            );
            let mut unit = to_unit(&batch.pixels, batch.len(), config.input_size, opts.device);
            if config.augment.is_on() {
                seed_step(config.seed, epoch, step_in_epoch);
                unit = config.augment.apply(&unit);
            }
            let input = normalize(&unit, &config.normalization);
            let labels = Tensor::from_slice(&batch.labels).to_device(opts.device);
            let loss = train_step(&model, &mut optim, &input, &labels, config.precision, lr);
            let value = f64::try_from(&loss)?;
            if !value.is_finite() {
                bail!(
                    "training diverged at epoch {epoch}, step {}: loss is {value}; lower --lr",
                    step_in_epoch + 1
                );
            }
            step_in_epoch += 1;
            steps_this_run += 1;
            loss_sum += value;
            loss_n += 1;
            if recent.len() == 10 {
                recent.pop_front();
            }
            recent.push_back(value);
            bar.set_message(format!(
                "loss {:.4}",
                recent.iter().sum::<f64>() / recent.len() as f64
            ));
            bar.inc(1);
            let stop_now = opts.stop_after_steps.is_some_and(|n| steps_this_run >= n);
            if interrupted.load(Ordering::SeqCst) || stop_now {
                bar.abandon();
                drop(producer);
                // Resuming skips the steps done; with all of them done it goes straight to validation.
                save(
                    epoch - 1,
                    step_in_epoch,
                    (loss_sum, loss_n),
                    last_report.clone(),
                    &optim,
                    &[last_path(&opts.out)],
                )?;
                println!(
                    "stopped at epoch {epoch}, step {step_in_epoch}: saved {}",
                    last_path(&opts.out).display()
                );
                return Ok(Outcome::Interrupted);
            }
        }
        bar.finish_and_clear();
        let _ = producer.join();
        skip_steps = 0;

        let scores = scoring::score(
            &model,
            &store,
            &split.val,
            config.val_batch_size,
            &config.normalization,
            pool.clone(),
            opts.device,
        )?;
        let report = evaluate(&scores.scored(&store), config.threshold);
        let record = EpochRecord {
            epoch,
            train_loss: (loss_n > 0).then(|| loss_sum / loss_n as f64),
            val_loss: Some(scores.loss(&store)).filter(|l| l.is_finite()),
            lr,
            seconds: started.elapsed().as_secs_f64(),
            validation: report.clone(),
        };
        print_epoch(&record);
        // The latest epoch's validation scores, for fold reports (overwritten each epoch).
        let lines: String = scores
            .lines(&store)
            .iter()
            .map(|l| serde_json::to_string(l).map(|j| j + "\n"))
            .collect::<Result<_, _>>()?;
        checkpoint::write_atomic(&opts.out.join("val_scores.jsonl"), lines.as_bytes())?;
        save(
            epoch,
            0,
            (0.0, 0),
            Some(report.clone()),
            &optim,
            &[epoch_path(&opts.out, epoch), last_path(&opts.out)],
        )?;
        append_record(&opts.out, &record)?;
        let records = read_records(&opts.out)?;
        crate::plots::training_curves(&records, "training", &opts.out.join("training.png"))?;
        last_report = Some(report);
    }
    Ok(Outcome::Finished)
}

/// Reads every image header (or, with the cache on, decodes every frame) before training, so a
/// bad file stops the run at once with its path.
fn check_all(store: &Arc<FrameStore>, pool: &rayon::ThreadPool) -> Result<()> {
    let bar = ProgressBar::new(store.samples().len() as u64).with_message("reading frames");
    if store.is_cached() {
        store.warm(pool, &bar)?;
    } else {
        use rayon::prelude::*;
        pool.install(|| {
            store
                .samples()
                .par_iter()
                .try_for_each(|s| crate::dataset::check_frames(s).map(|_| ()))
        })?;
    }
    bar.finish_and_clear();
    Ok(())
}

fn fmt_rate(v: Option<f64>) -> String {
    v.map_or("n/a".to_owned(), |x| format!("{:.2}%", 100.0 * x))
}

/// Prints an epoch's summary (recipe metrics and ISO/IEC 30107-3 metrics).
fn print_epoch(r: &EpochRecord) {
    let v = &r.validation;
    let f = |x: Option<f64>| x.map_or("n/a".to_owned(), |x| format!("{x:.4}"));
    println!(
        "epoch {}: train loss {}, val loss {}, {:.1}s | acc {} f1-macro {} f2-weighted {} f1-weighted {}",
        r.epoch,
        f(r.train_loss),
        f(r.val_loss),
        r.seconds,
        f(v.accuracy),
        f(v.f1_macro),
        f(v.f2_weighted),
        f(v.f1_weighted)
    );
    println!("{}", report_lines(v));
}

/// The ISO metrics and the confusion matrix as text.
pub fn report_lines(v: &Report) -> String {
    let per_class: Vec<String> = v
        .apcer
        .iter()
        .map(|(c, a)| format!("APCER {c} {:.2}%", 100.0 * a))
        .collect();
    format!(
        "  {} | APCER max {} BPCER {} ACER {} | EER {} AUC {} (threshold {})\n{}",
        per_class.join(", "),
        fmt_rate(v.apcer_max),
        fmt_rate(v.bpcer),
        fmt_rate(v.acer),
        fmt_rate(v.eer),
        v.roc_auc.map_or("n/a".to_owned(), |x| format!("{x:.4}")),
        v.threshold,
        v.confusion
    )
}

fn append_record(out: &Path, record: &EpochRecord) -> Result<()> {
    let path = out.join("metrics.jsonl");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    writeln!(f, "{}", serde_json::to_string(record)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The records of a run's `metrics.jsonl`.
pub fn read_records(out: &Path) -> Result<Vec<EpochRecord>> {
    let path = out.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(k, l)| {
            serde_json::from_str(l).with_context(|| format!("{} line {}", path.display(), k + 1))
        })
        .collect()
}

/// On resume, drops records of epochs after the checkpoint (written before a crash).
fn keep_records_up_to(out: &Path, epoch: usize) -> Result<()> {
    let path = out.join("metrics.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|l| serde_json::from_str::<EpochRecord>(l).is_ok_and(|r| r.epoch <= epoch))
        .map(|l| format!("{l}\n"))
        .collect();
    checkpoint::write_atomic(&path, kept.as_bytes())
}

/// The recipe's defaults.
impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 5,
            batch_size: 64,
            val_batch_size: 32,
            lr: 1e-3,
            schedule: Schedule::Constant,
            optimizer: OptimizerConfig {
                kind: OptimizerKind::Sgd,
                weight_decay: 1e-7,
                momentum: 0.0,
            },
            input_size: liveness_core::DEFAULT_INPUT_SIZE,
            flip: true,
            seed: 0,
            val_fraction: 0.3,
            val_subjects: None,
            train_only: None,
            train_on_all: false,
            val_only: None,
            subject_pattern: SubjectRule::DEFAULT.to_owned(),
            threshold: 0.5,
            precision: Precision::Fp32,
            normalization: Normalization::IMAGENET,
            augment: Augment::default(),
        }
    }
}
