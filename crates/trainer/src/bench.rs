//! `bench`: training-step throughput in frames per second, on synthetic tensors or fed by the
//! real data loader from a folder. Prints one JSON line.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, bail};
use liveness_core::{FRAMES, Normalization};
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::dataset::{SubjectRule, scan};
use crate::loader::{Flip, FrameStore, epoch_order, stream, worker_pool};
use crate::model::{SpoofModel, to_input};
use crate::optim::{Optimizer, OptimizerConfig, OptimizerKind};
use crate::train::{Precision, train_step};

/// What to measure.
pub struct BenchOptions {
    /// Samples per step.
    pub batch_size: usize,
    /// Input side.
    pub input_size: u32,
    /// Training precision.
    pub precision: Precision,
    /// Timed steps.
    pub steps: usize,
    /// Untimed steps first.
    pub warmup: usize,
    /// Device.
    pub device: Device,
    /// Data folder for the loader run (synthetic tensors if `None`).
    pub data: Option<std::path::PathBuf>,
    /// Loader threads (0 = one per core).
    pub workers: usize,
    /// Keep decoded frames in memory.
    pub cache: bool,
}

/// The printed figures.
#[derive(Debug, Serialize)]
pub struct BenchResult {
    /// `synthetic` or `loader`.
    pub mode: &'static str,
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
pub fn run(opts: &BenchOptions) -> Result<BenchResult> {
    if opts.steps == 0 || opts.batch_size == 0 {
        bail!("--steps and --batch-size must be at least 1");
    }
    if opts.precision != Precision::Fp32 && opts.device == Device::Cpu {
        bail!("--precision {:?} needs a CUDA device", opts.precision);
    }
    tch::manual_seed(0);
    let model = SpoofModel::new(opts.device);
    let mut optim = Optimizer::new(
        OptimizerConfig {
            kind: OptimizerKind::Sgd,
            weight_decay: 1e-7,
            momentum: 0.0,
        },
        model.vs.variables(),
    );
    let norm = Normalization::IMAGENET;
    let n = opts.batch_size;
    let s = i64::from(opts.input_size);
    let total = opts.warmup + opts.steps;
    let labels = Tensor::from_slice(&(0..n).map(|i| (i % 2) as f32).collect::<Vec<_>>())
        .to_device(opts.device);
    let mut step = |input: &Tensor| -> Result<f64> {
        let t0 = Instant::now();
        let labels = labels.narrow(0, 0, input.size()[0]);
        let _loss = train_step(&model, &mut optim, input, &labels, opts.precision, 1e-3);
        sync(opts.device);
        Ok(t0.elapsed().as_secs_f64())
    };
    let mut times = Vec::new();
    let (mode, loader_fps, wall);
    match &opts.data {
        None => {
            mode = "synthetic";
            loader_fps = None;
            let input = Tensor::randn(
                [n as i64, FRAMES as i64, 3, s, s],
                (Kind::Float, opts.device),
            );
            for k in 0..total {
                if k == opts.warmup {
                    times.clear();
                }
                times.push(step(&input)?);
            }
            wall = times.iter().sum::<f64>();
        }
        Some(dir) => {
            mode = "loader";
            let samples = scan(dir, &SubjectRule::default())?;
            let pool = worker_pool(opts.workers)?;
            let store = Arc::new(FrameStore::new(samples, opts.input_size, opts.cache));
            let all: Vec<usize> = (0..store.samples().len()).collect();
            // Enough epochs of the folder to cover warmup + steps.
            let order: Vec<usize> = (1..)
                .flat_map(|e| epoch_order(&all, 0, e))
                .take(total * n)
                .collect();
            if opts.cache {
                store.warm(&pool, &indicatif::ProgressBar::hidden())?;
            }
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
            let _ = h.join();
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
                let input = to_input(&b.pixels, b.len(), opts.input_size, &norm, opts.device);
                let t_wait = t_start.elapsed().as_secs_f64();
                let t_step = step(&input)?;
                if k >= opts.warmup {
                    times.push(t_wait + t_step);
                }
                t_start = Instant::now();
            }
            let _ = h.join();
            wall = times.iter().sum::<f64>();
        }
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
    Ok(BenchResult {
        mode,
        device: format!("{:?}", opts.device),
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
