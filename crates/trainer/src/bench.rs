//! `bench`: training-step throughput in frames per second, on synthetic tensors or fed by the
//! real data loader from a folder. Prints one JSON line.

use std::sync::Arc;
use std::time::Instant;

use liveness_core::{Arch, FRAMES};
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::arch::Model;
use crate::config::{Common, ConfigError, Precision, TrainConfig};
use crate::dataset::{DataError, SubjectRule, scan};
use crate::input::to_input;
use crate::loader::{Flip, FrameStore, LoaderError, epoch_order, join, stream, worker_pool};
use crate::optim::Optimizer;
use crate::train::train_step;

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A flag out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `--steps 0`.
    #[error("--steps must be at least 1")]
    Steps,
    /// `--precision fp16` on the CPU.
    #[error("--precision fp16 needs a CUDA device")]
    PrecisionNeedsCuda,
    /// The data folder cannot be used.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The loader failed.
    #[error(transparent)]
    Loader(#[from] LoaderError),
    /// libtorch failed.
    #[error("libtorch: {0}")]
    Tch(#[from] tch::TchError),
}

/// What to measure: the training step of a configuration (its defaults are `train`'s).
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Model architecture.
    #[arg(long, default_value_t = TrainConfig::default().arch, value_parser = |s: &str| s.parse::<Arch>().map_err(|e| e.to_string()))]
    pub arch: Arch,
    /// Samples per step (each 5 frames).
    #[arg(long, default_value_t = TrainConfig::default().batch_size)]
    pub batch_size: usize,
    /// Input side.
    #[arg(long, default_value_t = TrainConfig::default().input_size)]
    pub input_size: u32,
    /// Precision.
    #[arg(long, value_enum, default_value_t = TrainConfig::default().precision)]
    pub precision: Precision,
    /// Timed steps.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Feed training through the data loader from this folder instead of synthetic tensors.
    #[arg(long)]
    pub data: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

/// The printed figures.
#[derive(Debug, Serialize)]
pub struct BenchResult {
    /// `synthetic` or `loader`.
    pub mode: &'static str,
    /// Architecture.
    pub arch: Arch,
    /// Device used.
    pub device: String,
    /// Samples per step.
    pub batch_size: usize,
    /// Frames per step.
    pub frames_per_step: usize,
    /// Input side.
    pub input_size: u32,
    /// Precision.
    pub precision: Precision,
    /// Timed steps.
    pub steps: usize,
    /// Median step time, milliseconds.
    pub median_step_ms: f64,
    /// Training throughput over the timed steps (frames / total seconds).
    pub frames_per_s: f64,
    /// Loader alone (no training), frames / s, with the cache warm; loader mode only.
    pub loader_frames_per_s: Option<f64>,
}

fn sync(device: Device) {
    if let Device::Cuda(n) = device {
        tch::Cuda::synchronize(n as i64);
    }
}

/// Runs the benchmark.
pub fn run(opts: &BenchArgs) -> Result<BenchResult, BenchError> {
    let config = TrainConfig {
        arch: opts.arch,
        batch_size: opts.batch_size,
        input_size: opts.input_size,
        precision: opts.precision,
        ..TrainConfig::default()
    };
    config.validate()?;
    if opts.steps == 0 {
        return Err(BenchError::Steps);
    }
    let device = opts.common.device;
    if opts.precision != Precision::Fp32 && device == Device::Cpu {
        return Err(BenchError::PrecisionNeedsCuda);
    }
    tch::manual_seed(0);
    let model = Model::new(opts.arch, device);
    let mut optim = Optimizer::new(config.optimizer, model.vs.variables());
    let norm = config.normalization;
    let n = opts.batch_size;
    let s = i64::from(opts.input_size);
    let total = opts.warmup + opts.steps;
    let labels =
        Tensor::from_slice(&(0..n).map(|i| (i % 2) as f32).collect::<Vec<_>>()).to_device(device);
    let mut step = |input: &Tensor| -> f64 {
        let t0 = Instant::now();
        let labels = labels.narrow(0, 0, input.size()[0]);
        let _loss = train_step(
            &model,
            &mut optim,
            input,
            &labels,
            opts.precision,
            config.lr,
        );
        sync(device);
        t0.elapsed().as_secs_f64()
    };
    let mut times = Vec::new();
    let (mode, loader_fps, wall);
    match &opts.data {
        None => {
            mode = "synthetic";
            loader_fps = None;
            let c = 3 * opts.arch.views() as i64;
            let input = Tensor::randn([n as i64, FRAMES as i64, c, s, s], (Kind::Float, device));
            for k in 0..total {
                if k == opts.warmup {
                    times.clear();
                }
                times.push(step(&input));
            }
            wall = times.iter().sum::<f64>();
        }
        Some(dir) => {
            mode = "loader";
            let samples = scan(dir, &SubjectRule::default())?;
            let pool = worker_pool(opts.common.workers)?;
            // Centre squares, one per view the architecture takes: the loader's cost without
            // the face detector.
            let store = Arc::new(FrameStore::with_crops(
                samples,
                opts.input_size,
                !opts.common.no_cache,
                vec![liveness_core::Crop::CentreSquare; opts.arch.views()],
                None,
            ));
            let all: Vec<usize> = (0..store.samples().len()).collect();
            // Enough epochs of the folder to cover warmup + steps.
            let order: Vec<usize> = (1..)
                .flat_map(|e| epoch_order(&all, 0, e))
                .take(total * n)
                .collect();
            // Decodes every sample once (and fills the cache, when on).
            store.refused(&pool)?;
            // Loader alone.
            let t0 = Instant::now();
            let (rx, h) = stream(
                store.clone(),
                order.clone(),
                n,
                Some(Flip { seed: 0, epoch: 1 }),
                4,
                pool.clone(),
            );
            let mut frames = 0usize;
            for b in rx {
                frames += b?.len() * FRAMES;
            }
            join(h)?;
            loader_fps = Some(frames as f64 / t0.elapsed().as_secs_f64());
            // Loader feeding training: the time per step includes waiting for data.
            let (rx, h) = stream(
                store.clone(),
                order,
                n,
                Some(Flip { seed: 0, epoch: 1 }),
                4,
                pool,
            );
            let mut t_start = Instant::now();
            for (k, b) in rx.into_iter().enumerate() {
                let b = b?;
                let input = to_input(
                    &b.pixels,
                    b.len(),
                    opts.input_size,
                    store.views(),
                    &norm,
                    device,
                );
                let t_wait = t_start.elapsed().as_secs_f64();
                let t_step = step(&input);
                if k >= opts.warmup {
                    times.push(t_wait + t_step);
                }
                t_start = Instant::now();
            }
            join(h)?;
            wall = times.iter().sum::<f64>();
        }
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
    Ok(BenchResult {
        mode,
        arch: opts.arch,
        device: format!("{device:?}"),
        batch_size: n,
        frames_per_step: n * FRAMES,
        input_size: opts.input_size,
        precision: opts.precision,
        steps: times.len(),
        median_step_ms: median * 1e3,
        frames_per_s: (times.len() * n * FRAMES) as f64 / wall,
        loader_frames_per_s: loader_fps,
    })
}
