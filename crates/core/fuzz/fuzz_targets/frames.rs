//! Any bytes as a sample of frames: the first bytes choose sizes, layout, crop and input size, the
//! rest are pixels. Checking, the face crop, preprocessing, the detector's input, the face
//! decoder and the guidance return values or errors, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use liveness_core::face::{self, FaceBox};
use liveness_core::{Crop, FRAMES, Frame, Normalization, check_sample, preprocess_regions};

fuzz_target!(|data: &[u8]| {
    if data.len() < 12 {
        return;
    }
    let width = u32::from(u16::from_le_bytes([data[0], data[1]]) % 700);
    let height = u32::from(u16::from_le_bytes([data[2], data[3]]) % 700);
    let rgba = data[4] & 1 == 1;
    let size = u32::from(data[5] % 80);
    let scale = f32::from(data[6]) / 32.0;
    let f = |i: usize| f32::from_le_bytes([data[7], data[8], data[9 + i % 3], data[10]]);
    let pixels = &data[11..];
    let frame = if rgba {
        Frame::rgba(pixels, width, height)
    } else {
        Frame::rgb(pixels, width, height)
    };
    let frames = vec![frame; FRAMES];
    if check_sample(&frames).is_err() {
        return;
    }
    let face = FaceBox {
        x: f(0),
        y: f(1),
        width: f(2),
        height: f(0),
        score: 0.9,
        keypoints: [[f(1), f(2)]; 6],
    };
    let crop = Crop::Face { scale };
    let regions: Vec<_> = frames
        .iter()
        .map(|fr| crop.region(fr.width, fr.height, Some(&face)))
        .collect();
    if let Ok(input) = preprocess_regions(&frames, &regions, size, &Normalization::IMAGENET) {
        assert!(input.iter().all(|v| v.is_finite()));
    }
    if let Ok((input, letterbox)) = face::detector_input(frame, 0) {
        // The pixels again, as if they were the detector's raw outputs.
        let floats: Vec<f32> = pixels
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let (s, r) = floats.split_at(floats.len() / 17);
        let faces = face::decode([s, s], [r, r], &letterbox, face::MIN_SCORE);
        let _ = face::gate(&vec![faces.clone(); FRAMES]);
        let _ = face::guidance::guide(frame, &faces);
        assert_eq!(input.len(), 128 * 128 * 3);
    }
});
