//! A small generated dataset in the seed layout, learnable by construction: live frames are smooth
//! colour gradients, attack frames carry a fine checker texture on top (a stand-in for print
//! texture), each with per-frame noise. For tests, smoke runs and the GPU check; never a
//! substitute for real data.

use std::path::Path;

use anyhow::{Context, Result};
use liveness_core::{AttackClass, FRAMES};

/// One generated frame of `width × height`.
pub fn frame(
    attack: bool,
    subject: u32,
    sample: u32,
    k: u32,
    width: u32,
    height: u32,
) -> image::RgbImage {
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
    image::RgbImage::from_fn(width, height, |x, y| {
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

/// Writes `root/{real,printed}/s<subject>_<n>/{0..4}.png`: `subjects` subjects with `per_class`
/// samples of each class each.
pub fn write_dataset(
    root: &Path,
    subjects: u32,
    per_class: u32,
    width: u32,
    height: u32,
) -> Result<()> {
    for class in [AttackClass::Real, AttackClass::Printed] {
        for s in 0..subjects {
            for n in 0..per_class {
                let dir = root.join(class.folder()).join(format!("s{s}_{n}"));
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                for k in 0..FRAMES as u32 {
                    let path = dir.join(format!("{k}.png"));
                    frame(class.is_attack(), s, n, k, width, height)
                        .save(&path)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
            }
        }
    }
    Ok(())
}
