//! What tests across the workspace share: float comparison (how far apart two vectors of model
//! outputs are, and one assertion with a readable failure), and drawn faces that the face
//! detector finds (tests make their own data; BlazeFace finds these cartoon faces with scores of
//! about 0.9).

/// Largest `|a[i] - b[i]|` (as `f64`); infinite when the lengths differ or a value is not finite
/// where the other is.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let d = f64::from(*x) - f64::from(*y);
            if d.is_nan() && x.to_bits() != y.to_bits() {
                f64::INFINITY
            } else {
                d.abs()
            }
        })
        .fold(0.0, |m, d| if d.is_nan() { m } else { m.max(d) })
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
    let (w, h) = (width as usize, height as usize);
    let mut img: Vec<[f32; 3]> = vec![background.map(f32::from); w * h];
    let ellipse = |x0: f32, y0: f32, x1: f32, y1: f32, colour: [u8; 3], img: &mut Vec<[f32; 3]>| {
        let (cx, cy, rx, ry) = (
            (x0 + x1) / 2.0,
            (y0 + y1) / 2.0,
            (x1 - x0) / 2.0,
            (y1 - y0) / 2.0,
        );
        for y in (y0.max(0.0) as usize)..(y1.ceil().max(0.0) as usize).min(h) {
            for x in (x0.max(0.0) as usize)..(x1.ceil().max(0.0) as usize).min(w) {
                let (dx, dy) = ((x as f32 + 0.5 - cx) / rx, (y as f32 + 0.5 - cy) / ry);
                if dx * dx + dy * dy <= 1.0 {
                    img[y * w + x] = colour.map(f32::from);
                }
            }
        }
    };
    for f in faces {
        let (cx, cy, fw) = (f.cx, f.cy, f.width);
        let fh = fw * 1.3;
        ellipse(
            cx - fw / 2.0 - 8.0,
            cy - fh / 2.0 - 14.0,
            cx + fw / 2.0 + 8.0,
            cy + fh / 2.0 - 20.0,
            [60, 40, 30],
            &mut img,
        );
        ellipse(
            cx - fw / 2.0,
            cy - fh / 2.0,
            cx + fw / 2.0,
            cy + fh / 2.0,
            [220, 180, 150],
            &mut img,
        );
        let (ey, ex) = (cy - fh * 0.1, fw * 0.2);
        for side in [-1.0f32, 1.0] {
            let x = cx + side * ex;
            ellipse(
                x - fw * 0.09,
                ey - fw * 0.045,
                x + fw * 0.09,
                ey + fw * 0.045,
                [250, 250, 250],
                &mut img,
            );
            ellipse(
                x - fw * 0.04,
                ey - fw * 0.04,
                x + fw * 0.04,
                ey + fw * 0.04,
                [40, 30, 30],
                &mut img,
            );
            ellipse(
                x - fw * 0.1,
                ey - fw * 0.13,
                x + fw * 0.1,
                ey - fw * 0.09,
                [60, 40, 30],
                &mut img,
            );
        }
        ellipse(
            cx - fw * 0.06,
            ey + fw * 0.05,
            cx + fw * 0.06,
            cy + fh * 0.12,
            [200, 150, 125],
            &mut img,
        );
        ellipse(
            cx - fw * 0.18,
            cy + fh * 0.2,
            cx + fw * 0.18,
            cy + fh * 0.28,
            [170, 70, 70],
            &mut img,
        );
    }
    // Two passes of a 3×3 box blur.
    for _ in 0..2 {
        let src = img.clone();
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
                img[y * w + x] = acc.map(|v| v / n);
            }
        }
    }
    img.iter()
        .flat_map(|p| p.map(|v| v.round().clamp(0.0, 255.0) as u8))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_lengths_and_nan_are_caught() {
        assert_eq!(max_abs_diff(&[1.0, 2.0], &[1.0, 2.5]), 0.5);
        assert_eq!(max_abs_diff(&[1.0], &[1.0, 2.0]), f64::INFINITY);
        assert_eq!(max_abs_diff(&[f32::NAN], &[1.0]), f64::INFINITY);
        assert_eq!(assert_close("same", &[1.0], &[1.0], 0.0), 0.0);
        assert!(std::panic::catch_unwind(|| assert_close("far", &[1.0], &[2.0], 0.1)).is_err());
    }
}
