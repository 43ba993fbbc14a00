//! What tests across the workspace share: float comparison (how far apart two vectors of model
//! outputs are, and one assertion with a readable failure), and drawn faces that the face
//! detector finds (tests make their own data; BlazeFace finds these cartoon faces with scores of
//! about 0.9).

/// The largest `error(a[i], b[i])` (as `f64`); infinite when the lengths differ or an error is
/// NaN (NaN never equals anything, NaN included: a model that outputs NaN on both sides is broken
/// on both).
fn max_error(a: &[f32], b: &[f32], error: impl Fn(f64, f64) -> f64) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let e = error(f64::from(*x), f64::from(*y));
            if e.is_nan() { f64::INFINITY } else { e }
        })
        .fold(0.0, f64::max)
}

/// Largest `|a[i] - b[i]|` (as `f64`); infinite when the lengths differ or either value is NaN,
/// or the two differ by an infinity.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    max_error(a, b, |x, y| (x - y).abs())
}

/// Largest error of logits `got` against `want`, relative where they are large:
/// `|got - want| / max(1, |want|)`. Logits, not probabilities: near 0 or 1 a probability hides
/// logits several units apart. Infinite on different lengths or any NaN, like [`max_abs_diff`].
pub fn max_logit_error(got: &[f32], want: &[f32]) -> f64 {
    max_error(got, want, |g, w| (g - w).abs() / w.abs().max(1.0))
}

/// Panics with both vectors' heads unless [`max_logit_error`] is within `tolerance`; returns it.
#[track_caller]
pub fn assert_logits_close(what: &str, got: &[f32], want: &[f32], tolerance: f64) -> f64 {
    let error = max_logit_error(got, want);
    assert!(
        error <= tolerance,
        "{what}: max |Δlogit| / max(1, |logit|) = {error:.3e} > {tolerance:.1e} (len {} vs {}; first {:?} vs {:?})",
        got.len(),
        want.len(),
        &got[..got.len().min(4)],
        &want[..want.len().min(4)]
    );
    error
}

/// Panics with both vectors' heads unless every pair is within `tolerance`; returns the largest
/// difference for the test to print.
#[track_caller]
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tolerance: f64) -> f64 {
    let diff = max_abs_diff(got, want);
    assert!(
        diff <= tolerance,
        "{what}: max |Δ| = {diff:.3e} > {tolerance:.1e} (len {} vs {}; first {:?} vs {:?})",
        got.len(),
        want.len(),
        &got[..got.len().min(4)],
        &want[..want.len().min(4)]
    );
    diff
}

/// A drawn face: centre and width in pixels (height is 1.3 × width).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrawnFace {
    /// Horizontal centre.
    pub cx: f32,
    /// Vertical centre.
    pub cy: f32,
    /// Width of the face oval.
    pub width: f32,
}

/// An RGB frame (`width × height × 3` bytes) of `background` with cartoon faces (hair, skin oval,
/// eyes, brows, nose, mouth), softened by a small blur as a camera would.
pub fn draw_faces(width: u32, height: u32, faces: &[DrawnFace], background: [u8; 3]) -> Vec<u8> {
    let mut canvas = Canvas::new(width, height, background);
    for f in faces {
        let (cx, cy, fw) = (f.cx, f.cy, f.width);
        let fh = fw * 1.3;
        canvas.ellipse(
            cx - fw / 2.0 - 8.0,
            cy - fh / 2.0 - 14.0,
            cx + fw / 2.0 + 8.0,
            cy + fh / 2.0 - 20.0,
            HAIR,
        );
        canvas.ellipse(
            cx - fw / 2.0,
            cy - fh / 2.0,
            cx + fw / 2.0,
            cy + fh / 2.0,
            SKIN,
        );
        let (ey, ex) = (cy - fh * 0.1, fw * 0.2);
        for side in [-1.0f32, 1.0] {
            let x = cx + side * ex;
            canvas.ellipse(
                x - fw * 0.09,
                ey - fw * 0.045,
                x + fw * 0.09,
                ey + fw * 0.045,
                [250, 250, 250],
            );
            canvas.ellipse(
                x - fw * 0.04,
                ey - fw * 0.04,
                x + fw * 0.04,
                ey + fw * 0.04,
                [40, 30, 30],
            );
            canvas.ellipse(
                x - fw * 0.1,
                ey - fw * 0.13,
                x + fw * 0.1,
                ey - fw * 0.09,
                HAIR,
            );
        }
        canvas.ellipse(
            cx - fw * 0.06,
            ey + fw * 0.05,
            cx + fw * 0.06,
            cy + fh * 0.12,
            [200, 150, 125],
        );
        canvas.ellipse(
            cx - fw * 0.18,
            cy + fh * 0.2,
            cx + fw * 0.18,
            cy + fh * 0.28,
            [170, 70, 70],
        );
    }
    canvas.finish()
}

const HAIR: [u8; 3] = [60, 40, 30];
const SKIN: [u8; 3] = [220, 180, 150];

/// A drawn head in 3-D: a face of `width` pixels centred at (`cx`, `cy`), turned by `yaw` degrees
/// (positive: to the person's left, which is the image's right in an unmirrored frame) and
/// tilted by `pitch` degrees (positive: up). Its nose stands in front of its eyes and its ears
/// behind them, so the key points move as a head's do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrawnHead {
    /// Horizontal centre.
    pub cx: f32,
    /// Vertical centre.
    pub cy: f32,
    /// Width of the face.
    pub width: f32,
    /// Turn, degrees.
    pub yaw: f32,
    /// Tilt, degrees.
    pub pitch: f32,
}

/// An RGB frame of `background` with `head` drawn in 3-D (orthographic, features that face away
/// hidden) and camera noise from `seed` (a real camera never gives the same frame twice).
pub fn draw_head(
    width: u32,
    height: u32,
    head: DrawnHead,
    background: [u8; 3],
    seed: u64,
) -> Vec<u8> {
    let fw = head.width;
    let (yaw, pitch) = (head.yaw.to_radians(), head.pitch.to_radians());
    // Head coordinates in face widths: x right, y down, z towards the camera.
    let turn = |[x, y, z]: [f32; 3]| -> [f32; 3] {
        let (x1, z1) = (
            x * yaw.cos() + z * yaw.sin(),
            -x * yaw.sin() + z * yaw.cos(),
        );
        let (y2, z2) = (
            y * pitch.cos() - z1 * pitch.sin(),
            y * pitch.sin() + z1 * pitch.cos(),
        );
        [x1, y2, z2]
    };
    let at = |p: [f32; 3]| [head.cx + p[0] * fw, head.cy + p[1] * fw, p[2]];
    // A point on the face's front surface (an ellipsoid 1 × 1.3 × 1.1 face widths).
    let surface = |x: f32, y: f32, out: f32| {
        let z = 0.55
            * (1.0 - (x / 0.5).powi(2) - (y / 0.65).powi(2))
                .max(0.0)
                .sqrt();
        [x, y, z + out]
    };
    let mut canvas = Canvas::new(width, height, background);
    let blob = |canvas: &mut Canvas, p: [f32; 3], rx: f32, ry: f32, colour: [u8; 3]| {
        let [x, y, _] = at(turn(p));
        canvas.ellipse(x - rx * fw, y - ry * fw, x + rx * fw, y + ry * fw, colour);
    };
    // Ears behind the face's plane, hair behind the head.
    for side in [-1.0f32, 1.0] {
        blob(
            &mut canvas,
            [side * 0.5, -0.02, -0.12],
            0.06,
            0.12,
            [205, 165, 135],
        );
    }
    blob(&mut canvas, [0.0, -0.2, -0.1], 0.58, 0.62, HAIR);
    blob(&mut canvas, [0.0, 0.0, 0.0], 0.5, 0.65, SKIN);
    let facing = |p: [f32; 3]| turn(p)[2] > 0.05;
    for side in [-1.0f32, 1.0] {
        let eye = surface(side * 0.2, -0.13, 0.0);
        if facing(eye) {
            let squeeze = (1.0 - (side * yaw.sin()).max(0.0) * 0.6).max(0.3);
            blob(&mut canvas, eye, 0.09 * squeeze, 0.045, [250, 250, 250]);
            blob(&mut canvas, eye, 0.04 * squeeze, 0.04, [40, 30, 30]);
            blob(
                &mut canvas,
                surface(side * 0.2, -0.24, 0.01),
                0.1 * squeeze,
                0.02,
                HAIR,
            );
        }
    }
    // The nose: a ridge from between the eyes to a tip well in front of them.
    for k in 0..6 {
        let t = k as f32 / 5.0;
        let p = surface(0.0, -0.1 + t * 0.2, t * 0.16);
        blob(&mut canvas, p, 0.04 + 0.02 * t, 0.03, [200, 150, 125]);
    }
    blob(
        &mut canvas,
        surface(0.0, 0.35, 0.0),
        0.16,
        0.05,
        [170, 70, 70],
    );
    canvas.noise(seed, 3.0);
    canvas.finish()
}

/// The wall behind test drawings.
pub const WALL: [u8; 3] = [70, 90, 110];

/// A drawn head performing `challenge` as a person would: for each step two frames of turning
/// and three of holding (turns and tilts of 30°), `interval_ms` apart, with a little sway;
/// each frame with its own noise seed (from `seed`). Returns the heads and their times (ms).
pub fn head_track(
    challenge: &crate::challenge::Challenge,
    seed: u64,
    interval_ms: f64,
) -> (Vec<(DrawnHead, u64)>, Vec<f64>) {
    use crate::challenge::Step;
    let mut heads = Vec::new();
    let (mut yaw, mut pitch) = (0.0f32, 0.0f32);
    for step in challenge.steps() {
        let (ty, tp) = match step {
            Step::Centre => (0.0, 0.0),
            Step::Left => (30.0, 0.0),
            Step::Right => (-30.0, 0.0),
            Step::Up => (0.0, 30.0),
            Step::Down => (0.0, -30.0),
        };
        for k in 0..5 {
            let a = ((k + 1) as f32 / 2.0).min(1.0);
            let n = heads.len() as f32;
            heads.push((
                DrawnHead {
                    cx: 160.0 + (n * 0.7).sin() * 3.0,
                    cy: 125.0 + (n * 0.5).cos() * 2.0,
                    width: 90.0,
                    yaw: yaw + (ty - yaw) * a,
                    pitch: pitch + (tp - pitch) * a,
                },
                seed.wrapping_mul(1000) + heads.len() as u64,
            ));
        }
        (yaw, pitch) = (ty, tp);
    }
    let times = (0..heads.len()).map(|i| i as f64 * interval_ms).collect();
    (heads, times)
}

/// The attacker's print: `front` (an RGB frame of the head facing the camera, `width × height`)
/// turned and tilted 1.5 times as far as `head` is, to imitate its pose (a print never gets
/// there by turning the same angle), before a grey wall, at one picture width's distance.
pub fn imitating_print(
    front: &[u8],
    width: u32,
    height: u32,
    head: &DrawnHead,
    seed: u64,
) -> Vec<u8> {
    turn_picture(
        front,
        width,
        height,
        1.5 * head.yaw,
        1.5 * head.pitch,
        1.0,
        [95, 95, 95],
        seed,
    )
}

/// A float RGB canvas for the drawings above.
struct Canvas {
    width: usize,
    height: usize,
    img: Vec<[f32; 3]>,
    /// Sensor noise added after the blur: (seed, amplitude).
    noise: Option<(u64, f32)>,
}

impl Canvas {
    fn new(width: u32, height: u32, background: [u8; 3]) -> Self {
        let (width, height) = (width as usize, height as usize);
        Canvas {
            width,
            height,
            img: vec![background.map(f32::from); width * height],
            noise: None,
        }
    }

    /// Fills the ellipse inscribed in the box (`x0`, `y0`)–(`x1`, `y1`).
    fn ellipse(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, colour: [u8; 3]) {
        let (w, h) = (self.width, self.height);
        let (cx, cy, rx, ry) = (
            (x0 + x1) / 2.0,
            (y0 + y1) / 2.0,
            (x1 - x0) / 2.0,
            (y1 - y0) / 2.0,
        );
        if !(rx > 0.0 && ry > 0.0) {
            return;
        }
        for y in (y0.max(0.0) as usize)..(y1.ceil().max(0.0) as usize).min(h) {
            for x in (x0.max(0.0) as usize)..(x1.ceil().max(0.0) as usize).min(w) {
                let (dx, dy) = ((x as f32 + 0.5 - cx) / rx, (y as f32 + 0.5 - cy) / ry);
                if dx * dx + dy * dy <= 1.0 {
                    self.img[y * w + x] = colour.map(f32::from);
                }
            }
        }
    }

    /// Sensor noise: uniform ±`amplitude` from a small seeded generator (xorshift), added by
    /// [`Canvas::finish`] after the lens's blur, as in a camera.
    fn noise(&mut self, seed: u64, amplitude: f32) {
        self.noise = Some((seed, amplitude));
    }

    fn add_noise(&mut self, seed: u64, amplitude: f32) {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for p in &mut self.img {
            for v in p.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let u = (state >> 40) as f32 / (1u64 << 24) as f32;
                *v += (u * 2.0 - 1.0) * amplitude;
            }
        }
    }

    /// Two passes of a 3×3 box blur, as a camera's softness, then 8-bit RGB.
    fn finish(mut self) -> Vec<u8> {
        let (w, h) = (self.width, self.height);
        for _ in 0..2 {
            let src = self.img.clone();
            for y in 0..h {
                for x in 0..w {
                    let mut acc = [0.0f32; 3];
                    let mut n = 0.0;
                    for yy in y.saturating_sub(1)..(y + 2).min(h) {
                        for xx in x.saturating_sub(1)..(x + 2).min(w) {
                            let p = src[yy * w + xx];
                            acc = [acc[0] + p[0], acc[1] + p[1], acc[2] + p[2]];
                            n += 1.0;
                        }
                    }
                    self.img[y * w + x] = acc.map(|v| v / n);
                }
            }
        }
        if let Some((seed, amplitude)) = self.noise {
            self.add_noise(seed, amplitude);
        }
        self.img
            .iter()
            .flat_map(|p| p.map(|v| v.round().clamp(0.0, 255.0) as u8))
            .collect()
    }
}

/// A flat picture of `frame` (RGB, `width × height`) held in front of a `background` wall,
/// turned by `yaw` and tilted by `pitch` degrees about its centre and seen in perspective from
/// `distance` picture widths: what an attacker does with a printed photo to imitate a head's
/// turn. Noise from `seed`.
#[allow(clippy::too_many_arguments)]
pub fn turn_picture(
    frame: &[u8],
    width: u32,
    height: u32,
    yaw: f32,
    pitch: f32,
    distance: f32,
    background: [u8; 3],
    seed: u64,
) -> Vec<u8> {
    let (w, h) = (width as usize, height as usize);
    let (yaw, pitch) = (yaw.to_radians(), pitch.to_radians());
    let f = distance * width as f32;
    let (cx, cy) = (width as f32 / 2.0, height as f32 / 2.0);
    // The picture's plane after the turn: origin at the centre, axes u (across) and v (down).
    let u = [yaw.cos(), 0.0, -yaw.sin()];
    let v = [
        -yaw.sin() * pitch.sin(),
        pitch.cos(),
        -yaw.cos() * pitch.sin(),
    ];
    let n = [
        u[1] * v[2] - u[2] * v[1],
        u[2] * v[0] - u[0] * v[2],
        u[0] * v[1] - u[1] * v[0],
    ];
    let mut canvas = Canvas::new(width, height, background);
    for y in 0..h {
        for x in 0..w {
            // The ray through this pixel meets the plane at origin (0, 0, f), normal n.
            let d = [x as f32 + 0.5 - cx, y as f32 + 0.5 - cy, f];
            let denom = d[0] * n[0] + d[1] * n[1] + d[2] * n[2];
            if denom.abs() < 1e-6 {
                continue;
            }
            let t = f * n[2] / denom;
            let p = [d[0] * t, d[1] * t, d[2] * t - f];
            let (a, b) = (
                p[0] * u[0] + p[1] * u[1] + p[2] * u[2],
                p[0] * v[0] + p[1] * v[1] + p[2] * v[2],
            );
            let (sx, sy) = ((a + cx).floor(), (b + cy).floor());
            if sx >= 0.0 && sy >= 0.0 && (sx as usize) < w && (sy as usize) < h {
                let i = (sy as usize * w + sx as usize) * 3;
                canvas.img[y * w + x] = [frame[i], frame[i + 1], frame[i + 2]].map(f32::from);
            }
        }
    }
    canvas.noise(seed, 3.0);
    canvas.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_lengths_and_nan_are_caught() {
        assert_eq!(max_abs_diff(&[1.0, 2.0], &[1.0, 2.5]), 0.5);
        assert_eq!(max_abs_diff(&[1.0], &[1.0, 2.0]), f64::INFINITY);
        assert_eq!(max_abs_diff(&[f32::NAN], &[1.0]), f64::INFINITY);
        assert_eq!(
            max_abs_diff(&[f32::NAN], &[f32::NAN]),
            f64::INFINITY,
            "NaN is never equal"
        );
        assert_eq!(assert_close("same", &[1.0], &[1.0], 0.0), 0.0);
        assert!(std::panic::catch_unwind(|| assert_close("far", &[1.0], &[2.0], 0.1)).is_err());
    }

    #[test]
    fn logit_errors_are_relative_above_one_and_absolute_below() {
        // Two saturated probabilities (both round to 1.0 in f32) whose logits differ by 3.
        assert_eq!(max_logit_error(&[17.0], &[20.0]), 3.0 / 20.0);
        assert_eq!(max_logit_error(&[0.25], &[0.5]), 0.25);
        assert_eq!(max_logit_error(&[-101.0], &[-100.0]), 0.01);
        assert_eq!(max_logit_error(&[f32::NAN], &[f32::NAN]), f64::INFINITY);
        assert_eq!(max_logit_error(&[1.0], &[1.0, 1.0]), f64::INFINITY);
        assert!(
            std::panic::catch_unwind(|| assert_logits_close("far", &[17.0], &[20.0], 1e-3))
                .is_err()
        );
    }
}
