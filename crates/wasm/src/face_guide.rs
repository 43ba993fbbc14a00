//! `FaceGuide`: the face detector on preview frames, for live guidance while the user frames
//! their face (no download: the detector is compiled in).

use js_sys::Reflect;
use liveness_core::Frame;
use liveness_core::face::{FaceBox, guidance};
use liveness_runtime::FaceDetector;
use wasm_bindgen::prelude::*;

use crate::error::{ErrorCode, LivenessError};
use crate::fetch::now_ms;
use crate::frames::read_frame;
use crate::serialize;

/// The face detector for live guidance while the user frames their face (no download: the
/// detector is compiled in).
#[wasm_bindgen]
pub struct FaceGuide {
    detector: FaceDetector,
}

#[wasm_bindgen]
impl FaceGuide {
    /// Loads the detector.
    #[wasm_bindgen(constructor)]
    pub fn new() -> std::result::Result<FaceGuide, JsValue> {
        let detector = FaceDetector::new(liveness_core::face::MIN_SCORE)
            .map_err(|e| LivenessError::new(ErrorCode::ModelInvalid, e.to_string()))?;
        Ok(FaceGuide { detector })
    }

    /// Looks at one preview frame (an `ImageData` or `{ data, width, height }`): resolves to
    /// `{ guidance, face, steady, detectMs }`, where `guidance` is one of `guidanceCodes()`,
    /// `face` the one person's face (or `null`), and `steady` whether it held still since
    /// `previous` (the `face` of the last look).
    pub fn look(&self, frame: JsValue, previous: JsValue) -> std::result::Result<JsValue, JsValue> {
        let started = now_ms();
        let (pixels, width, height) = read_frame(&frame, 0)?;
        let view = Frame::rgba(&pixels, width, height);
        let faces = self
            .detector
            .detect(view, 0)
            .map_err(|e| LivenessError::new(ErrorCode::Frames, e.to_string()))?;
        let people = liveness_core::face::people(&faces);
        let advice = guidance::guide(view, &faces);
        let face = (people.len() == 1).then(|| people[0]);
        let previous: Option<FaceBox> = serde_wasm_bindgen::from_value(previous).ok().flatten();
        let steady = matches!((previous, face), (Some(p), Some(f)) if guidance::steady(&p, &f));
        let out = js_sys::Object::new();
        let _ = Reflect::set(&out, &"guidance".into(), &advice.code().into());
        let _ = Reflect::set(&out, &"face".into(), &serialize(&face)?);
        let _ = Reflect::set(&out, &"steady".into(), &steady.into());
        let _ = Reflect::set(&out, &"detectMs".into(), &(now_ms() - started).into());
        Ok(out.into())
    }
}
