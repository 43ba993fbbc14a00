//! One conformance suite for every engine this build has (tract on the CPU; wonnx through wgpu —
//! Vulkan, Mesa's lavapipe on machines without a GPU — with the `wonnx` feature, which the
//! workspace's test run turns on): the same model, the same cases, the same answers, in the
//! manner of burn's backend tests. The CPU engine is the reference the others are held to.
//!
//!     cargo test -p liveness-runtime --features wonnx --test conformance

use std::path::PathBuf;

use liveness_core::Frame;
use liveness_core::face::Refusal;
use liveness_core::testing::{DrawnHead, WALL, draw_head, max_logit_error};
use liveness_runtime::{Backend, Error, Model, Outcome, VerifiedModel};

/// Logits of two engines may differ by this much, relative to max(1, |logit|) (the bound the
/// browser test holds WebGPU to).
const TOLERANCE: f64 = 1e-3;

fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Cpu];
    if cfg!(feature = "wonnx") {
        all.push(Backend::WebGpu);
    }
    all
}

fn default_model() -> VerifiedModel {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/default.onnx");
    VerifiedModel::read(&root, None).expect("the shipped model and its manifest")
}

/// The shipped model on every engine, the CPU (reference) first.
fn engines() -> Vec<Model> {
    let verified = default_model();
    backends()
        .into_iter()
        .map(|b| {
            Model::load_blocking(&verified, b).unwrap_or_else(|e| panic!("{}: {e}", b.as_str()))
        })
        .collect()
}

/// Five RGB frames of a drawn head facing the camera, each with its own noise.
fn head_frames(width: u32, height: u32) -> Vec<Vec<u8>> {
    let head = DrawnHead {
        cx: width as f32 / 2.0,
        cy: height as f32 * 0.52,
        width: width as f32 * 0.28,
        yaw: 0.0,
        pitch: 0.0,
    };
    (0..5)
        .map(|k| draw_head(width, height, head, WALL, 7 + k))
        .collect()
}

fn views(frames: &[Vec<u8>], width: u32, height: u32) -> Vec<Frame<'_>> {
    frames
        .iter()
        .map(|f| Frame::rgb(f, width, height))
        .collect()
}

#[test]
fn every_engine_gives_the_reference_logits_on_the_same_input() {
    let models = engines();
    let len = models[0].manifest().input.sample_len();
    // Deterministic inputs of normalised scale, and the extremes of the range.
    let inputs: Vec<Vec<f32>> = vec![
        (0..len)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
            .collect(),
        vec![0.0; len],
        (0..len)
            .map(|i| if i % 3 == 0 { 2.5 } else { -2.0 })
            .collect(),
    ];
    for input in &inputs {
        let want = models[0].logits_blocking(input.clone()).expect("reference");
        assert_eq!(want.len(), 1);
        for m in &models[1..] {
            let got = m.logits_blocking(input.clone()).expect("logits");
            let error = max_logit_error(&got, &want);
            let b = m.engine().backend().as_str();
            eprintln!("{b} vs cpu: relative logit error {error:.2e} ({got:?} vs {want:?})");
            assert!(error <= TOLERANCE, "{b}: {got:?} vs {want:?}");
        }
    }
}

#[test]
fn every_engine_checks_the_same_frames_to_the_same_outcome() {
    let models = engines();
    for (w, h) in [(320, 240), (640, 480)] {
        let frames = head_frames(w, h);
        let checked: Vec<_> = models
            .iter()
            .map(|m| m.check_blocking(&views(&frames, w, h)).expect("check"))
            .collect();
        let Outcome::Verdict(reference) = checked[0].outcome else {
            panic!(
                "{w}x{h}: the drawn head was refused: {:?}",
                checked[0].outcome
            )
        };
        assert_eq!(checked[0].faces.len(), 5);
        for (m, c) in models.iter().zip(&checked).skip(1) {
            let b = m.engine().backend().as_str();
            let Outcome::Verdict(v) = c.outcome else {
                panic!("{b}: refused what the CPU engine checked")
            };
            assert!(
                max_logit_error(&[v.logit], &[reference.logit]) <= TOLERANCE,
                "{b}: logit {} vs {}",
                v.logit,
                reference.logit
            );
            assert_eq!(v.live, reference.live, "{b}");
            // The gate and the crop are shared code: the same faces, to the bit.
            assert_eq!(c.faces, checked[0].faces, "{b}");
        }
    }
}

#[test]
fn every_engine_refuses_frames_without_a_face_and_input_that_is_not_whole_samples() {
    for m in engines() {
        let b = m.engine().backend().as_str();
        let wall: Vec<Vec<u8>> = (0..5)
            .map(|_| WALL.iter().copied().cycle().take(160 * 120 * 3).collect())
            .collect();
        let c = m.check_blocking(&views(&wall, 160, 120)).expect("check");
        assert!(
            matches!(c.outcome, Outcome::Refused(Refusal::NoFace { frame: 0 })),
            "{b}: {:?}",
            c.outcome
        );
        assert!(c.faces.is_empty(), "{b}");

        let len = m.manifest().input.sample_len();
        for wrong in [0, len - 1, len + 1] {
            let e = m
                .logits_blocking(vec![0.0; wrong])
                .expect_err("not whole samples");
            assert!(
                matches!(e, Error::ModelInput(_)),
                "{b}, {wrong} values: {e}"
            );
        }
        let four = views(&wall[..4], 160, 120);
        assert!(
            matches!(m.check_blocking(&four), Err(Error::Frames(_))),
            "{b}: four frames"
        );
    }
}
