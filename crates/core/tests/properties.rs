//! Property tests of the shared core on arbitrary input: whatever a browser, a server or a data
//! folder hands it, preprocessing, the face decoder, the metrics and the manifest parser return a
//! value or a typed error — never a panic, a hang or a non-finite number where a finite one is
//! promised.

use liveness_core::face::{self, FaceBox};
use liveness_core::manifest::Manifest;
use liveness_core::metrics::{equal_error_rate, roc_auc, roc_curve};
use liveness_core::{
    AttackClass, Crop, FRAMES, Frame, Normalization, ScoredSample, evaluate, preprocess_frame,
    preprocess_regions,
};
use proptest::prelude::*;

fn any_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        4 => -2.0f32..3.0,
        1 => Just(f32::NAN),
        1 => Just(f32::INFINITY),
        1 => Just(f32::NEG_INFINITY),
        1 => any::<f32>(),
    ]
}

fn class() -> impl Strategy<Value = AttackClass> {
    prop::sample::select(AttackClass::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any frame size and layout: a matching buffer gives `3·S²` finite values; a wrong one an error.
    #[test]
    fn preprocessing_any_frame(
        width in 1u32..48, height in 1u32..48, rgba: bool, size in 1u32..24,
        seed: u8, cut in 0usize..3,
    ) {
        let channels = if rgba { 4 } else { 3 };
        let len = (width * height) as usize * channels;
        let pixels: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
        fn frame(p: &[u8], rgba: bool, width: u32, height: u32) -> Frame<'_> {
            if rgba { Frame::rgba(p, width, height) } else { Frame::rgb(p, width, height) }
        }
        let out = preprocess_frame(frame(&pixels, rgba, width, height), size, &Normalization::IMAGENET);
        let out = out.expect("a well-formed frame preprocesses");
        prop_assert_eq!(out.len(), (3 * size * size) as usize);
        prop_assert!(out.iter().all(|v| v.is_finite()));
        if cut > 0 {
            let short = &pixels[..len.saturating_sub(cut)];
            prop_assert!(preprocess_frame(frame(short, rgba, width, height), size, &Normalization::IMAGENET).is_err());
        }
    }

    /// The face crop of any box (NaN, ∞, outside the frame) is a square inside the frame.
    #[test]
    fn face_crops_stay_inside_the_frame(
        width in 1u32..400, height in 1u32..400,
        x in any_f32(), y in any_f32(), w in any_f32(), h in any_f32(), scale in 0.1f32..5.0,
    ) {
        let face = FaceBox { x: x * 100.0, y: y * 100.0, width: w * 100.0, height: h * 100.0, score: 0.9, keypoints: [[0.0; 2]; 6] };
        let sq = Crop::Face { scale }.region(width, height, Some(&face));
        let (fw, fh) = (f64::from(width), f64::from(height));
        prop_assert!(sq.left.is_finite() && sq.top.is_finite() && sq.width.is_finite());
        prop_assert!(sq.width == sq.height, "a face crop is square: {sq:?}");
        prop_assert!(sq.width > 0.0 && sq.width <= fw.min(fh) + 1e-9);
        prop_assert!(sq.left >= -1e-9 && sq.top >= -1e-9);
        prop_assert!(sq.left + sq.width <= fw + 1e-6 && sq.top + sq.height <= fh + 1e-6);
        let pixels = vec![128u8; (width * height * 3) as usize];
        let frames = vec![Frame::rgb(&pixels, width, height); FRAMES];
        let input = preprocess_regions(&frames, &[sq; FRAMES], 16, &Normalization::IMAGENET);
        prop_assert!(input.is_ok_and(|v| v.iter().all(|x| x.is_finite())));
    }

    /// Any detector output (short, NaN, huge) decodes to finite boxes or none, and the gate and
    /// the guidance answer.
    #[test]
    fn face_decoding_any_output(
        s1 in prop::collection::vec(any_f32(), 0..600),
        s2 in prop::collection::vec(any_f32(), 0..400),
        r2 in prop::collection::vec(any_f32(), 0..400 * 16),
    ) {
        let pixels = vec![0u8; 64 * 48 * 3];
        let (_, letterbox) = face::detector_input(Frame::rgb(&pixels, 64, 48), 0).expect("input");
        let r1 = vec![0.0f32; 512 * 16];
        let faces = face::decode([&s1, &s2], [&r1, &r2], &letterbox, face::MIN_SCORE);
        for f in &faces {
            prop_assert!(f.x.is_finite() && f.y.is_finite() && f.width.is_finite() && f.height.is_finite());
        }
        let _ = face::gate(&vec![faces.clone(); FRAMES]);
        let _ = face::guidance::guide(Frame::rgb(&pixels, 64, 48), &faces);
    }

    /// The metrics terminate on any scores (NaN, ±∞, ties, one class, none) and stay in range;
    /// a non-finite score is always counted as classified attack.
    #[test]
    fn metrics_any_scores(
        samples in prop::collection::vec((class(), any_f32()), 0..60),
        threshold in any_f32(),
    ) {
        let scored: Vec<ScoredSample> = samples.iter().map(|&(class, spoof)| ScoredSample { class, spoof }).collect();
        let r = evaluate(&scored, threshold);
        let c = r.confusion;
        prop_assert_eq!(c.live_as_live + c.live_as_attack + c.attack_as_live + c.attack_as_attack, scored.len());
        for rate in [r.accuracy, r.bpcer, r.apcer_max, r.acer, r.eer, r.roc_auc, r.f1_macro].into_iter().flatten() {
            prop_assert!((0.0..=1.0).contains(&rate), "rate {rate}");
        }
        let non_finite_live = scored.iter().filter(|s| !s.class.is_attack() && !s.spoof.is_finite()).count();
        prop_assert!(c.live_as_attack >= non_finite_live);
        prop_assert!(c.attack_as_live <= scored.iter().filter(|s| s.class.is_attack() && s.spoof.is_finite()).count());
        let _ = (equal_error_rate(&scored), roc_auc(&scored));
        let curve = roc_curve(&scored);
        prop_assert!(curve.iter().all(|(x, y)| (0.0..=1.0).contains(x) && (0.0..=1.0).contains(y)));
    }

    /// The manifest parser on arbitrary JSON: an error, never a panic.
    #[test]
    fn manifest_parser_any_json(v in json()) {
        let _ = Manifest::parse(&v.to_string(), "fuzz.json");
    }

    /// A valid manifest with one field replaced by an arbitrary value: either still valid (and
    /// then every limit holds) or refused.
    #[test]
    fn manifest_parser_any_field(field in prop::sample::select(vec![
        "/threshold", "/input/size", "/input/batch", "/input/frames", "/input/normalization/std/0",
        "/input/crop", "/face/min_score", "/sha256", "/outputs", "/architecture", "/format",
    ]), value in json()) {
        let mut v = serde_json::to_value(liveness_core::manifest::example(b"m", 32, 1)).expect("json");
        if let Some(slot) = v.pointer_mut(field) {
            *slot = value;
        }
        if let Ok(m) = Manifest::parse(&v.to_string(), "m.json") {
            prop_assert!(liveness_core::limits::threshold_ok(m.threshold));
            prop_assert!(liveness_core::limits::BATCH.contains(&m.input.batch));
            prop_assert!(liveness_core::limits::INPUT_SIZE.contains(&m.input.size));
            prop_assert!(m.input.normalization.std.iter().all(|s| *s > 0.0));
        }
    }
}

fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        "[a-z0-9 .-]{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}
