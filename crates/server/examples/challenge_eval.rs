//! Checks rendered challenge sequences (`scripts/challenge-evidence.py`) with the product's own
//! detector and rules, and prints one JSON line per sequence (its outcome, depth and per-frame
//! poses, for choosing thresholds) and a summary per kind and split.
//!
//!     cargo run --release -p liveness-server --example challenge_eval -- runs/challenge-evidence
//!
//! With `--live DATA`, it also reads the five-frame live samples of `DATA/real` and reports how
//! often their small natural motion is read as a step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use liveness_core::Frame;
use liveness_core::challenge::{
    Challenge, HOLD_FRAMES, Step, TrackFrame, check_track, distinct_frames, homography_residual,
    pose,
};
use liveness_core::face::MIN_SCORE;
use liveness_runtime::FaceDetector;
use liveness_runtime::challenge::track_faces;

fn load(path: &Path) -> Result<image::RgbImage> {
    Ok(image::open(path)
        .with_context(|| format!("reading {}", path.display()))?
        .into_rgb8())
}

/// The frames of a sequence folder, decoded, in name order.
fn load_sequence(dir: &Path) -> Result<Vec<image::RgbImage>> {
    frames_in(dir)?.iter().map(|p| load(p)).collect()
}

fn views(images: &[image::RgbImage]) -> Vec<Frame<'_>> {
    images
        .iter()
        .map(|i| Frame::rgb(i.as_raw(), i.width(), i.height()))
        .collect()
}

fn frames_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("png" | "jpg")))
        .collect();
    files.sort();
    Ok(files)
}

/// Per (kind, split): sequences, passed, failures by code.
type Tally = (usize, usize, BTreeMap<String, usize>);

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, live) = match args.as_slice() {
        [dir] => (PathBuf::from(dir), None),
        [dir, flag, data] if flag == "--live" => (PathBuf::from(dir), Some(PathBuf::from(data))),
        _ => bail!("usage: challenge_eval SEQUENCES [--live DATA]"),
    };
    let detector = FaceDetector::new(MIN_SCORE)?;
    let mut summary: BTreeMap<(String, String), Tally> = BTreeMap::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("challenge.txt").is_file())
        .collect();
    names.sort();
    for seq in names {
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(seq.join("meta.json"))?)?;
        let kind = meta["kind"].as_str().unwrap_or("?").to_owned();
        let split = meta["split"].as_str().unwrap_or("?").to_owned();
        let challenge =
            Challenge::parse(std::fs::read_to_string(seq.join("challenge.txt"))?.trim())
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("{}/challenge.txt", seq.display()))?;
        let times: Vec<f64> = std::fs::read_to_string(seq.join("times.txt"))?
            .lines()
            .map(|l| l.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .with_context(|| format!("{}/times.txt", seq.display()))?;
        let images = load_sequence(&seq)?;
        let frames = views(&images);
        let outcome = match distinct_frames(&frames) {
            Err(f) => Err(f),
            Ok(()) => match track_faces(&detector, &frames)? {
                Err(f) => Err(f),
                Ok(faces) => {
                    let track: Vec<TrackFrame> = faces
                        .iter()
                        .zip(&times)
                        .map(|(face, &t_ms)| TrackFrame { t_ms, face: *face })
                        .collect();
                    let poses: Vec<Option<[f32; 2]>> = faces
                        .iter()
                        .map(|f| pose(f).map(|p| [p.yaw, p.pitch]))
                        .collect();
                    let residuals: Vec<Option<f32>> = faces
                        .iter()
                        .map(|f| homography_residual(&faces[0].keypoints, &f.keypoints))
                        .collect();
                    let result = check_track(&challenge, &track, None);
                    println!(
                        "{}",
                        serde_json::json!({
                            "name": seq.file_name().map(|n| n.to_string_lossy().into_owned()),
                            "kind": kind, "split": split, "challenge": challenge.to_string(),
                            "code": result.as_ref().map_or_else(|f| f.code(), |_| "pass"),
                            "detail": result.as_ref().map_or_else(|f| f.to_string(), |r| format!("depth {:.3}", r.depth)),
                            "depth": liveness_core::challenge::depth(&track),
                            "poses": poses, "residuals": residuals,
                            "mouth": faces.iter().map(|f| {
                                let k = f.keypoints;
                                let (ex, ey) = (k[1][0] - k[0][0], k[1][1] - k[0][1]);
                                let iod = (ex * ex + ey * ey).sqrt();
                                let (mx, my) = (k[3][0] - (k[0][0] + k[1][0]) / 2.0, k[3][1] - (k[0][1] + k[1][1]) / 2.0);
                                (mx * ex + my * ey) / (iod * iod)
                            }).collect::<Vec<f32>>(),
                            "eyes": faces.iter().map(|f| {
                                let [a, b] = [f.keypoints[0], f.keypoints[1]];
                                ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
                            }).collect::<Vec<f32>>(),
                        })
                    );
                    result
                }
            },
        };
        let entry = summary.entry((kind, split)).or_default();
        entry.0 += 1;
        match outcome {
            Ok(_) => entry.1 += 1,
            Err(f) => *entry.2.entry(f.code().to_owned()).or_default() += 1,
        }
    }
    eprintln!("kind            split   sequences  passed  failures");
    for ((kind, split), (n, passed, fails)) in &summary {
        eprintln!(
            "{kind:<15} {split:<7} {n:>9}  {passed:>6}  {}",
            fails
                .iter()
                .map(|(c, k)| format!("{c} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(data) = live {
        natural_motion(&detector, &data.join("real"))?;
    }
    Ok(())
}

/// How often a live five-frame sample's natural motion reads as a held step.
fn natural_motion(detector: &FaceDetector, real: &Path) -> Result<()> {
    let mut samples = 0;
    let mut misread = 0;
    let mut residuals = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(real)
        .with_context(|| format!("listing {}", real.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    dirs.sort();
    for dir in dirs {
        let images = load_sequence(&dir)?;
        let frames = views(&images);
        let Ok(faces) = track_faces(detector, &frames)? else {
            continue;
        };
        let Some(centre) = faces.first().and_then(pose) else {
            continue;
        };
        samples += 1;
        let turned = |step: Step| {
            faces
                .iter()
                .filter_map(pose)
                .map(|p| step.reached(p.relative_to(centre)))
                .collect::<Vec<bool>>()
                .windows(HOLD_FRAMES)
                .any(|w| w.iter().all(|&b| b))
        };
        if Step::TURNS.into_iter().any(turned) {
            misread += 1;
        }
        for f in &faces[1..] {
            if let Some(r) = homography_residual(&faces[0].keypoints, &f.keypoints) {
                let [a, b] = [f.keypoints[0], f.keypoints[1]];
                residuals.push(r / ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt());
            }
        }
    }
    residuals.sort_by(f32::total_cmp);
    let q = |p: f64| residuals[((residuals.len() - 1) as f64 * p) as usize];
    eprintln!(
        "live samples of {}: {samples} with one face in every frame; natural motion read as a held turn in {misread} ({:.1} %)",
        real.display(),
        100.0 * misread as f64 / samples.max(1) as f64
    );
    if !residuals.is_empty() {
        eprintln!(
            "homography residual of live frames against their first (eye distances): median {:.4}, 90th percentile {:.4}, max {:.4}",
            q(0.5),
            q(0.9),
            q(1.0)
        );
    }
    Ok(())
}
