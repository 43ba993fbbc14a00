//! Tiny generated datasets for the trainer's tests (never the real data).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// Frame size of generated samples (not square, to exercise the centre crop).
pub const WIDTH: u32 = 40;
pub const HEIGHT: u32 = 32;

/// A learnable frame: live frames are smooth colour gradients, attack frames carry a fine
/// checker texture on top (a stand-in for print texture), plus per-sample noise.
pub fn frame(attack: bool, subject: u32, sample: u32, k: u32) -> image::RgbImage {
    let mut state = (subject * 7919 + sample * 104_729 + k * 31 + u32::from(attack) * 13) | 1;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 21) as i32 - 10
    };
    let base = [
        40 + (subject * 37 % 120) as i32,
        60 + (subject * 53 % 100) as i32,
        80 + (sample * 17 % 90) as i32,
    ];
    image::RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        let checker = if attack && (x / 2 + y / 2) % 2 == 0 {
            60
        } else {
            0
        };
        let mut px =
            |c: usize| (base[c] + (x + y + k) as i32 + checker + noise()).clamp(0, 255) as u8;
        image::Rgb([px(0), px(1), px(2)])
    })
}

/// Writes `DATA/{real,printed}/s<subject>_<n>/{0..4}.png` for `subjects` subjects with
/// `per_class` samples of each class per subject.
pub fn make_dataset(root: &Path, subjects: u32, per_class: u32) -> PathBuf {
    for (class, attack) in [("real", false), ("printed", true)] {
        for s in 0..subjects {
            for n in 0..per_class {
                let dir = root.join(class).join(format!("s{s}_{n}"));
                std::fs::create_dir_all(&dir).expect("create sample dir");
                for k in 0..5 {
                    frame(attack, s, n, k)
                        .save(dir.join(format!("{k}.png")))
                        .expect("write frame");
                }
            }
        }
    }
    root.to_owned()
}

/// The trainer binary, quiet about CPU threads.
pub fn trainer() -> Command {
    let mut c = Command::cargo_bin("liveness-trainer").expect("binary built");
    c.env("OMP_NUM_THREADS", "2");
    c
}

/// Training arguments small enough for a test.
pub fn small_train_args(data: &Path, out: &Path, batch_size: usize) -> Vec<String> {
    let batch_size = batch_size.to_string();
    [
        "train",
        "--device",
        "cpu",
        "--data",
        &data.display().to_string(),
        "--out",
        &out.display().to_string(),
        "--input-size",
        "32",
        "--batch-size",
        &batch_size,
        "--val-batch-size",
        "8",
        "--workers",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
