//! A small generated dataset in the seed layout, learnable by construction: every frame shows a
//! drawn face (which the face detector finds) on a plain wall; attack frames look printed — lower
//! contrast and a checker texture of 6-pixel cells over the whole frame (coarse enough to survive
//! resizing to a small input) — each with per-frame noise. For tests, smoke runs and the GPU
//! check; never a substitute for real data.

use std::path::{Path, PathBuf};

use liveness_core::challenge::Challenge;
use liveness_core::testing::{
    DrawnFace, DrawnHead, draw_faces, draw_head, head_track, imitating_print,
};
use liveness_core::{AttackClass, FRAMES};

use crate::shown;

/// Why the dataset could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// The output folder already holds something (generated samples would mix into it).
    #[error("--out {} exists and is not empty: a generated dataset is written only into a new or empty folder (choose another)", shown(.0))]
    NotEmpty(PathBuf),
    /// A size the frames cannot have.
    #[error("--{flag} {value} is not allowed: 16 to 1024")]
    Size { flag: &'static str, value: u32 },
    /// A count out of range.
    #[error("--{flag} {value} is not allowed: 1 to 1000")]
    Count { flag: &'static str, value: u32 },
    /// A folder or file could not be written.
    #[error("cannot write {}: {source}", shown(path))]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not a challenge.
    #[error("--steps {value:?}: {why}")]
    Steps { value: String, why: String },
    /// A frame could not be encoded.
    #[error("cannot write {}: {source}", shown(path))]
    Encode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
}

/// `synth`: write a small generated dataset.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Folder to create (must not exist, or be empty).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of subjects.
    #[arg(long, default_value_t = 6)]
    pub subjects: u32,
    /// Samples per class and subject.
    #[arg(long, default_value_t = 4)]
    pub per_class: u32,
    /// Frame width (from 160 × 120 up the face detector finds every drawn face).
    #[arg(long, default_value_t = 160)]
    pub width: u32,
    /// Frame height.
    #[arg(long, default_value_t = 120)]
    pub height: u32,
    /// Draw 3-D heads (the ones the head-pose challenge's tests turn) instead of flat cartoon
    /// faces; from 320 × 240 up the face detector finds them.
    #[arg(long)]
    pub heads: bool,
}

/// One generated frame of `width × height` (a 3-D head with `heads`).
pub fn frame(
    attack: bool,
    (subject, sample, k): (u32, u32, u32),
    width: u32,
    height: u32,
    heads: bool,
) -> image::RgbImage {
    let mut state = (subject * 7919 + sample * 104_729 + k * 31 + u32::from(attack) * 13) | 1;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 9) as i32 - 4
    };
    let wall = [
        40 + (subject * 37 % 120) as u8,
        60 + (subject * 53 % 100) as u8,
        80 + (sample * 17 % 90) as u8,
    ];
    let (w, h) = (width as f32, height as f32);
    let face = DrawnFace {
        cx: w / 2.0 + (k as f32 - 2.0) * w * 0.01,
        cy: h / 2.0 + h * 0.05,
        width: w.min(h) * 0.4,
    };
    let drawn = if heads {
        let head = DrawnHead {
            cx: face.cx,
            cy: face.cy,
            width: face.width,
            yaw: (k as f32 - 2.0) * 2.0,
            pitch: 0.0,
        };
        draw_head(width, height, head, wall, u64::from(state))
    } else {
        draw_faces(width, height, &[face], wall)
    };
    image::RgbImage::from_fn(width, height, |x, y| {
        let checker = if attack && (x / 6 + y / 6) % 2 == 0 {
            20
        } else {
            0
        };
        let at = ((y * width + x) * 3) as usize;
        let mut px = |c: usize| {
            let v = i32::from(drawn[at + c]);
            let v = if attack { 128 + (v - 128) * 3 / 4 } else { v };
            (v + checker + noise()).clamp(0, 255) as u8
        };
        image::Rgb([px(0), px(1), px(2)])
    })
}

/// Writes `root/{real,printed}/s<subject>_<n>/{0..4}.png`: `subjects` subjects with `per_class`
/// samples of each class each. Refuses a folder that already holds anything.
pub fn write_dataset(
    root: &Path,
    subjects: u32,
    per_class: u32,
    width: u32,
    height: u32,
    heads: bool,
) -> Result<(), SynthError> {
    for (flag, value) in [("width", width), ("height", height)] {
        if !(16..=1024).contains(&value) {
            return Err(SynthError::Size { flag, value });
        }
    }
    for (flag, value) in [("subjects", subjects), ("per-class", per_class)] {
        if !(1..=1000).contains(&value) {
            return Err(SynthError::Count { flag, value });
        }
    }
    if std::fs::read_dir(root).is_ok_and(|mut d| d.next().is_some()) {
        return Err(SynthError::NotEmpty(root.to_owned()));
    }
    for class in [AttackClass::Real, AttackClass::Printed] {
        for s in 0..subjects {
            for n in 0..per_class {
                let dir = root.join(class.folder()).join(format!("s{s}_{n}"));
                std::fs::create_dir_all(&dir).map_err(|source| SynthError::Write {
                    path: dir.clone(),
                    source,
                })?;
                for k in 0..FRAMES as u32 {
                    let path = dir.join(format!("{k}.png"));
                    frame(class.is_attack(), (s, n, k), width, height, heads)
                        .save(&path)
                        .map_err(|source| SynthError::Encode { path, source })?;
                }
            }
        }
    }
    Ok(())
}

/// `synth-challenge`: a fake camera's clip for the head-pose challenge.
#[derive(Debug, clap::Args)]
pub struct ChallengeClipArgs {
    /// Folder to create (must not exist, or be empty).
    #[arg(long)]
    pub out: PathBuf,
    /// The steps, e.g. centre,left,right,centre.
    #[arg(long)]
    pub steps: String,
    /// A printed picture of the frontal head turned and tilted to imitate the steps, instead of
    /// the head performing them.
    #[arg(long)]
    pub picture: bool,
    /// Frames of the head facing the camera after the last step (for the five frames).
    #[arg(long, default_value_t = 8)]
    pub tail: u32,
    /// Milliseconds between frames (written to times.txt).
    #[arg(long, default_value_t = 200.0)]
    pub interval_ms: f64,
    /// Noise seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Writes a 320 × 240 clip of a drawn head performing `--steps` (or of its picture imitating
/// them): `NNN.png`, `challenge.txt`, `times.txt` and `meta.json`, the layout of
/// `scripts/challenge-evidence.py`. Returns the number of frames.
pub fn write_challenge_clip(a: &ChallengeClipArgs) -> Result<usize, SynthError> {
    let challenge = Challenge::parse(&a.steps).map_err(|why| SynthError::Steps {
        value: a.steps.clone(),
        why,
    })?;
    if !(0..=1000).contains(&a.tail) {
        return Err(SynthError::Count {
            flag: "tail",
            value: a.tail,
        });
    }
    if std::fs::read_dir(&a.out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(SynthError::NotEmpty(a.out.clone()));
    }
    let (mut heads, mut times) = head_track(&challenge, a.seed, a.interval_ms);
    let centre = heads.first().map(|(h, _)| DrawnHead {
        yaw: 0.0,
        pitch: 0.0,
        ..*h
    });
    for t in 0..a.tail {
        if let Some(h) = centre {
            heads.push((h, a.seed.wrapping_mul(7919) + u64::from(t)));
            times.push(times.last().map_or(0.0, |l| l + a.interval_ms));
        }
    }
    let wall = liveness_core::testing::WALL;
    let front = centre.map(|h| draw_head(320, 240, h, wall, a.seed ^ 0xABCD));
    let write = |path: PathBuf, bytes: &[u8]| {
        std::fs::write(&path, bytes).map_err(|source| SynthError::Write { path, source })
    };
    std::fs::create_dir_all(&a.out).map_err(|source| SynthError::Write {
        path: a.out.clone(),
        source,
    })?;
    for (i, (h, seed)) in heads.iter().enumerate() {
        let rgb = match (&front, a.picture) {
            // The print turned further than the head: it never helps.
            (Some(f), true) => imitating_print(f, 320, 240, h, *seed),
            _ => draw_head(320, 240, *h, wall, *seed),
        };
        let path = a.out.join(format!("{i:03}.png"));
        image::RgbImage::from_raw(320, 240, rgb)
            .ok_or_else(|| SynthError::Write {
                path: path.clone(),
                source: std::io::Error::other("frame size"),
            })?
            .save(&path)
            .map_err(|source| SynthError::Encode { path, source })?;
    }
    write(
        a.out.join("challenge.txt"),
        format!("{challenge}\n").as_bytes(),
    )?;
    let lines: Vec<String> = times.iter().map(|t| format!("{t:.0}")).collect();
    write(
        a.out.join("times.txt"),
        format!("{}\n", lines.join("\n")).as_bytes(),
    )?;
    let kind = if a.picture { "flat-turned" } else { "head" };
    write(
        a.out.join("meta.json"),
        format!(
            r#"{{"kind":"{kind}","subject":"drawn","split":"test","tail":{}}}"#,
            a.tail
        )
        .as_bytes(),
    )?;
    Ok(heads.len())
}
