//! The one way into a runtime: model bytes checked against their manifest, in one order — the
//! size limit, then the manifest (its format and fields, and that it names the face detector
//! this runtime carries), then the model's SHA-256. Every engine starts from a [`VerifiedModel`].

use std::path::Path;

use liveness_core::limits::MAX_MODEL_BYTES;
use liveness_core::manifest::Manifest;
use liveness_core::model_file::manifest_path;

use crate::detector;
use crate::error::{Error, Result};

/// Model bytes that passed every check, with their manifest.
#[derive(Debug, Clone)]
pub struct VerifiedModel {
    bytes: Vec<u8>,
    manifest: Manifest,
    source: String,
}

/// How the model's SHA-256 is checked.
enum Hash {
    /// Hashed here (`sha2`).
    Compute,
    /// Hashed by the caller (the browser's WebCrypto: native and off the wasm thread).
    Given(String),
}

impl VerifiedModel {
    /// Checks `bytes` (the model named `source` in errors) against the manifest text
    /// `manifest_json` (named `manifest_source`).
    pub fn new(
        bytes: Vec<u8>,
        source: &str,
        manifest_json: &str,
        manifest_source: &str,
    ) -> Result<Self> {
        Self::checked(bytes, source, manifest_json, manifest_source, Hash::Compute)
    }

    /// Like [`VerifiedModel::new`], with the SHA-256 (hex) of `bytes` computed by the caller.
    pub fn with_sha256(
        bytes: Vec<u8>,
        sha256: String,
        source: &str,
        manifest_json: &str,
        manifest_source: &str,
    ) -> Result<Self> {
        Self::checked(
            bytes,
            source,
            manifest_json,
            manifest_source,
            Hash::Given(sha256),
        )
    }

    /// Reads and checks `model` and its manifest (`NAME.json` next to it unless given); a file
    /// beyond the size limit is refused before it is read.
    pub fn read(model: &Path, manifest: Option<&Path>) -> Result<Self> {
        let manifest_file = manifest.map_or_else(|| manifest_path(model), Path::to_path_buf);
        let manifest_json = String::from_utf8_lossy(&read_file(&manifest_file)?).into_owned();
        let source = model.display().to_string();
        if let Ok(meta) = std::fs::metadata(model) {
            check_size(meta.len(), &source)?;
        }
        let bytes = read_file(model)?;
        Self::new(
            bytes,
            &source,
            &manifest_json,
            &manifest_file.display().to_string(),
        )
    }

    fn checked(
        bytes: Vec<u8>,
        source: &str,
        manifest_json: &str,
        manifest_source: &str,
        hash: Hash,
    ) -> Result<Self> {
        check_size(bytes.len() as u64, source)?;
        let manifest = Manifest::parse(manifest_json, manifest_source)?;
        manifest.check_detector(&detector::sha256(), manifest_source)?;
        let sha256 = match hash {
            Hash::Compute => liveness_core::manifest::sha256_hex(&bytes),
            Hash::Given(sha256) => sha256,
        };
        manifest
            .verify_sha256(sha256)
            .map_err(|e| Error::Refusing {
                source_name: source.to_owned(),
                source: e,
            })?;
        Ok(VerifiedModel {
            bytes,
            manifest,
            source: source.to_owned(),
        })
    }

    /// The model's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Its manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// What names the model in errors (its path or address).
    pub fn source(&self) -> &str {
        &self.source
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Model bytes within [`MAX_MODEL_BYTES`] (checked before hashing or parsing them).
fn check_size(bytes: u64, source: &str) -> Result<()> {
    if bytes > MAX_MODEL_BYTES {
        return Err(Error::ModelTooLarge {
            source_name: source.to_owned(),
            bytes,
            max: MAX_MODEL_BYTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest_json(bytes: &[u8]) -> String {
        let mut m = liveness_core::manifest::example(bytes, 16, 1);
        m.face.sha256 = detector::sha256();
        serde_json::to_string(&m).expect("manifest serialises")
    }

    #[test]
    fn bytes_and_manifest_are_checked_in_order_naming_the_file_at_fault() {
        let json = manifest_json(b"model bytes");
        let ok = VerifiedModel::new(b"model bytes".to_vec(), "m.onnx", &json, "m.json");
        assert_eq!(ok.expect("valid").bytes(), b"model bytes");

        let e = VerifiedModel::new(b"model bytez".to_vec(), "m.onnx", &json, "m.json")
            .expect_err("one byte changed");
        assert!(matches!(e, Error::Refusing { .. }), "{e}");
        assert!(e.to_string().contains("m.onnx"), "{e}");

        let e = VerifiedModel::new(b"model bytes".to_vec(), "m.onnx", "{", "bad.json")
            .expect_err("not JSON");
        assert!(e.to_string().contains("bad.json"), "{e}");

        let other = serde_json::to_string(&liveness_core::manifest::example(b"model bytes", 16, 1))
            .expect("json");
        let e = VerifiedModel::new(b"model bytes".to_vec(), "m.onnx", &other, "other.json")
            .expect_err("another detector");
        assert!(e.to_string().contains("face detector"), "{e}");

        // The size comes first: an oversized model is refused even with a broken manifest.
        let e = check_size(MAX_MODEL_BYTES + 1, "big.onnx").expect_err("too large");
        assert!(e.to_string().contains("big.onnx"), "{e}");
    }

    #[test]
    fn a_hash_given_by_the_caller_is_held_to_the_manifest() {
        let json = manifest_json(b"model bytes");
        let sha = liveness_core::manifest::sha256_hex(b"model bytes");
        VerifiedModel::with_sha256(b"model bytes".to_vec(), sha.clone(), "m", &json, "m.json")
            .expect("right hash");
        let e = VerifiedModel::with_sha256(b"x".to_vec(), "0".repeat(64), "m", &json, "m.json")
            .expect_err("wrong hash");
        assert!(matches!(e, Error::Refusing { .. }), "{e}");
    }

    #[test]
    fn files_are_read_with_the_manifest_next_to_the_model() {
        let dir = std::env::temp_dir().join(format!("verified-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("m.onnx"), b"model bytes").expect("write");
        std::fs::write(dir.join("m.json"), manifest_json(b"model bytes")).expect("write");
        VerifiedModel::read(&dir.join("m.onnx"), None).expect("read");
        let e = VerifiedModel::read(&dir.join("gone.onnx"), None).expect_err("no such file");
        assert!(e.to_string().contains("gone.json"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
