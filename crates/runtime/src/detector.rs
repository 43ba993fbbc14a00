//! The face detector (MediaPipe BlazeFace, short range) on tract. Its ONNX file is compiled in, so
//! every runtime carries the very detector the manifests name by SHA-256.

use std::sync::Arc;

use liveness_core::Frame;
use liveness_core::face::{self, DETECTOR_SIZE, FaceBox};
use tract_onnx::prelude::*;

use crate::error::{Result, tract};

/// The detector's ONNX file (`models/face/blazeface-front-128.onnx`, Apache-2.0).
pub const ONNX: &[u8] = include_bytes!("../../../models/face/blazeface-front-128.onnx");

/// The detector's name in manifests.
pub const NAME: &str = "blazeface-front-128";

/// SHA-256 (hex) of [`ONNX`], which manifests name.
pub fn sha256() -> String {
    liveness_core::manifest::sha256_hex(ONNX)
}

/// The outputs, in the file's order: scores of anchor layers 1 and 2, then their regressors.
const OUTPUTS: [&str; 4] = ["Identity:0", "Identity_1:0", "Identity_2:0", "Identity_3:0"];

/// The detector's graph as tract must see it. The file leaves `ConstantOfShape`'s `value`
/// attribute out, which ONNX defines as a float32 zero but tract 0.23 reads as float64 (and then
/// cannot concatenate it with float32 features). The explicit attribute says what the file
/// means; the shipped file stays byte-identical to the registry's.
fn tract_ready(bytes: &[u8]) -> Result<Vec<u8>> {
    use liveness_core::onnx::proto::attribute_proto::AttributeType;
    use liveness_core::onnx::proto::tensor_proto::DataType;
    use liveness_core::onnx::proto::{AttributeProto, ModelProto, TensorProto};
    use prost::Message;
    let mut model = ModelProto::decode(bytes).map_err(|e| crate::Error::Tract {
        what: format!("reading the face detector {NAME}"),
        message: e.to_string(),
    })?;
    for node in model.graph.iter_mut().flat_map(|g| g.node.iter_mut()) {
        let is_constant = node.op_type.as_deref() == Some("ConstantOfShape");
        if is_constant
            && !node
                .attribute
                .iter()
                .any(|a| a.name.as_deref() == Some("value"))
        {
            node.attribute.push(AttributeProto {
                name: Some("value".into()),
                r#type: Some(AttributeType::Tensor as i32),
                t: Some(TensorProto {
                    dims: vec![1],
                    data_type: Some(DataType::Float as i32),
                    raw_data: Some(0f32.to_le_bytes().to_vec()),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
    }
    Ok(model.encode_to_vec())
}

/// A loaded detector; cheap to clone and safe to share between threads.
#[derive(Clone)]
pub struct FaceDetector {
    plan: Arc<TypedSimplePlan>,
    min_score: f32,
}

impl FaceDetector {
    /// Loads the compiled-in detector; faces count from `min_score` up.
    pub fn new(min_score: f32) -> Result<Self> {
        let s = DETECTOR_SIZE as usize;
        let bytes = tract_ready(ONNX)?;
        let plan = tract_onnx::onnx()
            .model_for_read(&mut bytes.as_slice())
            .and_then(|m| m.with_input_fact(0, f32::fact([1, s, s, 3]).into()))
            .and_then(crate::engine::tract::plan)
            .map_err(tract(format!("loading the face detector {NAME}")))?;
        Ok(FaceDetector { plan, min_score })
    }

    /// The faces in `frame`, strongest first. `index` names the frame in errors.
    pub fn detect(&self, frame: Frame<'_>, index: usize) -> Result<Vec<FaceBox>> {
        let (input, letterbox) = face::detector_input(frame, index)?;
        let s = DETECTOR_SIZE as usize;
        let tensor = tract_ndarray::Array4::from_shape_vec((1, s, s, 3), input).map_err(|e| {
            crate::Error::Tract {
                what: "face detector input".into(),
                message: e.to_string(),
            }
        })?;
        let out = self
            .plan
            .run(tvec!(Tensor::from(tensor).into()))
            .map_err(tract(format!("running the face detector on frame {index}")))?;
        let values = |k: usize| -> Result<Vec<f32>> {
            let t = out.get(k).ok_or_else(|| crate::Error::Tract {
                what: "face detector".into(),
                message: format!("no output {}", OUTPUTS[k]),
            })?;
            Ok(t.to_plain_array_view::<f32>()
                .map_err(tract(format!("face detector output {}", OUTPUTS[k])))?
                .iter()
                .copied()
                .collect())
        };
        let (s1, s2, r1, r2) = (values(0)?, values(1)?, values(2)?, values(3)?);
        Ok(face::decode(
            [&s1, &s2],
            [&r1, &r2],
            &letterbox,
            self.min_score,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use liveness_core::testing::{DrawnFace, draw_faces};

    const BACKGROUND: [u8; 3] = [70, 90, 110];

    fn faces_in(drawn: &[DrawnFace]) -> Vec<FaceBox> {
        let pixels = draw_faces(320, 240, drawn, BACKGROUND);
        FaceDetector::new(face::MIN_SCORE)
            .expect("detector loads")
            .detect(Frame::rgb(&pixels, 320, 240), 0)
            .expect("detect")
    }

    #[test]
    fn finds_one_drawn_face_where_it_is_two_where_there_are_two_none_on_a_wall() {
        let one = faces_in(&[DrawnFace {
            cx: 150.0,
            cy: 125.0,
            width: 90.0,
        }]);
        assert_eq!(one.len(), 1, "{one:?}");
        let f = one[0];
        eprintln!(
            "drawn face at (150, 125), 90 wide: box centre ({:.1}, {:.1}), {:.1} x {:.1}, score {:.3}",
            f.centre_x(),
            f.centre_y(),
            f.width,
            f.height,
            f.score
        );
        assert!(
            (f.centre_x() - 150.0).abs() < 15.0 && (f.centre_y() - 125.0).abs() < 25.0,
            "{f:?}"
        );
        assert!(f.width > 50.0 && f.width < 160.0, "{f:?}");
        let two = faces_in(&[
            DrawnFace {
                cx: 90.0,
                cy: 120.0,
                width: 70.0,
            },
            DrawnFace {
                cx: 230.0,
                cy: 120.0,
                width: 70.0,
            },
        ]);
        assert_eq!(two.len(), 2, "{two:?}");
        assert!(faces_in(&[]).is_empty());
    }
}
