//! The contract every runtime of an exported model follows (tract natively and in wasm, wonnx in
//! the browser and natively, the server): the graph's input and output names, where a model's
//! manifest lies, and how one sample's input fills the model's static batch.

use std::path::{Path, PathBuf};

use crate::manifest::Manifest;

/// Name of the graph input: `[N, 5, 3, S, S]` normalised frames.
pub const INPUT: &str = "frames";
/// Name of the logit output, `[N, 1]`.
pub const LOGIT: &str = "logit";
/// Name of the probability output `sigmoid(logit)`, `[N, 1]`.
pub const P_SPOOF: &str = "p_spoof";
/// The outputs every model has, in order.
pub const OUTPUTS: [&str; 2] = [LOGIT, P_SPOOF];

/// The manifest's path for a model's path: `x/NAME.onnx` → `x/NAME.json`.
pub fn manifest_path(model: &Path) -> PathBuf {
    model.with_extension("json")
}

/// The manifest's address for a model's address: `NAME.onnx` → `NAME.json`, keeping a query or
/// fragment (`m.onnx?v=2` → `m.json?v=2`); an address without `.onnx` gets `.json` appended.
pub fn manifest_url(model_url: &str) -> String {
    let (path, rest) = match model_url.find(['?', '#']) {
        Some(i) => model_url.split_at(i),
        None => (model_url, ""),
    };
    match path.strip_suffix(".onnx") {
        Some(stem) => format!("{stem}.json{rest}"),
        None => format!("{path}.json{rest}"),
    }
}

/// One or more samples' inputs (`k × sample_len`) padded with zeros to the model's batch; the
/// padding's outputs are ignored. Inputs longer than the batch are cut (callers run at most a
/// batch at a time).
pub fn pad_to_batch(mut input: Vec<f32>, manifest: &Manifest) -> Vec<f32> {
    input.resize(manifest.input.shape().iter().product(), 0.0);
    input
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_sits_next_to_the_model() {
        assert_eq!(manifest_url("/models/default.onnx"), "/models/default.json");
        assert_eq!(manifest_url("m.onnx?v=2"), "m.json?v=2");
        assert_eq!(manifest_url("m.onnx#x"), "m.json#x");
        assert_eq!(manifest_url("/model"), "/model.json");
        assert_eq!(
            manifest_path(Path::new("models/a.onnx")),
            PathBuf::from("models/a.json")
        );
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
