//! `synth-attacks`: presentation attacks synthesised from live samples, so that a model has seen a
//! screen (and more kinds of print) before it meets one.
//!
//! Each attack re-photographs a live sample's frames through a simulated medium held in front of
//! the camera, in a room: the medium (a print or a screen) shows the live frame, is scaled,
//! turned, bent and shaken by hand from frame to frame, framed by a paper border or a bezel,
//! sometimes held by fingers, lit by glare, and the camera adds noise and blur. What makes each
//! medium look like itself is an effect with seeded parameters:
//! - print: halftone dots, paper texture, colour cast and lost contrast, sheen, a bend; a print
//!   is still, so its five frames show the first live frame;
//! - screen: moiré from the pixel grid, a display's gamma and gamut, a blue cast, rolling
//!   refresh bands, glare, a black bezel; a replay plays, so its frames follow the live ones.
//!
//! Effects are grouped into [`Family`]s (two of each medium) so that a model can be trained on some
//! families and validated on the others: generalisation to attack styles it has not seen.
//! The output is a dataset in the usual layout; sample names keep the live sample's subject and
//! session (`0001_scr-phone_00_00_01_3` from `0001_00_00_01_3`), so that folds by person and
//! session still hold. Live samples are never copied: pass the source folder to training as well
//! (`train --data` takes one folder, so `--link-source` links the source's class folders' samples
//! into the output instead).

use std::f32::consts::PI;
use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use liveness_core::{AttackClass, FRAMES};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::dataset::{DataError, SubjectRule, decode_frame, scan};
use crate::shown;
use crate::synthetic::SynthError;

/// A family of synthetic attacks: one medium and one style of effects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Family {
    /// A glossy photo print: border, colour cast, lost contrast, sheen, bend.
    PrtGloss,
    /// A matte halftone print (an office printer): dots, paper texture, pale colours, border.
    PrtHalftone,
    /// A phone screen held close: bezel, moiré, gamma, blue cast, glare, fingers.
    ScrPhone,
    /// A monitor or tablet filling most of the frame: rolling refresh, fine moiré, gamut, glare.
    ScrMonitor,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 4] = [
        Family::PrtGloss,
        Family::PrtHalftone,
        Family::ScrPhone,
        Family::ScrMonitor,
    ];

    /// The name in sample folders and flags.
    pub fn name(self) -> &'static str {
        match self {
            Family::PrtGloss => "prt-gloss",
            Family::PrtHalftone => "prt-halftone",
            Family::ScrPhone => "scr-phone",
            Family::ScrMonitor => "scr-monitor",
        }
    }

    /// The attack class the family imitates.
    pub fn class(self) -> AttackClass {
        match self {
            Family::PrtGloss | Family::PrtHalftone => AttackClass::Printed,
            Family::ScrPhone | Family::ScrMonitor => AttackClass::Replay,
        }
    }

    fn is_screen(self) -> bool {
        self.class() == AttackClass::Replay
    }
}

/// Why attacks could not be synthesised.
#[derive(Debug, thiserror::Error)]
pub enum AttackError {
    /// The source folder cannot be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The source has no live samples.
    #[error("--data {} has no live samples (real/) to make attacks from", shown(.0))]
    NoLive(PathBuf),
    /// The output cannot be written (not empty, a folder, link or frame), as for `synth`.
    #[error(transparent)]
    Output(#[from] SynthError),
}

/// `synth-attacks`: write synthetic attacks made from a dataset's live samples.
#[derive(Debug, clap::Args)]
pub struct AttackArgs {
    /// Source dataset; its live samples (real/) are re-photographed.
    #[arg(long)]
    pub data: PathBuf,
    /// Folder to create (must not exist, or be empty).
    #[arg(long)]
    pub out: PathBuf,
    /// Families to make (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub families: Vec<Family>,
    /// Seed of every effect's parameters.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also link every source sample (all classes) into the output, so that it is one dataset
    /// for `train --data` (symbolic links: nothing is copied).
    #[arg(long)]
    pub link_source: bool,
}

/// Writes the attacks; returns how many samples were written.
pub fn write_attacks(a: &AttackArgs) -> Result<usize, AttackError> {
    if std::fs::read_dir(&a.out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(SynthError::NotEmpty(a.out.clone()).into());
    }
    let samples = scan(&a.data, &SubjectRule::default())?;
    let live: Vec<_> = samples
        .iter()
        .filter(|s| s.class == AttackClass::Real)
        .collect();
    if live.is_empty() {
        return Err(AttackError::NoLive(a.data.clone()));
    }
    let families = if a.families.is_empty() {
        Family::ALL.to_vec()
    } else {
        a.families.clone()
    };
    let write = |path: &Path| {
        std::fs::create_dir_all(path).map_err(|source| SynthError::Write {
            path: path.to_owned(),
            source,
        })
    };
    if a.link_source {
        for s in &samples {
            let dir = a.out.join(s.class.folder());
            write(&dir)?;
            let target = std::path::absolute(&s.path).map_err(|source| SynthError::Write {
                path: s.path.clone(),
                source,
            })?;
            let link = dir.join(s.path.file_name().unwrap_or_default());
            symlink(&target, &link).map_err(|source| SynthError::Write { path: link, source })?;
        }
    }
    let jobs: Vec<(usize, Family)> = (0..live.len())
        .flat_map(|i| families.iter().map(move |f| (i, *f)))
        .collect();
    jobs.par_iter().try_for_each(|&(i, family)| {
        let sample = live[i];
        let name = sample
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The subject stays first, the session and run last: folds by person and session hold.
        let (subject, rest) = name.split_once('_').unwrap_or((&name, ""));
        let dir = a
            .out
            .join(family.class().folder())
            .join(format!("{subject}_{}_{rest}", family.name()));
        write(&dir)?;
        let frames: Vec<RgbImage> = sample
            .frames
            .iter()
            .map(|p| decode_frame(p))
            .collect::<Result<_, _>>()?;
        // The room behind the medium: the top of another sample's frame (wall and ceiling,
        // above the head, so no second face), stretched and blurred.
        let room_sample = live[(i * 7 + 3) % live.len()];
        let room = decode_frame(&room_sample.frames[0])?;
        let top = image::imageops::crop_imm(&room, 0, 0, room.width(), (room.height() / 4).max(1))
            .to_image();
        let mut rng = ChaCha8Rng::seed_from_u64(mix(a.seed, i as u64, family as u64));
        let attack = Attack::draw(family, &mut rng);
        for k in 0..FRAMES {
            let content = if family.is_screen() {
                &frames[k]
            } else {
                &frames[0]
            };
            let out = attack.render(content, &top, k, &mut rng);
            let path = dir.join(format!("{k}.jpg"));
            out.save(&path)
                .map_err(|source| SynthError::Encode { path, source })?;
        }
        Ok::<(), AttackError>(())
    })?;
    Ok(jobs.len())
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(_target: &Path, _link: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "--link-source needs symbolic links (unix)",
    ))
}

fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut x =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 31;
    x.wrapping_mul(0xBF58_476D_1CE4_E5B9)
}

/// One attack's parameters, drawn once per sample (the five frames are one recording).
#[derive(Debug, Clone)]
struct Attack {
    family: Family,
    /// Zoom into the live frame's centre before it is shown (a portrait print, a video
    /// framed on the face).
    zoom: f32,
    /// Medium width over the frame width.
    scale: f32,
    /// Medium centre, in frame fractions.
    centre: (f32, f32),
    /// Rotation in radians.
    angle: f32,
    /// Bend: horizontal squeeze towards the medium's sides (0 = flat).
    bend: f32,
    /// Border width over the medium width, and its colour.
    border: (f32, [f32; 3]),
    /// Per-channel gain and offset (colour cast, lost contrast, gamut).
    gain: [f32; 3],
    offset: f32,
    /// Display gamma (1 for prints).
    gamma: f32,
    /// Saturation factor.
    saturation: f32,
    /// Moiré / halftone: period in pixels, angle, amplitude.
    pattern: (f32, f32, f32),
    /// Paper texture amplitude.
    paper: f32,
    /// Rolling refresh band amplitude.
    rolling: f32,
    /// Glare: centre (frame fractions), radius (fraction of width), strength.
    glare: (f32, f32, f32, f32),
    /// Fingers on the medium's edge.
    fingers: bool,
    /// Hand shake between frames, pixels.
    shake: f32,
    /// Camera noise amplitude (0–255 scale).
    noise: f32,
    /// Room darkening.
    room_light: f32,
}

impl Attack {
    fn draw(family: Family, rng: &mut ChaCha8Rng) -> Attack {
        let mut r = |lo: f32, hi: f32| rng.random_range(lo..hi);
        let (scale, border, gamma, saturation, pattern, paper, rolling, fingers) = match family {
            Family::PrtGloss => (
                r(0.55, 0.95),
                (r(0.02, 0.08), [r(0.85, 1.0); 3]),
                1.0,
                r(0.8, 1.05),
                (0.0, 0.0, 0.0),
                r(0.0, 0.02),
                0.0,
                r(0.0, 1.0) < 0.6,
            ),
            Family::PrtHalftone => (
                r(0.6, 1.0),
                (r(0.03, 0.1), [r(0.88, 1.0); 3]),
                1.0,
                r(0.55, 0.85),
                (r(2.5, 4.5), r(0.0, PI / 2.0), r(0.12, 0.3)),
                r(0.02, 0.06),
                0.0,
                r(0.0, 1.0) < 0.6,
            ),
            Family::ScrPhone => (
                r(0.45, 0.8),
                (r(0.04, 0.12), [r(0.0, 0.08); 3]),
                r(0.7, 0.9),
                r(1.05, 1.35),
                (r(3.0, 9.0), r(0.0, PI), r(0.03, 0.09)),
                0.0,
                r(0.0, 0.04),
                r(0.0, 1.0) < 0.7,
            ),
            Family::ScrMonitor => (
                r(0.85, 1.25),
                (r(0.01, 0.05), [r(0.0, 0.15); 3]),
                r(0.75, 0.95),
                r(1.0, 1.3),
                (r(6.0, 16.0), r(0.0, PI), r(0.02, 0.06)),
                0.0,
                r(0.03, 0.1),
                false,
            ),
        };
        let screen = family.is_screen();
        let cast = if screen {
            [r(0.85, 1.0), r(0.92, 1.05), r(1.0, 1.15)]
        } else {
            [r(0.95, 1.1), r(0.9, 1.02), r(0.75, 0.95)]
        };
        let contrast = if screen { r(0.9, 1.1) } else { r(0.7, 0.9) };
        Attack {
            family,
            zoom: if screen { r(1.0, 1.4) } else { r(1.0, 1.8) },
            scale,
            centre: (r(0.4, 0.6), r(0.4, 0.6)),
            angle: r(-0.12, 0.12),
            bend: if screen { 0.0 } else { r(0.0, 0.12) },
            border,
            gain: cast.map(|c| c * contrast),
            offset: if screen { r(-8.0, 8.0) } else { r(10.0, 35.0) },
            gamma,
            saturation,
            pattern,
            paper,
            rolling,
            glare: (
                r(0.2, 0.8),
                r(0.15, 0.6),
                r(0.1, 0.35),
                if screen { r(30.0, 90.0) } else { r(15.0, 70.0) },
            ),
            fingers,
            shake: r(0.5, 3.0),
            noise: r(2.0, 7.0),
            room_light: r(0.45, 0.9),
        }
    }

    /// Frame `k`: `content` shown on the medium, in front of `room`.
    fn render(
        &self,
        content: &RgbImage,
        room: &RgbImage,
        k: usize,
        rng: &mut ChaCha8Rng,
    ) -> RgbImage {
        let (w, h) = content.dimensions();
        let (wf, hf) = (w as f32, h as f32);
        let room = image::imageops::blur(
            &image::imageops::resize(room, w, h, image::imageops::FilterType::Triangle),
            4.0,
        );
        // What the medium shows: the live frame's centre at `zoom`, resampled as a printed or
        // displayed copy (it loses detail).
        let (zw, zh) = (
            ((wf / self.zoom) as u32).clamp(1, w),
            ((hf / self.zoom) as u32).clamp(1, h),
        );
        let shown = image::imageops::resize(
            &image::imageops::crop_imm(content, (w - zw) / 2, (h - zh) / 2, zw, zh).to_image(),
            w,
            h,
            image::imageops::FilterType::Triangle,
        );
        let soft = image::imageops::blur(&shown, if self.family.is_screen() { 0.6 } else { 0.9 });
        let shake = (
            rng.random_range(-self.shake..=self.shake),
            rng.random_range(-self.shake..=self.shake),
        );
        let angle = self.angle + rng.random_range(-0.01..=0.01);
        let (sin, cos) = angle.sin_cos();
        // The medium's size on the frame (keeping the content's aspect) with its border.
        let mw = wf * self.scale;
        let mh = mw * hf / wf;
        let (cx, cy) = (self.centre.0 * wf + shake.0, self.centre.1 * hf + shake.1);
        let bw = self.border.0 * mw;
        let (period, pattern_angle, pattern_amp) = self.pattern;
        let (ps, pc) = pattern_angle.sin_cos();
        let band = k as f32 / FRAMES as f32;
        let mut out = RgbImage::new(w, h);
        for (x, y, px) in out.enumerate_pixels_mut() {
            let (xf, yf) = (x as f32 + 0.5, y as f32 + 0.5);
            // Frame → medium coordinates (inverse rotation about the medium's centre).
            let (dx, dy) = (xf - cx, yf - cy);
            let (mut u, v) = (cos * dx + sin * dy, -sin * dx + cos * dy);
            // A bent print: its sides recede, squeezing the content towards them.
            if self.bend > 0.0 {
                let t = (u / (mw / 2.0 + bw)).clamp(-1.0, 1.0);
                u /= 1.0 - self.bend * t * t;
            }
            let (half_w, half_h) = (mw / 2.0, mh / 2.0);
            let inside_border = u.abs() <= half_w + bw && v.abs() <= half_h + bw;
            let mut rgb = if u.abs() <= half_w && v.abs() <= half_h {
                let su = (u + half_w) / mw * wf;
                let sv = (v + half_h) / mh * hf;
                self.medium(sample(&soft, su, sv), su, sv, hf, band)
            } else if inside_border {
                self.border.1.map(|c| c * 255.0)
            } else {
                let p = room.get_pixel(x, y).0;
                p.map(|c| f32::from(c) * self.room_light)
            };
            if inside_border {
                // Moiré or halftone lives in camera space, over the whole medium.
                if pattern_amp > 0.0 && period > 0.0 {
                    let t = 2.0 * PI * (pc * xf + ps * yf) / period;
                    let t2 = 2.0 * PI * (-ps * xf + pc * yf) / period;
                    let m = if self.family.is_screen() {
                        t.sin()
                    } else {
                        t.cos() * t2.cos()
                    };
                    rgb = rgb.map(|c| c * (1.0 + pattern_amp * m));
                }
                // Glare / sheen: a soft bright spot.
                let (gx, gy, gr, gs) = self.glare;
                let d2 = ((xf - gx * wf).powi(2) + (yf - gy * hf).powi(2)) / (gr * wf).powi(2);
                rgb = rgb.map(|c| c + gs * (-d2).exp());
            }
            if self.fingers {
                // Fingertips over the medium's lower corners.
                for side in [-1.0f32, 1.0] {
                    let fx = cx + side * (half_w + bw * 0.5);
                    let fy = cy + half_h * 0.6;
                    let e = ((xf - fx) / (0.05 * wf)).powi(2) + ((yf - fy) / (0.09 * hf)).powi(2);
                    if e < 1.0 {
                        rgb = [205.0, 150.0, 120.0].map(|c| c * (0.85 + 0.15 * (1.0 - e)));
                    }
                }
            }
            let n = self.noise;
            *px = Rgb(rgb.map(|c| (c + rng.random_range(-n..=n)).round().clamp(0.0, 255.0) as u8));
        }
        out
    }

    /// The medium's own look at content coordinates (`su`, `sv`) of a frame `hf` tall.
    fn medium(&self, rgb: [f32; 3], su: f32, sv: f32, hf: f32, band: f32) -> [f32; 3] {
        let grey = (rgb[0] + rgb[1] + rgb[2]) / 3.0;
        let mut c: [f32; 3] = std::array::from_fn(|i| {
            let saturated = grey + (rgb[i] - grey) * self.saturation;
            let lin = (saturated / 255.0).clamp(0.0, 1.0).powf(self.gamma) * 255.0;
            lin * self.gain[i] + self.offset
        });
        if self.paper > 0.0 {
            // Paper fibres: a fixed, low-frequency texture.
            let t = ((su * 0.37).sin() * (sv * 0.53).cos() + (su * 1.7 + sv * 1.3).sin()) * 0.5;
            c = c.map(|v| v * (1.0 + self.paper * t));
        }
        if self.rolling > 0.0 {
            // Rolling refresh: a darker band that moves down from frame to frame.
            let y = (sv / hf + band).fract();
            c = c.map(|v| v * (1.0 - self.rolling * (2.0 * PI * y).sin().max(0.0)));
        }
        c
    }
}

/// Bilinear sample of `img` at pixel-centre coordinates (`x`, `y`), clamped to the edges.
fn sample(img: &RgbImage, x: f32, y: f32) -> [f32; 3] {
    let (w, h) = img.dimensions();
    let x = (x - 0.5).clamp(0.0, (w - 1) as f32);
    let y = (y - 0.5).clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let p = |xx, yy| img.get_pixel(xx, yy).0.map(f32::from);
    let (a, b, c, d) = (p(x0, y0), p(x1, y0), p(x0, y1), p(x1, y1));
    std::array::from_fn(|i| {
        (a[i] * (1.0 - fx) + b[i] * fx) * (1.0 - fy) + (c[i] * (1.0 - fx) + d[i] * fx) * fy
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live_frame(seed: u32) -> RgbImage {
        RgbImage::from_fn(160, 120, |x, y| {
            Rgb([(x * 3 + seed) as u8, (y * 2) as u8, ((x + y) % 256) as u8])
        })
    }

    #[test]
    fn every_family_is_seeded_and_changes_the_frame() {
        let (content, room) = (live_frame(0), live_frame(40));
        for family in Family::ALL {
            let render = |seed| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let a = Attack::draw(family, &mut rng);
                a.render(&content, &room, 1, &mut rng)
            };
            let (a, b, c) = (render(1), render(1), render(2));
            assert_eq!(a, b, "{family:?}: same seed, same frame");
            assert_ne!(a, c, "{family:?}: another seed, another attack");
            let diff: f64 = a
                .as_raw()
                .iter()
                .zip(content.as_raw())
                .map(|(x, y)| f64::from((i16::from(*x) - i16::from(*y)).abs()))
                .sum::<f64>()
                / a.as_raw().len() as f64;
            assert!(diff > 5.0, "{family:?}: mean change {diff}");
        }
    }

    #[test]
    fn a_screen_has_a_dark_bezel_and_a_print_a_light_border() {
        let (content, room) = (live_frame(0), live_frame(40));
        for family in Family::ALL {
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            let mut a = Attack::draw(family, &mut rng);
            // No tilt, glare, pattern, fingers or noise: the border's pixels show as drawn.
            (a.angle, a.glare.3, a.pattern.2, a.fingers, a.noise, a.shake) =
                (0.0, 0.0, 0.0, false, 0.0, 0.0);
            a.border.0 = 0.1;
            a.scale = 0.6;
            a.centre = (0.5, 0.5);
            a.bend = 0.0;
            let f = a.render(&content, &room, 0, &mut rng);
            // Just inside the border's left edge, on the medium's centre row.
            let mw = 160.0 * a.scale;
            let x = (80.0 - mw / 2.0 - 0.05 * mw).round() as u32;
            let p = f.get_pixel(x.min(159), 60).0;
            let mean = p.iter().map(|&v| f32::from(v)).sum::<f32>() / 3.0;
            if family.is_screen() {
                assert!(mean < 50.0, "{family:?}: bezel {p:?}");
            } else {
                assert!(mean > 200.0, "{family:?}: border {p:?}");
            }
        }
    }
}
