//! The browser side of the liveness checker, for `web/liveness-worker.js`: the Web Worker that
//! holds this module (the page's main thread never loads it; capture is `web/capture.js`).
//!
//! - [`liveness_model::LivenessModel`]: a model and its manifest, fetched (with progress),
//!   verified and put on the engine the policy picks (`liveness_runtime`: wonnx on a hardware
//!   WebGPU adapter, tract on the CPU otherwise), checked with the server's own code;
//! - [`face_guide::FaceGuide`]: the face detector on preview frames → live guidance;
//! - [`challenge::ChallengeTracker`]: the head-pose challenge, look by look, and
//!   [`challenge::check_track_js`], its whole check (the server's rules);
//! - [`webgpu`]: the adapter, probed once, and the engine policy;
//! - the contracts the widget and its tests check against: [`error_codes`], [`guidance_codes`],
//!   [`frame_count`], [`manifest_url`].
//!
//! Every failure reaches JavaScript as an `Error` named `LivenessError` with a `code`
//! ([`error::ErrorCode`]). A panic (wonnx panics on wgpu errors, e.g. a lost device) cannot be
//! caught on wasm32; the panic hook reports it to the listener set with [`set_fatal_listener`],
//! and the worker then loads a fresh instance of this module.

pub mod challenge;
pub mod error;
pub mod face_guide;
mod fetch;
mod frames;
pub mod liveness_model;
pub mod webgpu;

use std::cell::RefCell;

use js_sys::Function;
use liveness_core::face::guidance;
use wasm_bindgen::prelude::*;

use error::{ErrorCode, LivenessError};

thread_local! {
    static FATAL_LISTENER: RefCell<Option<Function>> = const { RefCell::new(None) };
}

/// Installs the panic hook when the module is instantiated.
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        let message = info.to_string();
        web_sys::console::error_1(&message.as_str().into());
        let code = if message.contains("lost") {
            ErrorCode::DeviceLost
        } else {
            ErrorCode::Inference
        };
        let error: JsValue =
            LivenessError::new(code, format!("the runtime stopped: {message}")).into();
        FATAL_LISTENER.with(|l| {
            if let Ok(listener) = l.try_borrow()
                && let Some(f) = listener.as_ref()
            {
                let _ = f.call1(&JsValue::NULL, &error);
            }
        });
    }));
}

/// Sets the function called with a `LivenessError` when the module hits an unrecoverable
/// error (a panic). After it fires this module instance must not be used again.
#[wasm_bindgen(js_name = setFatalListener)]
pub fn set_fatal_listener(listener: Option<Function>) {
    FATAL_LISTENER.with(|l| *l.borrow_mut() = listener);
}

/// Every error `code` this module can reject with.
#[wasm_bindgen(js_name = errorCodes)]
pub fn error_codes() -> Vec<String> {
    ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect()
}

/// Every guidance code [`face_guide::FaceGuide::look`] can give.
#[wasm_bindgen(js_name = guidanceCodes)]
pub fn guidance_codes() -> Vec<String> {
    guidance::Guidance::ALL
        .iter()
        .map(|g| g.code().to_owned())
        .collect()
}

/// The number of frames a check takes (`liveness_core::FRAMES`).
#[wasm_bindgen(js_name = frameCount)]
pub fn frame_count() -> u32 {
    liveness_core::FRAMES as u32
}

/// The manifest's address for a model address: `NAME.onnx` → `NAME.json` (the rule every
/// runtime shares, `liveness_core::model_file::manifest_url`).
#[wasm_bindgen(js_name = manifestUrl)]
pub fn manifest_url(model_url: &str) -> String {
    liveness_core::model_file::manifest_url(model_url)
}

/// A Rust value as a plain JS object (JSON-compatible: maps become objects).
pub(crate) fn serialize<T: serde::Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| LivenessError::new(ErrorCode::Inference, e.to_string()).into())
}
