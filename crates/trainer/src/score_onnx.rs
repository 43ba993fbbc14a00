//! `score-onnx` and `faces`: an exported model through `liveness-runtime` — the load, the engines
//! and the check the server and the browser run — on the CPU (tract) or on wonnx natively
//! (wgpu; Mesa's lavapipe on machines without a GPU: the browser's GPU engine outside the
//! browser, the tests' reference for what the widget computes).

use std::path::{Path, PathBuf};

use liveness_core::Frame;
use liveness_core::manifest::Manifest;
use liveness_runtime::{Backend, Model, VerifiedModel};

use crate::dataset::{DataError, Sample, SubjectRule, decode_frame, scan};
use crate::scoring::ScoreLine;
use crate::shown;

/// The `--backend` flag: which engine runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    /// tract on the CPU (pure Rust): the server's and the browser CPU engine's runtime.
    #[value(alias = "tract")]
    Cpu,
    /// wonnx on a native GPU through wgpu (Vulkan; lavapipe on machines without a GPU): the
    /// engine the browser uses on WebGPU.
    #[value(alias = "wonnx")]
    Webgpu,
}

impl From<BackendArg> for Backend {
    fn from(b: BackendArg) -> Backend {
        match b {
            BackendArg::Cpu => Backend::Cpu,
            BackendArg::Webgpu => Backend::WebGpu,
        }
    }
}

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The shared runtime refused a file, the model or the frames (the message names it).
    #[error(transparent)]
    Runtime(#[from] liveness_runtime::Error),
    /// The runtime refused a sample's frames.
    #[error("{}: {source}", shown(path))]
    Sample {
        path: PathBuf,
        #[source]
        source: Box<liveness_runtime::Error>,
    },
    /// A sample's frames could not be read.
    #[error(transparent)]
    Data(#[from] DataError),
}

/// `score-onnx`: like `score`, with an exported model and the shared runtime.
#[derive(Debug, clap::Args)]
pub struct ScoreOnnxArgs {
    /// Exported model (NAME.onnx).
    #[arg(long)]
    pub model: PathBuf,
    /// Its manifest (default: NAME.json next to the model).
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Dataset folder.
    #[arg(long)]
    pub data: PathBuf,
    /// Engine: cpu (tract) or webgpu (wonnx through wgpu/Vulkan, the browser's GPU engine).
    #[arg(long, alias = "engine", value_enum, default_value_t = BackendArg::Cpu)]
    pub backend: BackendArg,
}

/// A loaded, verified model ready to score samples.
pub struct OnnxModel {
    model: Model,
}

impl OnnxModel {
    /// Loads `model` and its manifest (`NAME.json` next to it unless given) through the
    /// runtime's one load (size, manifest, SHA-256) and prepares it on `backend`.
    pub fn load(
        model: &Path,
        manifest: Option<&Path>,
        backend: impl Into<Backend>,
    ) -> Result<Self, RuntimeError> {
        let verified = VerifiedModel::read(model, manifest)?;
        let model = Model::load_blocking(&verified, backend.into())?;
        Ok(OnnxModel { model })
    }

    /// The model's manifest.
    pub fn manifest(&self) -> &Manifest {
        self.model.manifest()
    }

    /// Logits of up to one batch of preprocessed input (`[k, 5, 3·views, S, S]` flattened).
    pub fn run(&self, input: Vec<f32>) -> Result<Vec<f32>, RuntimeError> {
        Ok(self.model.logits_blocking(input)?)
    }

    /// Scores one sample from its frame files: the face gate, the crop, the shared
    /// preprocessing, the model. A refused sample gets a line with its `error` (scored 1).
    pub fn score_sample(&self, sample: &Sample) -> Result<ScoreLine, RuntimeError> {
        let images = sample
            .frames
            .iter()
            .map(|p| decode_frame(p))
            .collect::<Result<Vec<_>, _>>()?;
        let frames: Vec<Frame<'_>> = images
            .iter()
            .map(|i| Frame::rgb(i.as_raw(), i.width(), i.height()))
            .collect();
        let checked =
            self.model
                .check_blocking(&frames)
                .map_err(|source| RuntimeError::Sample {
                    path: sample.path.clone(),
                    source: Box::new(source),
                })?;
        Ok(match checked.outcome {
            liveness_runtime::Outcome::Verdict(v) => ScoreLine::new(sample, v.logit),
            liveness_runtime::Outcome::Refused(r) => ScoreLine::refused(sample, &r),
        })
    }
}

/// Runs `score-onnx`: one line per sample of the folder, in order (printed as they come).
pub fn score_folder(
    a: &ScoreOnnxArgs,
    mut emit: impl FnMut(&ScoreLine),
) -> Result<(), RuntimeError> {
    let model = OnnxModel::load(&a.model, a.manifest.as_deref(), a.backend)?;
    for sample in scan(&a.data, &SubjectRule::default())? {
        emit(&model.score_sample(&sample)?);
    }
    Ok(())
}

/// `faces`: the face detector over a data folder, one JSON line per sample.
#[derive(Debug, clap::Args)]
pub struct FacesArgs {
    /// Dataset folder.
    #[arg(long)]
    pub data: PathBuf,
}

/// One line of `faces`: the faces found in each frame of a sample, in frame pixels.
#[derive(Debug, serde::Serialize)]
pub struct FacesLine {
    /// The sample's folder.
    pub path: String,
    /// Its class.
    pub class: liveness_core::AttackClass,
    /// Frame width and height.
    pub size: [u32; 2],
    /// Per frame, `[x, y, width, height, score]` of each face found.
    pub faces: Vec<Vec<[f32; 5]>>,
    /// The face gate's verdict on the sample (`no-face`, `multiple-faces`), if it refuses it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

/// Runs `faces`: the detector every runtime uses, on every frame of the folder.
pub fn faces_folder(a: &FacesArgs, mut emit: impl FnMut(&FacesLine)) -> Result<(), RuntimeError> {
    let detector = liveness_runtime::FaceDetector::new(liveness_core::face::MIN_SCORE)?;
    for sample in scan(&a.data, &SubjectRule::default())? {
        let mut found = Vec::new();
        let mut size = [0, 0];
        for (k, path) in sample.frames.iter().enumerate() {
            let image = decode_frame(path)?;
            size = [image.width(), image.height()];
            let frame = Frame::rgb(image.as_raw(), image.width(), image.height());
            found.push(
                detector
                    .detect(frame, k)
                    .map_err(|source| RuntimeError::Sample {
                        path: path.clone(),
                        source: Box::new(source),
                    })?,
            );
        }
        let error = liveness_core::face::gate(&found).err().map(|r| r.code());
        let faces = found
            .iter()
            .map(|fs| {
                fs.iter()
                    .map(|f| [f.x, f.y, f.width, f.height, f.score])
                    .collect()
            })
            .collect();
        emit(&FacesLine {
            path: shown(&sample.path),
            class: sample.class,
            size,
            faces,
            error,
        });
    }
    Ok(())
}
