//! The one error type JavaScript sees: a plain `Error` whose `name` is `"LivenessError"` and whose
//! `code` says what failed, so the widget can pick a message and the host page can branch on it.

use wasm_bindgen::JsValue;

/// What failed. The string forms are part of the JS API: [`ErrorCode::ALL`] is exported to
/// JavaScript (`errorCodes()`), and a browser test checks that the widget's texts and
/// `web/liveness-check.d.ts` list exactly these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// `backend="webgpu"` was asked for, but the browser has no WebGPU or no adapter for it.
    WebGpuUnavailable,
    /// The model or its manifest could not be downloaded.
    ModelFetch,
    /// The model's bytes do not match the SHA-256 in its manifest.
    ModelHash,
    /// The manifest or the model is not one this widget can run.
    ModelInvalid,
    /// The frames handed to the model are not five frames of one valid size.
    Frames,
    /// The face gate refused the frames: a frame shows no face (no verdict, not "live").
    NoFace,
    /// The face gate refused the frames: a frame shows more than one person.
    MultipleFaces,
    /// The GPU device was lost or the runtime failed while running the model.
    DeviceLost,
    /// Running the model failed otherwise.
    Inference,
    /// The user or the browser refused camera access.
    CameraDenied,
    /// No camera is attached (or none matches the constraints).
    CameraMissing,
    /// The camera exists but another application holds it.
    CameraInUse,
    /// The camera failed otherwise (no `mediaDevices`, insecure page, playback error).
    CameraFailed,
}

impl ErrorCode {
    /// Every code, in the order the widget documents them.
    pub const ALL: [ErrorCode; 13] = [
        ErrorCode::WebGpuUnavailable,
        ErrorCode::ModelFetch,
        ErrorCode::ModelHash,
        ErrorCode::ModelInvalid,
        ErrorCode::Frames,
        ErrorCode::NoFace,
        ErrorCode::MultipleFaces,
        ErrorCode::DeviceLost,
        ErrorCode::Inference,
        ErrorCode::CameraDenied,
        ErrorCode::CameraMissing,
        ErrorCode::CameraInUse,
        ErrorCode::CameraFailed,
    ];

    /// The `code` property of the JS error.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::WebGpuUnavailable => "webgpu-unavailable",
            ErrorCode::ModelFetch => "model-fetch",
            ErrorCode::ModelHash => "model-hash",
            ErrorCode::ModelInvalid => "model-invalid",
            ErrorCode::Frames => "frames",
            ErrorCode::NoFace => "no-face",
            ErrorCode::MultipleFaces => "multiple-faces",
            ErrorCode::DeviceLost => "device-lost",
            ErrorCode::Inference => "inference",
            ErrorCode::CameraDenied => "camera-denied",
            ErrorCode::CameraMissing => "camera-missing",
            ErrorCode::CameraInUse => "camera-in-use",
            ErrorCode::CameraFailed => "camera-failed",
        }
    }
}

/// The error of a face-gate refusal (`no-face`, `multiple-faces`).
pub fn refusal_error(refusal: &liveness_core::face::Refusal) -> LivenessError {
    let code = match refusal {
        liveness_core::face::Refusal::NoFace { .. } => ErrorCode::NoFace,
        liveness_core::face::Refusal::MultipleFaces { .. } => ErrorCode::MultipleFaces,
    };
    LivenessError::new(code, refusal.to_string())
}

/// The error of a runtime failure while loading a model: `model-hash` when the bytes are not the
/// manifest's, `webgpu-unavailable`, else `model-invalid`.
pub fn load_error(e: liveness_runtime::Error) -> LivenessError {
    use liveness_runtime::Error as E;
    let code = match &e {
        E::Refusing { .. } => ErrorCode::ModelHash,
        E::WebGpuUnavailable => ErrorCode::WebGpuUnavailable,
        _ => ErrorCode::ModelInvalid,
    };
    LivenessError::new(code, e.to_string())
}

/// The error of a runtime failure while checking frames: the gate's refusal, `frames` for
/// frames that are not five of one valid size, else `inference`.
pub fn check_error(e: liveness_runtime::Error) -> LivenessError {
    use liveness_runtime::Error as E;
    match e {
        E::Refused(r) => refusal_error(&r),
        E::Frames(_) | E::ModelInput(_) => LivenessError::new(ErrorCode::Frames, e.to_string()),
        other => LivenessError::new(ErrorCode::Inference, other.to_string()),
    }
}

/// A failure with its [`ErrorCode`] and a message for developers (the widget shows its own
/// translated text, keyed by the code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LivenessError {
    /// What failed.
    pub code: ErrorCode,
    /// What exactly, naming the thing at fault.
    pub message: String,
}

impl LivenessError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        LivenessError {
            code,
            message: message.into(),
        }
    }
}

/// Short form for `Result<T, LivenessError>`.
pub type Result<T> = std::result::Result<T, LivenessError>;

impl From<LivenessError> for JsValue {
    fn from(e: LivenessError) -> JsValue {
        let error = js_sys::Error::new(&e.message);
        error.set_name("LivenessError");
        // Setting a property on a fresh Error object cannot fail.
        let _ = js_sys::Reflect::set(&error, &"code".into(), &e.code.as_str().into());
        error.into()
    }
}

/// The message of a JS exception or rejection value, for wrapping it.
pub fn js_message(value: &JsValue) -> String {
    use wasm_bindgen::JsCast;
    if let Some(error) = value.dyn_ref::<js_sys::Error>() {
        return String::from(error.message());
    }
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_kebab_case() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(s.chars().all(|ch| ch.is_ascii_lowercase() || ch == '-'));
        }
        // The gate's codes are the core's refusal codes.
        assert_eq!(
            ErrorCode::NoFace.as_str(),
            liveness_core::face::Refusal::NoFace { frame: 0 }.code()
        );
        assert_eq!(
            ErrorCode::MultipleFaces.as_str(),
            liveness_core::face::Refusal::MultipleFaces { frame: 0, count: 2 }.code()
        );
    }
}
