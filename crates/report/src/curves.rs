//! Learning-curve figures: per figure of the [`layout`](crate::layout), one panel per trial
//! with its training and validation loss (or validation F1) per epoch, a legend, axis labels
//! and a y range shared across the figure.

use std::path::Path;

use plotters::prelude::*;
use sweep_store::EpochRow;

use crate::layout::Figure;
use crate::ReportError;

/// What a figure plots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Training and validation loss.
    Loss,
    /// Validation macro F1.
    ValF1,
}

/// One panel's trial: its epochs and how it stands.
pub struct Curve<'a> {
    pub epochs: &'a [EpochRow],
    /// `done`, `failed`, `running`, …: anything but `done` is marked in the panel's title.
    pub status: &'a str,
}

const PANEL: (u32, u32) = (340, 260);
const TITLE_HEIGHT: u32 = 50;

/// A plotted line: its legend, colour and the value it reads from an epoch.
type Series = (&'static str, RGBColor, fn(&EpochRow) -> f64);

fn series(metric: Metric) -> Vec<Series> {
    match metric {
        Metric::Loss => vec![
            ("train loss", RGBColor(31, 119, 180), |e| e.train_loss),
            ("val loss", RGBColor(255, 127, 14), |e| e.val_loss),
        ],
        Metric::ValF1 => vec![("val F1", RGBColor(44, 160, 44), |e| e.val_f1)],
    }
}

/// The y range shared by every panel: all finite values, with a little room.
fn y_range(curves: &[Curve], metric: Metric) -> (f64, f64) {
    let values: Vec<f64> = curves
        .iter()
        .flat_map(|c| c.epochs.iter())
        .flat_map(|e| series(metric).into_iter().map(move |(_, _, f)| f(e)))
        .filter(|v| v.is_finite())
        .collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    match metric {
        Metric::ValF1 => (0.0, hi.clamp(0.05, 1.0) * 1.05),
        Metric::Loss if lo.is_finite() => (lo.min(0.0), hi * 1.05 + 1e-6),
        Metric::Loss => (0.0, 1.0),
    }
}

fn draw_err(e: impl std::fmt::Display) -> ReportError {
    ReportError::Draw(e.to_string())
}

/// Draws `figure` with `curves[i]` for the trial at input index `i` into a PNG at `path`.
pub fn draw_figure(
    path: &Path,
    title: &str,
    figure: &Figure,
    curves: &[Curve],
    metric: Metric,
) -> Result<(), ReportError> {
    let size = (
        (PANEL.0 * figure.cols.max(1) as u32).max(640),
        PANEL.1 * figure.rows.max(1) as u32 + TITLE_HEIGHT,
    );
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let root = root.titled(title, ("sans-serif", 26)).map_err(draw_err)?;
    let cells = root.split_evenly((figure.rows.max(1), figure.cols.max(1)));
    let members: Vec<&Curve> = figure.panels.iter().map(|p| &curves[p.3]).collect();
    let owned: Vec<Curve> = members
        .iter()
        .map(|c| Curve {
            epochs: c.epochs,
            status: c.status,
        })
        .collect();
    let (y_lo, y_hi) = y_range(&owned, metric);
    let epochs = curves
        .iter()
        .flat_map(|c| c.epochs.iter().map(|e| e.epoch))
        .max()
        .unwrap_or(1)
        .max(2) as f64;
    let y_desc = match metric {
        Metric::Loss => "loss",
        Metric::ValF1 => "val macro F1",
    };
    for (row, col, panel_title, index) in &figure.panels {
        let area = &cells[row * figure.cols.max(1) + col];
        let curve = &curves[*index];
        let caption = if curve.status == "done" {
            panel_title.clone()
        } else {
            format!("{panel_title} ({})", curve.status)
        };
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 15))
            .margin(6)
            .x_label_area_size(32)
            .y_label_area_size(46)
            .build_cartesian_2d(1f64..epochs, y_lo..y_hi)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(y_desc)
            .x_labels(epochs as usize)
            .x_label_formatter(&|v| {
                if v.fract() == 0.0 {
                    format!("{v:.0}")
                } else {
                    String::new()
                }
            })
            .y_labels(5)
            .label_style(("sans-serif", 11))
            .axis_desc_style(("sans-serif", 12))
            .draw()
            .map_err(draw_err)?;
        for (label, colour, value) in series(metric) {
            let points: Vec<(f64, f64)> = curve
                .epochs
                .iter()
                .map(|e| (e.epoch as f64, value(e)))
                .filter(|(_, v)| v.is_finite())
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                .map_err(draw_err)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                });
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 2, colour.filled())),
                )
                .map_err(draw_err)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 11))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(draw_err)?;
    }
    root.present().map_err(draw_err)?;
    Ok(())
}
