//! `score-onnx`: an exported model on the CPU (tract, through `liveness-runtime`, which the
//! server and the browser's CPU engine run too) or natively on wonnx (wgpu; Mesa's lavapipe on
//! machines without a GPU — the browser's GPU runtime outside the browser, the tests' oracle),
//! with the face gate, crop and preprocessing every runtime shares.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use liveness_core::Frame;
use liveness_core::manifest::Manifest;
use liveness_core::model::{LOGIT, manifest_path, pad_to_batch};
use liveness_runtime::{Checker, TractModel};

use crate::dataset::{DataError, Sample, SubjectRule, decode_frame, scan, shown};
use crate::scoring::ScoreLine;

/// Which runtime executes the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// tract on the CPU (pure Rust): the server's and the browser CPU engine's runtime.
    Tract,
    /// wonnx on a native GPU through wgpu (Vulkan; lavapipe on machines without a GPU): the
    /// runtime the browser uses on WebGPU, so a reference for what the widget computes.
    Wonnx,
}

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A file could not be read.
    #[error("cannot read {what} {}: {source}", shown(path))]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The shared runtime refused the manifest, the model or the frames.
    #[error("{}: {source}", shown(path))]
    Runtime {
        path: PathBuf,
        #[source]
        source: liveness_runtime::Error,
    },
    /// wonnx failed (its panics included).
    #[error("{what}: wonnx failed: {message}")]
    Wonnx { what: String, message: String },
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
    /// Runtime: tract (CPU) or wonnx (GPU through wgpu/Vulkan, the browser's runtime).
    #[arg(long, value_enum, default_value_t = Engine::Tract)]
    pub engine: Engine,
}

enum Backend {
    Tract(TractModel),
    Wonnx(wonnx::Session),
}

/// A loaded, verified model ready to run, with its face gate.
pub struct OnnxModel {
    checker: Checker,
    backend: Backend,
    path: PathBuf,
}

/// Runs `f`, turning a panic (wonnx panics instead of returning errors, e.g. with no GPU adapter
/// or on a wgpu validation error) into an error.
fn no_panic<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, RuntimeError> {
    let wonnx = |message: String| RuntimeError::Wonnx {
        what: what.to_owned(),
        message,
    };
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result.map_err(wonnx),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            Err(wonnx(msg.to_owned()))
        }
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, RuntimeError> {
    // Refuse a file beyond the model limit before reading it whole.
    if let Ok(meta) = std::fs::metadata(path)
        && meta.len() > liveness_core::limits::MAX_MODEL_BYTES
    {
        return Err(RuntimeError::Runtime {
            path: path.to_owned(),
            source: liveness_runtime::Error::ModelTooLarge {
                source_name: shown(path),
                bytes: meta.len(),
                max: liveness_core::limits::MAX_MODEL_BYTES,
            },
        });
    }
    std::fs::read(path).map_err(|source| RuntimeError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

impl OnnxModel {
    /// Loads `model` and its manifest (`NAME.json` next to it unless given), refusing an invalid
    /// manifest, a file whose SHA-256 does not match, or a face gate this runtime does not carry,
    /// and prepares it on `engine`.
    pub fn load(
        model: &Path,
        manifest: Option<&Path>,
        engine: Engine,
    ) -> Result<Self, RuntimeError> {
        let manifest_file = manifest
            .map(Path::to_path_buf)
            .unwrap_or_else(|| manifest_path(model));
        let runtime = |path: &Path| {
            let path = path.to_owned();
            move |source| RuntimeError::Runtime { path, source }
        };
        let text = read("manifest", &manifest_file)?;
        let text = String::from_utf8_lossy(&text);
        let manifest = Manifest::parse(&text, &shown(&manifest_file))
            .map_err(|e| runtime(&manifest_file)(e.into()))?;
        let bytes = read("model", model)?;
        let checker = Checker::new(manifest.clone(), &shown(&manifest_file))
            .map_err(runtime(&manifest_file))?;
        let backend = match engine {
            Engine::Tract => Backend::Tract(
                TractModel::load(&bytes, manifest, &shown(model)).map_err(runtime(model))?,
            ),
            Engine::Wonnx => {
                manifest
                    .verify(&bytes)
                    .map_err(|e| runtime(model)(e.into()))?;
                Backend::Wonnx(no_panic(&format!("loading {}", shown(model)), || {
                    pollster::block_on(wonnx::Session::from_bytes(&bytes))
                        .map_err(|e| e.to_string())
                })?)
            }
        };
        Ok(OnnxModel {
            checker,
            backend,
            path: model.to_owned(),
        })
    }

    /// The model's manifest.
    pub fn manifest(&self) -> &Manifest {
        self.checker.manifest()
    }

    /// Logits of one full batch of preprocessed input (`[batch, 5, 3, S, S]` flattened).
    pub fn run(&self, input: Vec<f32>) -> Result<Vec<f32>, RuntimeError> {
        match &self.backend {
            Backend::Tract(model) => model.logits(input).map_err(|source| RuntimeError::Runtime {
                path: self.path.clone(),
                source,
            }),
            Backend::Wonnx(session) => {
                let input = pad_to_batch(input, self.manifest());
                no_panic("running the model", || {
                    let mut inputs = HashMap::new();
                    inputs.insert(self.manifest().input.name.clone(), input.as_slice().into());
                    let mut out =
                        pollster::block_on(session.run(&inputs)).map_err(|e| e.to_string())?;
                    let logit = out.remove(LOGIT).ok_or("the model has no logit output")?;
                    Vec::<f32>::try_from(logit).map_err(|e| e.to_string())
                })
            }
        }
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
        let prepared = match self.checker.prepare(&frames) {
            Ok(p) => p,
            Err(liveness_runtime::Error::Refused(r)) => return Ok(ScoreLine::refused(sample, &r)),
            Err(source) => {
                return Err(RuntimeError::Runtime {
                    path: sample.path.clone(),
                    source,
                });
            }
        };
        let logit = self
            .run(prepared.input)?
            .first()
            .copied()
            .unwrap_or(f32::NAN);
        Ok(ScoreLine::new(sample, logit))
    }
}

/// Runs `score-onnx`: one line per sample of the folder, in order (printed as they come).
pub fn score_folder(
    a: &ScoreOnnxArgs,
    mut emit: impl FnMut(&ScoreLine),
) -> Result<(), RuntimeError> {
    let model = OnnxModel::load(&a.model, a.manifest.as_deref(), a.engine)?;
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
    let detector =
        liveness_runtime::FaceDetector::new(liveness_core::face::MIN_SCORE).map_err(|source| {
            RuntimeError::Runtime {
                path: a.data.clone(),
                source,
            }
        })?;
    for sample in scan(&a.data, &SubjectRule::default())? {
        let mut faces = Vec::new();
        let mut size = [0, 0];
        for (k, path) in sample.frames.iter().enumerate() {
            let image = decode_frame(path)?;
            size = [image.width(), image.height()];
            let found = detector
                .detect(Frame::rgb(image.as_raw(), image.width(), image.height()), k)
                .map_err(|source| RuntimeError::Runtime {
                    path: path.clone(),
                    source,
                })?;
            faces.push(
                found
                    .iter()
                    .map(|f| [f.x, f.y, f.width, f.height, f.score])
                    .collect::<Vec<_>>(),
            );
        }
        let boxes: Vec<Vec<liveness_core::face::FaceBox>> = faces
            .iter()
            .map(|fs| {
                fs.iter()
                    .map(|f| liveness_core::face::FaceBox {
                        x: f[0],
                        y: f[1],
                        width: f[2],
                        height: f[3],
                        score: f[4],
                        keypoints: [[0.0; 2]; 6],
                    })
                    .collect()
            })
            .collect();
        let error = liveness_core::face::gate(&boxes).err().map(|r| r.code());
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
