//! What determines a training run's result ([`TrainConfig`], saved in every checkpoint and
//! reused on resume) and how to run it ([`RunArgs`], which does not change the result). Both are
//! the CLI's flags: every default is written here once, and `train`, `bench` and `--help` read it.

use std::path::PathBuf;

use clap::{Args, Parser, ValueEnum};
use liveness_core::limits::{self, INPUT_SIZE};
use liveness_core::{Arch, Crop, Fit, Normalization};
use serde::{Deserialize, Serialize};
use tch::Device;

use crate::augment::Augment;
use crate::dataset::SubjectRule;
use crate::optim::OptimizerConfig;

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

/// Which region of a frame the model sees (`--crop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CropKind {
    /// The centre square.
    Centre,
    /// A square around the detected face, `--face-scale` times its box.
    Face,
    /// The whole frame, fitted to the square input by `--fit`.
    Whole,
}

/// How `--crop whole` fits the frame into the square input (`--fit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum FitKind {
    /// Resized to the square, aspect not kept.
    #[default]
    Squash,
    /// Aspect kept, black bars.
    Letterbox,
}

/// Everything that determines a run's result; saved in every checkpoint and reused on resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Args)]
pub struct TrainConfig {
    /// Model architecture.
    #[arg(long, default_value = "resnet18", value_parser = parse_arch)]
    pub arch: Arch,
    /// Epochs in total.
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    /// Training samples per step (each 5 frames).
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Validation samples per forward pass.
    #[arg(long, default_value_t = 32)]
    pub val_batch_size: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Learning-rate schedule.
    #[arg(long, value_enum, default_value_t = Schedule::Constant)]
    pub lr_schedule: Schedule,
    #[command(flatten)]
    pub optimizer: OptimizerConfig,
    /// Input side in pixels (the crop is resized to it).
    #[arg(long, default_value_t = liveness_core::DEFAULT_INPUT_SIZE)]
    pub input_size: u32,
    /// Which region of each frame the model sees.
    #[arg(long = "crop", value_enum, default_value_t = CropKind::Centre)]
    pub frame_crop: CropKind,
    /// With --crop face: the square's side over the face box's longer side.
    #[arg(long, default_value_t = 1.5)]
    pub face_scale: f32,
    /// With --crop whole: squash the frame to a square, or letterbox it.
    #[arg(long, value_enum, default_value_t = FitKind::Squash)]
    #[serde(default)]
    pub fit: FitKind,
    /// For a multi-view architecture (cnn4x3): each view's crop, comma-separated, from `whole`,
    /// `whole-letterbox`, `centre`, `face:SCALE` (default: the architecture's, for cnn4x3
    /// whole,face:1.5,face:2.7). Replaces --crop.
    #[arg(long, value_delimiter = ',', value_parser = parse_view)]
    #[serde(default)]
    pub views: Vec<Crop>,
    /// Random horizontal flip of training samples (off with --no-flip).
    #[arg(long = "no-flip", action = clap::ArgAction::SetFalse)]
    pub flip: bool,
    /// Seed of initialisation, split, shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Share of each class for validation (chosen by subject).
    #[arg(long, default_value_t = 0.3)]
    pub val_fraction: f64,
    /// Validation subjects by name, comma-separated (overrides --val-fraction).
    #[arg(long, value_delimiter = ',')]
    pub val_subjects: Option<Vec<String>>,
    /// Train only on samples whose folder name matches this regular expression.
    #[arg(long)]
    pub train_only: Option<String>,
    /// Validate only on samples whose folder name matches this regular expression
    /// (e.g. --train-only '_01_[0-9]+$' --val-only '_02_[0-9]+$' for a cross-session check).
    #[arg(long)]
    pub val_only: Option<String>,
    /// Train on every sample, the validation subjects' too (a final model measured by folds);
    /// its validation is then only a sanity check on seen people.
    #[arg(long)]
    pub train_on_all: bool,
    /// Regular expression taking the subject from a sample name (first group, else whole match).
    #[arg(long, default_value = SubjectRule::DEFAULT)]
    pub subject_pattern: String,
    /// Decision threshold on p(spoof) for validation metrics.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
    /// Training precision (fp16 = autocast, CUDA only).
    #[arg(long, value_enum, default_value_t = Precision::Fp32)]
    pub precision: Precision,
    /// Pixel normalisation (ImageNet's; not a flag).
    #[arg(skip = Normalization::IMAGENET)]
    pub normalization: Normalization,
    #[command(flatten)]
    pub augment: Augment,
}

/// How to run: paths, resume, devices and threads. Does not change the result.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Dataset folder.
    #[arg(long)]
    pub data: PathBuf,
    /// Run folder for checkpoints (e1.safetensors…, last.safetensors), metrics.jsonl, split.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue from OUT/last.safetensors with its settings (only --epochs may change; other
    /// flags that differ from the checkpoint's are refused).
    #[arg(long)]
    pub resume: bool,
    /// torchvision resnet18 state_dict as safetensors, to initialise a resnet18 encoder.
    #[arg(long)]
    pub init_weights: Option<PathBuf>,
    /// Batches prepared ahead of the device.
    #[arg(long, default_value_t = 4)]
    pub prefetch: usize,
    /// Stop (saving last) after this many steps, as Ctrl+C would.
    #[arg(long)]
    pub stop_after_steps: Option<usize>,
    #[command(flatten)]
    pub common: Common,
}

/// Device and loader flags shared by the subcommands that read data.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Device: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto", value_parser = parse_device)]
    pub device: Device,
    /// Data-loading threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Do not keep resized frames in memory (saves RAM on large folders; eval and score read
    /// each sample once and never cache).
    #[arg(long)]
    pub no_cache: bool,
}

/// A flag's value outside what the trainer accepts.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{flag} {value} is not allowed: {allowed}")]
pub struct ConfigError {
    /// The flag at fault, e.g. `--lr`.
    pub flag: &'static str,
    /// Its value.
    pub value: String,
    /// What is allowed.
    pub allowed: String,
}

/// Only to parse the defaults: `TrainConfig` as a command of its own.
#[derive(Parser)]
struct DefaultsOnly {
    #[command(flatten)]
    config: TrainConfig,
}

impl Default for TrainConfig {
    /// The flags' defaults (the recipe's).
    fn default() -> Self {
        DefaultsOnly::parse_from(["train"]).config
    }
}

fn check<T: std::fmt::Display>(
    flag: &'static str,
    value: T,
    ok: bool,
    allowed: impl Into<String>,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError {
            flag,
            value: value.to_string(),
            allowed: allowed.into(),
        })
    }
}

impl TrainConfig {
    /// The crop rule the model is trained (and exported) with.
    pub fn crop(&self) -> Crop {
        match self.frame_crop {
            CropKind::Centre => Crop::CentreSquare,
            CropKind::Face => Crop::Face {
                scale: self.face_scale,
            },
            CropKind::Whole => Crop::Whole {
                fit: match self.fit {
                    FitKind::Squash => Fit::Squash,
                    FitKind::Letterbox => Fit::Letterbox,
                },
            },
        }
    }

    /// Every view's crop rule, in channel order: `--views`, else the architecture's default
    /// views, else the one `--crop`.
    pub fn crops(&self) -> Vec<Crop> {
        if !self.views.is_empty() {
            self.views.clone()
        } else {
            self.arch
                .default_views()
                .unwrap_or_else(|| vec![self.crop()])
        }
    }

    /// Checks every value against what training can use, naming the flag at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let min = self.arch.min_input_size().max(*INPUT_SIZE.start());
        check(
            "--input-size",
            self.input_size,
            (min..=*INPUT_SIZE.end()).contains(&self.input_size),
            format!("{min} to {} for {}", INPUT_SIZE.end(), self.arch),
        )?;
        check(
            "--epochs",
            self.epochs,
            (1..=100_000).contains(&self.epochs),
            "1 to 100000",
        )?;
        check(
            "--batch-size",
            self.batch_size,
            (1..=4096).contains(&self.batch_size),
            "1 to 4096",
        )?;
        check(
            "--val-batch-size",
            self.val_batch_size,
            (1..=4096).contains(&self.val_batch_size),
            "1 to 4096",
        )?;
        check(
            "--lr",
            self.lr,
            self.lr.is_finite() && self.lr > 0.0 && self.lr <= 10.0,
            "a finite rate in (0, 10]",
        )?;
        let wd = self.optimizer.weight_decay;
        check(
            "--weight-decay",
            wd,
            wd.is_finite() && (0.0..=1.0).contains(&wd),
            "0 to 1",
        )?;
        let m = self.optimizer.momentum;
        check(
            "--momentum",
            m,
            m.is_finite() && (0.0..1.0).contains(&m),
            "0 to below 1",
        )?;
        let f = self.val_fraction;
        check(
            "--val-fraction",
            f,
            f.is_finite() && f > 0.0 && f < 1.0,
            "strictly between 0 and 1",
        )?;
        check(
            "--threshold",
            self.threshold,
            limits::threshold_ok(self.threshold),
            "strictly between 0 and 1",
        )?;
        let s = self.face_scale;
        let (lo, hi) = (limits::FACE_SCALE.start(), limits::FACE_SCALE.end());
        check(
            "--face-scale",
            s,
            s.is_finite() && limits::FACE_SCALE.contains(&s),
            format!("{lo} to {hi}"),
        )?;
        let crops = self.crops();
        check(
            "--views",
            crops.len(),
            crops.len() == self.arch.views(),
            format!("{} view(s) for {}", self.arch.views(), self.arch),
        )?;
        if let Some(names) = &self.val_subjects {
            check(
                "--val-subjects",
                names.join(","),
                names.iter().all(|n| !n.trim().is_empty()) && !names.is_empty(),
                "one or more subject names, comma-separated",
            )?;
        }
        let a = &self.augment;
        for (flag, v, max) in [
            ("--aug-crop", a.crop, 0.95),
            ("--aug-color", a.color, 1.0),
            ("--aug-noise", a.noise, 1.0),
            ("--aug-blur", a.blur, 1.0),
            ("--aug-cutout", a.cutout, 1.0),
            ("--aug-gamma", a.gamma, 0.9),
            ("--aug-tint", a.tint, 0.9),
        ] {
            check(
                flag,
                v,
                v.is_finite() && (0.0..=max).contains(&v),
                format!("0 to {max}"),
            )?;
        }
        Ok(())
    }
}

/// One `--views` entry: `whole`, `whole-letterbox`, `centre` or `face:SCALE` (0.5 to 4).
fn parse_view(s: &str) -> Result<Crop, String> {
    match s {
        "whole" => Ok(Crop::Whole { fit: Fit::Squash }),
        "whole-letterbox" => Ok(Crop::Whole {
            fit: Fit::Letterbox,
        }),
        "centre" => Ok(Crop::CentreSquare),
        _ => s
            .strip_prefix("face:")
            .and_then(|v| v.parse::<f32>().ok())
            .filter(|v| v.is_finite() && (0.5..=4.0).contains(v))
            .map(|scale| Crop::Face { scale })
            .ok_or_else(|| {
                format!("{s:?}: use whole, whole-letterbox, centre or face:SCALE (0.5 to 4)")
            }),
    }
}

fn parse_arch(s: &str) -> Result<Arch, String> {
    s.parse::<Arch>().map_err(|e| e.to_string())
}

/// `--device auto|cpu|cuda|cuda:N`.
pub fn parse_device(spec: &str) -> Result<Device, String> {
    let device = match spec {
        "auto" => Device::cuda_if_available(),
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda(0),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => Device::Cuda(n),
            _ => return Err(format!("{other:?}: expected auto, cpu, cuda or cuda:N")),
        },
    };
    if let Device::Cuda(n) = device {
        let count = tch::Cuda::device_count();
        if n as i64 >= count {
            return Err(format!(
                "{spec}: CUDA device {n} is not available ({count} CUDA device(s) found)"
            ));
        }
    }
    Ok(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_recipe_and_valid() {
        let c = TrainConfig::default();
        assert_eq!((c.epochs, c.batch_size, c.val_batch_size), (5, 64, 32));
        assert_eq!(c.lr, 1e-3);
        assert_eq!(c.input_size, 224);
        assert!(c.flip);
        assert_eq!(c.arch, Arch::Resnet18);
        assert_eq!(c.crop(), Crop::CentreSquare);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn out_of_range_values_name_their_flag() {
        let bad = |edit: &dyn Fn(&mut TrainConfig)| {
            let mut c = TrainConfig::default();
            edit(&mut c);
            c.validate().expect_err("must be refused").flag
        };
        assert_eq!(bad(&|c| c.lr = 1e6), "--lr");
        assert_eq!(bad(&|c| c.lr = f64::NAN), "--lr");
        assert_eq!(bad(&|c| c.input_size = 0), "--input-size");
        assert_eq!(bad(&|c| c.input_size = 100_000), "--input-size");
        assert_eq!(bad(&|c| c.batch_size = 0), "--batch-size");
        assert_eq!(bad(&|c| c.threshold = 1.5), "--threshold");
        assert_eq!(bad(&|c| c.threshold = f32::NAN), "--threshold");
        assert_eq!(bad(&|c| c.val_fraction = 1.5), "--val-fraction");
        assert_eq!(bad(&|c| c.augment.noise = f64::INFINITY), "--aug-noise");
        assert_eq!(bad(&|c| c.face_scale = 0.0), "--face-scale");
        assert_eq!(bad(&|c| c.views = vec![Crop::CentreSquare; 2]), "--views");
        assert_eq!(
            bad(&|c| {
                c.arch = Arch::Cnn4x3;
                c.views = vec![Crop::CentreSquare];
            }),
            "--views"
        );
    }

    #[test]
    fn device_flag_is_checked() {
        assert!(matches!(parse_device("cpu"), Ok(Device::Cpu)));
        assert!(parse_device("gpu").is_err());
        assert!(parse_device("cuda:99").is_err());
    }
}
