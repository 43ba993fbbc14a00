//! PNG plots drawn by the trainer itself (plotters, with the DejaVu font embedded so no system
//! font is needed): training and validation loss and ACER/EER per epoch, and ROC curves.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

use crate::run_dir::{EpochRecord, RunDirError, write_atomic};

/// A plot could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// plotters failed drawing.
    #[error("cannot draw plot {path}: {message}")]
    Draw { path: String, message: String },
    /// The PNG could not be encoded.
    #[error("cannot encode plot {path}: {source}")]
    Encode {
        path: String,
        #[source]
        source: image::ImageError,
    },
    /// The PNG could not be written.
    #[error(transparent)]
    Write(#[from] RunDirError),
}

type Result<T> = std::result::Result<T, PlotError>;

const FONT: &str = "sans-serif";
const SIZE: (u32, u32) = (1000, 450);

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The embedded DejaVu Sans is a valid font; failure would only lose the labels.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

/// Renders into an RGB buffer with `draw`, then writes it as PNG atomically.
fn render(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(
        &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    ) -> std::result::Result<(), String>,
) -> Result<()> {
    register_font();
    let failed = |message: String| PlotError::Draw {
        path: crate::shown(path),
        message,
    };
    let mut buf = vec![0u8; (size.0 * size.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| failed(format!("{e:?}")))?;
        draw(&root).map_err(failed)?;
        root.present().map_err(|e| failed(format!("{e:?}")))?;
    }
    let img = image::RgbImage::from_raw(size.0, size.1, buf)
        .ok_or_else(|| failed("plot buffer has the wrong size".into()))?;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|source| PlotError::Encode {
            path: crate::shown(path),
            source,
        })?;
    Ok(write_atomic(path, &png)?)
}

type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

fn line_chart(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    x_max: f64,
    y_max: f64,
    series: &[Series<'_>],
) -> std::result::Result<(), String> {
    let err = |e: DrawingAreaErrorKind<_>| format!("{e:?}");
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    for (name, color, points) in series {
        let color = *color;
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Training/validation loss (left) and validation ACER and EER (right) per epoch of one run.
pub fn training_curves(records: &[EpochRecord], title: &str, path: &Path) -> Result<()> {
    let x_max = records.iter().map(|r| r.epoch).max().unwrap_or(1) as f64;
    let pts = |f: &dyn Fn(&EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        records
            .iter()
            .filter_map(|r| f(r).map(|v| (r.epoch as f64, v)))
            .collect()
    };
    let train = pts(&|r| r.train_loss);
    let val = pts(&|r| r.val_loss);
    let acer = pts(&|r| r.validation.acer.map(|v| 100.0 * v));
    let eer = pts(&|r| r.validation.eer.map(|v| 100.0 * v));
    let top = |v: &[(f64, f64)]| v.iter().map(|p| p.1).fold(0.0, f64::max);
    let loss_max = (top(&train).max(top(&val)) * 1.1).max(1e-3);
    let rate_max = (top(&acer).max(top(&eer)) * 1.1).max(1.0);
    render(path, SIZE, |root| {
        let (left, right) = root.split_horizontally(SIZE.0 / 2);
        line_chart(
            &left,
            &format!("{title}: loss"),
            "epoch",
            "BCE loss",
            x_max,
            loss_max,
            &[("train", BLUE, train), ("validation", RED, val)],
        )?;
        line_chart(
            &right,
            &format!("{title}: validation errors"),
            "epoch",
            "%",
            x_max,
            rate_max,
            &[("ACER", MAGENTA, acer), ("EER", GREEN, eer)],
        )
    })
}

/// ROC curves (false positive rate = live rejected, true positive rate = attacks caught).
pub fn roc_curves(curves: &[(String, Vec<(f64, f64)>)], title: &str, path: &Path) -> Result<()> {
    let palette = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    let series: Vec<Series<'_>> = curves
        .iter()
        .enumerate()
        .map(|(i, (name, pts))| (name.as_str(), palette[i % palette.len()], pts.clone()))
        .collect();
    render(path, (560, 520), |root| {
        line_chart(
            root,
            title,
            "live samples rejected (FPR)",
            "attacks detected (TPR)",
            1.0,
            1.0,
            &series,
        )
    })
}
