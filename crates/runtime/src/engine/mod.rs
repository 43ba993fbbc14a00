//! Engines: what runs a verified model. [`TractEngine`] on the CPU everywhere (the server,
//! `score-onnx`, the browser's CPU path) and, with the `wonnx` feature, [`WonnxEngine`] on a GPU
//! (WebGPU in the browser). Which one runs is decided in one place ([`choose`]) from what the
//! caller asked for ([`Preference`]) and the GPU adapter it has ([`AdapterInfo`]).

pub mod tract;
#[cfg(feature = "wonnx")]
pub mod wonnx;

use liveness_core::manifest::Manifest;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::verified::VerifiedModel;
pub use tract::TractEngine;
#[cfg(feature = "wonnx")]
pub use wonnx::WonnxEngine;

/// An engine's label: `cpu` (tract) or `webgpu` (wonnx), as results and flags say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// tract on the CPU.
    Cpu,
    /// wonnx on a GPU through WebGPU (wgpu natively).
    WebGpu,
}

impl Backend {
    /// `cpu` or `webgpu`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::WebGpu => "webgpu",
            Backend::Cpu => "cpu",
        }
    }
}

/// What a caller asked for: a backend, or `auto` (let [`choose`] decide).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preference {
    /// The policy decides.
    Auto,
    /// This backend or an error.
    Only(Backend),
}

impl Preference {
    /// Parses `auto`, `webgpu` or `cpu` (missing or empty = auto).
    pub fn parse(value: Option<&str>) -> Result<Self> {
        match value.unwrap_or("auto") {
            "auto" | "" => Ok(Preference::Auto),
            "webgpu" => Ok(Preference::Only(Backend::WebGpu)),
            "cpu" => Ok(Preference::Only(Backend::Cpu)),
            other => Err(Error::UnknownBackend(other.to_owned())),
        }
    }
}

/// What the browser says about its WebGPU adapter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdapterInfo {
    /// `adapter.isFallbackAdapter` (or `adapter.info.isFallbackAdapter`).
    #[serde(default)]
    pub is_fallback_adapter: bool,
    /// `adapter.info.vendor`.
    #[serde(default)]
    pub vendor: String,
    /// `adapter.info.architecture`.
    #[serde(default)]
    pub architecture: String,
    /// `adapter.info.description`.
    #[serde(default)]
    pub description: String,
}

impl AdapterInfo {
    /// Whether the adapter renders in software (a CPU pretending to be a GPU).
    pub fn is_software(&self) -> bool {
        let names =
            format!("{} {} {}", self.vendor, self.architecture, self.description).to_lowercase();
        self.is_fallback_adapter
            || [
                "swiftshader",
                "llvmpipe",
                "lavapipe",
                "software",
                "basic render",
            ]
            .iter()
            .any(|s| names.contains(s))
    }
}

/// The selection policy: the backend for `preference` given the adapter (`None`: no WebGPU or
/// no adapter), and why. A software adapter (SwiftShader, llvmpipe) takes seconds per check on
/// WebGPU and a fraction of a second on the CPU, so `auto` takes the CPU there.
pub fn choose(preference: Preference, adapter: Option<&AdapterInfo>) -> Result<(Backend, String)> {
    match (preference, adapter) {
        (Preference::Only(Backend::Cpu), _) => Ok((Backend::Cpu, "backend=cpu".into())),
        (Preference::Only(Backend::WebGpu), Some(_)) => {
            Ok((Backend::WebGpu, "backend=webgpu".into()))
        }
        (Preference::Only(Backend::WebGpu), None) => Err(Error::WebGpuUnavailable),
        (Preference::Auto, None) => Ok((Backend::Cpu, "no WebGPU adapter".into())),
        (Preference::Auto, Some(a)) if a.is_software() => Ok((
            Backend::Cpu,
            format!("software WebGPU adapter ({} {})", a.vendor, a.architecture),
        )),
        (Preference::Auto, Some(_)) => Ok((Backend::WebGpu, "hardware WebGPU adapter".into())),
    }
}

/// A verified model ready on one backend.
pub enum Engine {
    /// tract on the CPU.
    Cpu(TractEngine),
    /// wonnx on a GPU.
    #[cfg(feature = "wonnx")]
    WebGpu(WonnxEngine),
}

impl Engine {
    /// Prepares `model` on `backend`. WebGPU needs the `wonnx` feature, and an adapter (wonnx
    /// panics without one).
    pub async fn load(model: &VerifiedModel, backend: Backend) -> Result<Engine> {
        match backend {
            Backend::Cpu => Ok(Engine::Cpu(TractEngine::new(model)?)),
            #[cfg(feature = "wonnx")]
            Backend::WebGpu => Ok(Engine::WebGpu(WonnxEngine::new(model).await?)),
            #[cfg(not(feature = "wonnx"))]
            Backend::WebGpu => Err(Error::Wonnx {
                what: format!("loading {}", model.source()),
                message: "this build has no WebGPU engine (the `wonnx` feature)".into(),
            }),
        }
    }

    /// Its label.
    pub fn backend(&self) -> Backend {
        match self {
            Engine::Cpu(_) => Backend::Cpu,
            #[cfg(feature = "wonnx")]
            Engine::WebGpu(_) => Backend::WebGpu,
        }
    }

    /// Logits of up to one batch of samples' inputs (`k × sample_len`, `k ≤ batch`).
    pub async fn logits(&self, input: Vec<f32>, manifest: &Manifest) -> Result<Vec<f32>> {
        match self {
            Engine::Cpu(e) => e.logits(input, manifest),
            #[cfg(feature = "wonnx")]
            Engine::WebGpu(e) => e.logits(input, manifest).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(fallback: bool, architecture: &str) -> AdapterInfo {
        AdapterInfo {
            is_fallback_adapter: fallback,
            vendor: "google".into(),
            architecture: architecture.into(),
            description: String::new(),
        }
    }

    #[test]
    fn the_policy_prefers_a_hardware_gpu_and_the_cpu_otherwise() {
        let hw = adapter(false, "ampere");
        let soft = adapter(false, "swiftshader");
        let fallback = adapter(true, "");
        let pick = |p, a| choose(p, a).map(|(b, _)| b).map_err(|e| e.to_string());
        let (cpu, gpu) = (
            Preference::Only(Backend::Cpu),
            Preference::Only(Backend::WebGpu),
        );
        assert_eq!(pick(Preference::Auto, Some(&hw)), Ok(Backend::WebGpu));
        assert_eq!(pick(Preference::Auto, Some(&soft)), Ok(Backend::Cpu));
        assert_eq!(pick(Preference::Auto, Some(&fallback)), Ok(Backend::Cpu));
        assert_eq!(pick(Preference::Auto, None), Ok(Backend::Cpu));
        assert_eq!(pick(cpu, Some(&hw)), Ok(Backend::Cpu));
        assert_eq!(pick(gpu, Some(&soft)), Ok(Backend::WebGpu));
        assert!(matches!(choose(gpu, None), Err(Error::WebGpuUnavailable)));
        assert_eq!(Preference::parse(None).ok(), Some(Preference::Auto));
        assert_eq!(Preference::parse(Some("cpu")).ok(), Some(cpu));
        assert!(matches!(
            Preference::parse(Some("gpu")),
            Err(Error::UnknownBackend(_))
        ));
    }
}
