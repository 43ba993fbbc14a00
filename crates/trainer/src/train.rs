//! The training loop: epochs of shuffled batches, validation over the whole validation set after
//! each, records and checkpoints (through [`crate::run_dir`]), resume, and a clean stop on Ctrl+C.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use liveness_core::{AttackClass, Crop, Report, evaluate};
use tch::{Device, Kind, Tensor};

use crate::arch::{ArchError, Model};
use crate::augment::seed_step;
use crate::checkpoint::{self, CheckpointError, Meta};
use crate::config::{Precision, RunArgs, Schedule, TrainConfig};
use crate::dataset::{DataError, SubjectRule, scan};
use crate::input::{normalize, per_view, to_unit};
use crate::loader::{
    Flip, FrameStore, LoaderError, epoch_order, join, report_refused, stream, worker_pool,
};
use crate::optim::{OptimError, Optimizer};
use crate::report::report_lines;
use crate::resume::{GivenFlag, check_resume, data_print};
use crate::run_dir::{EpochRecord, RunDir, RunDirError, json_bytes, write_atomic};
use crate::scoring::{self, ScoreError};
use crate::shown;
use crate::split::{Split, SplitError, SplitRule, describe, keep_matching, split};

/// What stops a training run. Every message names the flag, file or step at fault.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A flag out of range.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// `--precision fp16` on the CPU.
    #[error("--precision fp16 needs a CUDA device; use fp32 on the CPU")]
    PrecisionNeedsCuda,
    /// The dataset is not usable.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The split is not possible.
    #[error(transparent)]
    Split(#[from] SplitError),
    /// The loader failed.
    #[error(transparent)]
    Loader(#[from] LoaderError),
    /// A checkpoint could not be read or written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// `--resume` with settings or data that differ from the checkpoint's.
    #[error(transparent)]
    ResumeMismatch(#[from] crate::resume::ResumeMismatch),
    /// The checkpoint to resume from cannot be loaded.
    #[error("--resume: cannot resume from {}: {source}", shown(path))]
    Resume {
        path: std::path::PathBuf,
        #[source]
        source: CheckpointError,
    },
    /// The optimiser's saved state does not fit.
    #[error(transparent)]
    Optim(#[from] OptimError),
    /// Pretrained weights could not be loaded.
    #[error(transparent)]
    Arch(#[from] ArchError),
    /// A run-folder file could not be written or read.
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    /// Validation failed.
    #[error(transparent)]
    Score(#[from] ScoreError),
    /// A plot could not be drawn.
    #[error(transparent)]
    Plot(#[from] crate::plots::PlotError),
    /// The loss became NaN or infinite.
    #[error("training diverged at epoch {epoch}, step {step}: loss is {loss}; lower --lr")]
    Diverged {
        epoch: usize,
        step: usize,
        loss: f64,
    },
    /// libtorch failed.
    #[error("libtorch: {0}")]
    Tch(#[from] tch::TchError),
    /// Ctrl+C could not be watched.
    #[error("cannot install the Ctrl+C handler: {0}")]
    Interrupt(#[from] ctrlc::Error),
}

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum RunEnd {
    /// All epochs done.
    Finished,
    /// Stopped early (Ctrl+C or `--stop-after-steps`); `last` holds the state.
    Interrupted,
}

/// One optimisation step: forward in training mode (f16 autocast if asked), BCE-with-logits
/// against `labels`, backward, update. Returns the loss.
pub fn train_step(
    model: &Model,
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
pub fn interrupt_flag() -> Result<Arc<AtomicBool>, TrainError> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    ctrlc::set_handler(move || f.store(true, Ordering::SeqCst))?;
    Ok(flag)
}

fn lr_at(config: &TrainConfig, step: usize, total: usize) -> f64 {
    match config.lr_schedule {
        Schedule::Constant => config.lr,
        Schedule::Cosine => {
            let t = step as f64 / total.max(1) as f64;
            config.lr * 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
        }
    }
}

/// Trains. On resume, `config` must agree with the checkpoint's on every flag in `given`
/// (except `--epochs`, which may extend the run): `prepare`, then per epoch `Training::epoch`
/// and `Training::validate`.
pub fn run(
    config: TrainConfig,
    opts: &RunArgs,
    given: &[GivenFlag],
    interrupted: &AtomicBool,
) -> Result<RunEnd, TrainError> {
    let prepared = prepare(config, opts, given)?;
    let mut training = Training::start(&prepared, opts)?;
    for epoch in training.epoch_done + 1..=prepared.config.epochs {
        // Ctrl+C while reading frames or validating: the last checkpoint is already current.
        if interrupted.load(Ordering::SeqCst) {
            println!(
                "stopped before epoch {epoch}; {} is current",
                shown(&prepared.dir.last())
            );
            return Ok(RunEnd::Interrupted);
        }
        let started = Instant::now();
        match training.epoch(&prepared, opts, epoch, interrupted)? {
            EpochEnd::Interrupted => return Ok(RunEnd::Interrupted),
            EpochEnd::Trained(stats) => training.validate(&prepared, epoch, stats, started)?,
        }
    }
    Ok(RunEnd::Finished)
}

/// What a run trains on, settled before its first step: the configuration (the checkpoint's on
/// resume), the data with its split and the face gate applied, and the run folder.
struct Prepared {
    config: TrainConfig,
    resumed: Option<checkpoint::Checkpoint>,
    dir: RunDir,
    store: Arc<FrameStore>,
    split: Split,
    pool: Arc<rayon::ThreadPool>,
    print: checkpoint::DataPrint,
    device: Device,
}

/// Resolves the configuration, reads and splits the data, applies the face gate (reading every
/// frame first, so a bad file stops the run at once) and creates the run folder.
fn prepare(
    mut config: TrainConfig,
    opts: &RunArgs,
    given: &[GivenFlag],
) -> Result<Prepared, TrainError> {
    let dir = RunDir::new(&opts.out);
    let device = opts.common.device;
    // A fresh run must not overwrite another run's checkpoints and records.
    if !opts.resume && dir.holds_run() {
        return Err(RunDirError::Occupied(opts.out.clone()).into());
    }
    let resumed = if opts.resume {
        let path = dir.last();
        let ckpt = checkpoint::load(&path).map_err(|source| TrainError::Resume { path, source })?;
        let epochs = config.epochs;
        let given_config = config;
        config = ckpt.meta.config.clone();
        config.epochs = epochs;
        Some((ckpt, given_config))
    } else {
        None
    };
    config.validate()?;
    if config.precision != Precision::Fp32 && device == Device::Cpu {
        return Err(TrainError::PrecisionNeedsCuda);
    }

    let rule = SubjectRule::new(&config.subject_pattern)?;
    let samples = scan(&opts.data, &rule)?;
    let print = data_print(&opts.data, &samples);
    if let Some((ckpt, given_config)) = &resumed {
        check_resume(given_config, given, &ckpt.meta, &print)?;
    }
    let split_rule = match &config.val_subjects {
        Some(names) => SplitRule::Subjects(names.iter().map(|n| n.trim().to_owned()).collect()),
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
        shown(&opts.data),
        samples.len(),
        describe(&samples, &split)
    );

    let pool = worker_pool(opts.common.workers)?;
    let detector = config
        .crops()
        .iter()
        .any(Crop::needs_face)
        .then(|| liveness_runtime::FaceDetector::new(liveness_core::face::MIN_SCORE))
        .transpose()
        .map_err(|e| {
            TrainError::Data(DataError::Detector {
                path: opts.data.clone(),
                message: e.to_string(),
            })
        })?;
    let store = Arc::new(FrameStore::with_crops(
        samples,
        config.input_size,
        !opts.common.no_cache,
        config.crops(),
        detector,
    ));
    // Reads every frame (or header) before training, so a bad file stops the run at once.
    check_all(&store, &pool)?;
    let refused = store.refused(&pool)?;
    report_refused(&store, &refused);
    let refused_set: BTreeSet<usize> = refused.iter().map(|(i, _)| *i).collect();
    split.train.retain(|i| !refused_set.contains(i));
    if split.train.is_empty() {
        return Err(SplitError::Empty("training, after the face gate".into()).into());
    }

    dir.create()?;
    if resumed.is_none() {
        write_atomic(&dir.split(), &json_bytes("the split", &split)?)?;
    }
    Ok(Prepared {
        config,
        resumed: resumed.map(|(ckpt, _)| ckpt),
        dir,
        store,
        split,
        pool,
        print,
        device,
    })
}

/// How an epoch's training steps ended.
enum EpochEnd {
    /// Every step done: the epoch's loss and last learning rate, for validation.
    Trained(EpochStats),
    /// Stopped part-way (Ctrl+C, `--stop-after-steps`); `last` was saved.
    Interrupted,
}

/// An epoch's training figures.
struct EpochStats {
    loss_sum: f64,
    loss_n: usize,
    lr: f64,
}

/// The model, its optimiser and where the run stands.
struct Training {
    model: Model,
    optim: Optimizer,
    /// The last epoch finished (and validated).
    epoch_done: usize,
    /// Steps of the next epoch already done (resuming part-way).
    skip_steps: usize,
    last_report: Option<Report>,
    /// Loss sum and step count of an epoch interrupted part-way, so its record stays whole.
    partial_loss: Option<(f64, usize)>,
    /// The classes trained on, recorded in checkpoints.
    classes: Vec<AttackClass>,
    steps_per_epoch: usize,
    total_steps: usize,
    steps_this_run: usize,
}

impl Training {
    /// A fresh model (or the checkpoint's, on resume) and its optimiser.
    fn start(p: &Prepared, opts: &RunArgs) -> Result<Self, TrainError> {
        let config = &p.config;
        tch::manual_seed(config.seed as i64);
        let mut model = Model::new(config.arch, p.device);
        let mut optim = Optimizer::new(config.optimizer, model.vs.variables());
        let (mut epoch_done, mut skip_steps, mut last_report) = (0, 0, None);
        let mut partial_loss: Option<(f64, usize)> = None;
        match &p.resumed {
            Some(ckpt) => {
                ckpt.apply_to(&model, &p.dir.last())?;
                optim.load_state(&ckpt.optim, ckpt.meta.optimizer_step)?;
                epoch_done = ckpt.meta.epoch;
                skip_steps = ckpt.meta.step_in_epoch;
                last_report = ckpt.meta.validation.clone();
                partial_loss = Some(ckpt.meta.epoch_loss);
                p.dir.keep_records_up_to(epoch_done)?;
                println!(
                    "resumed from {} at epoch {epoch_done}, step {skip_steps}",
                    shown(&p.dir.last())
                );
            }
            None => {
                if let Some(w) = &opts.init_weights {
                    model.init_encoder(w)?;
                    println!("encoder initialised from {}", shown(w));
                }
            }
        }
        let classes: Vec<AttackClass> = p
            .split
            .train
            .iter()
            .map(|&i| p.store.samples()[i].class)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let steps_per_epoch = p.split.train.len().div_ceil(config.batch_size);
        Ok(Training {
            model,
            optim,
            epoch_done,
            skip_steps,
            last_report,
            partial_loss,
            classes,
            steps_per_epoch,
            total_steps: steps_per_epoch * config.epochs,
            steps_this_run: 0,
        })
    }

    /// Writes a checkpoint of where the run stands to every path of `paths` (atomically).
    fn save(
        &self,
        p: &Prepared,
        epoch: usize,
        step_in_epoch: usize,
        epoch_loss: (f64, usize),
        report: Option<Report>,
        paths: &[std::path::PathBuf],
    ) -> Result<(), TrainError> {
        let meta = Meta {
            epoch,
            step_in_epoch,
            epoch_loss,
            optimizer_step: self.optim.step,
            classes: self.classes.clone(),
            validation: report,
            data: Some(p.print.clone()),
            ..Meta::for_config(&p.config)
        };
        let bytes = checkpoint::encode(&meta, &self.model, &self.optim.state())?;
        for path in paths {
            write_atomic(path, &bytes)?;
        }
        Ok(())
    }

    /// The training steps of `epoch` (those not done yet, on resume), with a progress bar;
    /// Ctrl+C or `--stop-after-steps` saves `last` and stops.
    fn epoch(
        &mut self,
        p: &Prepared,
        opts: &RunArgs,
        epoch: usize,
        interrupted: &AtomicBool,
    ) -> Result<EpochEnd, TrainError> {
        let config = &p.config;
        let order = epoch_order(&p.split.train, config.seed, epoch);
        let skip = self.skip_steps * config.batch_size;
        let flip = config.flip.then_some(Flip {
            seed: config.seed,
            epoch,
        });
        let (batches, producer) = stream(
            p.store.clone(),
            order[skip.min(order.len())..].to_vec(),
            config.batch_size,
            flip,
            opts.prefetch,
            p.pool.clone(),
        );
        let bar =
            ProgressBar::new(self.steps_per_epoch as u64).with_position(self.skip_steps as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}<{eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(format!("{epoch}/{}", config.epochs));
        let mut recent: VecDeque<f64> = VecDeque::with_capacity(10);
        let (mut loss_sum, mut loss_n) = self.partial_loss.take().unwrap_or((0.0, 0));
        let mut step_in_epoch = self.skip_steps;
        let step_lr = |step_in_epoch: usize| {
            lr_at(
                config,
                (epoch - 1) * self.steps_per_epoch + step_in_epoch,
                self.total_steps,
            )
        };
        let mut lr = step_lr(step_in_epoch);
        for batch in batches {
            let batch = batch?;
            lr = step_lr(step_in_epoch);
            let mut unit = to_unit(
                &batch.pixels,
                batch.len(),
                config.input_size,
                p.store.views(),
                p.device,
            );
            if config.augment.is_on() {
                seed_step(config.seed, epoch, step_in_epoch);
                unit = per_view(&unit, |x| config.augment.apply(x));
            }
            let input = normalize(&unit, &config.normalization);
            let labels = Tensor::from_slice(&batch.labels).to_device(p.device);
            let loss = train_step(
                &self.model,
                &mut self.optim,
                &input,
                &labels,
                config.precision,
                lr,
            );
            let value = f64::try_from(&loss)?;
            if !value.is_finite() {
                return Err(TrainError::Diverged {
                    epoch,
                    step: step_in_epoch + 1,
                    loss: value,
                });
            }
            step_in_epoch += 1;
            self.steps_this_run += 1;
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
            let stop_now = opts
                .stop_after_steps
                .is_some_and(|n| self.steps_this_run >= n);
            if interrupted.load(Ordering::SeqCst) || stop_now {
                bar.abandon();
                drop(producer);
                // Resuming skips the steps done; with all of them done it goes straight to validation.
                self.save(
                    p,
                    epoch - 1,
                    step_in_epoch,
                    (loss_sum, loss_n),
                    self.last_report.clone(),
                    &[p.dir.last()],
                )?;
                println!(
                    "stopped at epoch {epoch}, step {step_in_epoch}: saved {}",
                    shown(&p.dir.last())
                );
                return Ok(EpochEnd::Interrupted);
            }
        }
        bar.finish_and_clear();
        join(producer)?;
        if step_in_epoch < self.steps_per_epoch {
            return Err(LoaderError::ThreadDied.into());
        }
        self.skip_steps = 0;
        Ok(EpochEnd::Trained(EpochStats {
            loss_sum,
            loss_n,
            lr,
        }))
    }

    /// Scores the validation samples after `epoch`, records the epoch (record, scores, plot)
    /// and saves its checkpoint and `last`.
    fn validate(
        &mut self,
        p: &Prepared,
        epoch: usize,
        stats: EpochStats,
        started: Instant,
    ) -> Result<(), TrainError> {
        let config = &p.config;
        let scores = scoring::score(
            &self.model,
            &p.store,
            &p.split.val,
            config.val_batch_size,
            &config.normalization,
            p.pool.clone(),
            p.device,
        )?;
        let report = evaluate(&scores.scored(&p.store), config.threshold);
        let record = EpochRecord {
            epoch,
            train_loss: (stats.loss_n > 0).then(|| stats.loss_sum / stats.loss_n as f64),
            val_loss: Some(scores.loss(&p.store)).filter(|l| l.is_finite()),
            lr: stats.lr,
            seconds: started.elapsed().as_secs_f64(),
            validation: report.clone(),
        };
        print_epoch(&record);
        // The latest epoch's validation scores, for fold reports (overwritten each epoch).
        let lines: String = scores
            .lines(&p.store)
            .iter()
            .filter_map(|l| serde_json::to_string(l).ok().map(|j| j + "\n"))
            .collect();
        write_atomic(&p.dir.val_scores(), lines.as_bytes())?;
        self.save(
            p,
            epoch,
            0,
            (0.0, 0),
            Some(report.clone()),
            &[p.dir.epoch(epoch), p.dir.last()],
        )?;
        p.dir.append_record(&record)?;
        crate::plots::training_curves(&p.dir.records()?, "training", &p.dir.training_png())?;
        self.last_report = Some(report);
        Ok(())
    }
}

/// Reads every image header (or, with the cache on, decodes every frame) before training, so a
/// bad file stops the run at once with its path.
fn check_all(store: &FrameStore, pool: &rayon::ThreadPool) -> Result<(), DataError> {
    use rayon::prelude::*;
    if store.is_cached() {
        // `refused` decodes (and caches) every sample.
        return Ok(());
    }
    pool.install(|| {
        store
            .samples()
            .par_iter()
            .try_for_each(|s| crate::dataset::check_frames(s).map(|_| ()))
    })
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
