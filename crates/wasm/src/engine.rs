//! Which engine runs the model, decided in one place ([`choose`]), and the engines themselves:
//! wonnx on a hardware WebGPU adapter, tract (the same runtime as the server's, from
//! `liveness-runtime`) on the CPU everywhere else — no adapter, a software adapter (SwiftShader,
//! llvmpipe: a check there takes seconds on WebGPU and a fraction of a second on the CPU), or a
//! wonnx failure at load. The widget's `backend="auto|webgpu|cpu"` attribute overrides it.

use std::collections::HashMap;

use liveness_core::manifest::Manifest;
use liveness_core::model::{LOGIT, pad_to_batch};
use liveness_runtime::TractModel;
use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, LivenessError, Result};

/// What the page asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preference {
    /// Let [`choose`] decide.
    Auto,
    /// WebGPU or an error.
    WebGpu,
    /// The CPU engine.
    Cpu,
}

impl Preference {
    /// Parses `auto`, `webgpu` or `cpu` (missing = auto).
    pub fn parse(value: Option<&str>) -> Result<Self> {
        match value.unwrap_or("auto") {
            "auto" | "" => Ok(Preference::Auto),
            "webgpu" => Ok(Preference::WebGpu),
            "cpu" => Ok(Preference::Cpu),
            other => Err(LivenessError::new(
                ErrorCode::ModelInvalid,
                format!("backend {other:?}: expected auto, webgpu or cpu"),
            )),
        }
    }
}

/// The engine that runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// wonnx on WebGPU.
    WebGpu,
    /// tract on the CPU (wasm).
    Cpu,
}

impl Backend {
    /// `webgpu` or `cpu`, as `result.backend` says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::WebGpu => "webgpu",
            Backend::Cpu => "cpu",
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

/// The selection policy: the engine for `preference` given the adapter (`None`: no WebGPU or
/// no adapter), and why.
pub fn choose(preference: Preference, adapter: Option<&AdapterInfo>) -> Result<(Backend, String)> {
    match (preference, adapter) {
        (Preference::Cpu, _) => Ok((Backend::Cpu, "backend=cpu".into())),
        (Preference::WebGpu, Some(_)) => Ok((Backend::WebGpu, "backend=webgpu".into())),
        (Preference::WebGpu, None) => Err(LivenessError::new(
            ErrorCode::WebGpuUnavailable,
            "backend=webgpu, but this browser offers no WebGPU adapter",
        )),
        (Preference::Auto, None) => Ok((Backend::Cpu, "no WebGPU adapter".into())),
        (Preference::Auto, Some(a)) if a.is_software() => Ok((
            Backend::Cpu,
            format!("software WebGPU adapter ({} {})", a.vendor, a.architecture),
        )),
        (Preference::Auto, Some(_)) => Ok((Backend::WebGpu, "hardware WebGPU adapter".into())),
    }
}

/// A model ready on one engine.
pub enum Engine {
    /// wonnx on WebGPU.
    WebGpu(wonnx::Session),
    /// tract on the CPU.
    Cpu(TractModel),
}

impl Engine {
    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        match self {
            Engine::WebGpu(_) => Backend::WebGpu,
            Engine::Cpu(_) => Backend::Cpu,
        }
    }

    /// The logit of one sample's input (padded to the model's batch).
    pub async fn logit(&self, input: Vec<f32>, manifest: &Manifest) -> Result<f32> {
        let failed = |msg: String| LivenessError::new(ErrorCode::Inference, msg);
        let logits = match self {
            Engine::Cpu(model) => model.logits(input).map_err(|e| failed(e.to_string()))?,
            Engine::WebGpu(session) => {
                let input = pad_to_batch(input, manifest);
                let mut inputs = HashMap::new();
                inputs.insert(manifest.input.name.clone(), input.as_slice().into());
                let outputs = session
                    .run(&inputs)
                    .await
                    .map_err(|e| failed(format!("running the model: {e}")))?;
                outputs
                    .get(LOGIT)
                    .cloned()
                    .and_then(|t| Vec::<f32>::try_from(t).ok())
                    .unwrap_or_default()
            }
        };
        logits
            .first()
            .copied()
            .ok_or_else(|| failed("the model returned no logit".into()))
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
        let pick = |p, a| choose(p, a).map(|(b, _)| b);
        assert_eq!(pick(Preference::Auto, Some(&hw)), Ok(Backend::WebGpu));
        assert_eq!(pick(Preference::Auto, Some(&soft)), Ok(Backend::Cpu));
        assert_eq!(pick(Preference::Auto, Some(&fallback)), Ok(Backend::Cpu));
        assert_eq!(pick(Preference::Auto, None), Ok(Backend::Cpu));
        assert_eq!(pick(Preference::Cpu, Some(&hw)), Ok(Backend::Cpu));
        assert_eq!(pick(Preference::WebGpu, Some(&soft)), Ok(Backend::WebGpu));
        let err = choose(Preference::WebGpu, None).expect_err("no adapter");
        assert_eq!(err.code, ErrorCode::WebGpuUnavailable);
        assert_eq!(Preference::parse(None), Ok(Preference::Auto));
        assert!(Preference::parse(Some("gpu")).is_err());
    }
}
