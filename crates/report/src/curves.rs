//! Learning-curve figures: per figure of the [`layout`](crate::layout), one panel per trial
//! with its training and validation loss (or validation F1) per epoch, a legend, axis labels
//! and a y range shared across the figure.

use std::path::Path;
use sweep_store::TrialStatus;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
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
    pub status: TrialStatus,
}

const PANEL: (u32, u32) = (340, 260);
const TITLE_HEIGHT: u32 = 50;
/// Font sizes (pixels) of tick labels, axis descriptions, panel captions and legends.
const TICK_FONT: u32 = 14;
const AXIS_FONT: u32 = 14;
const CAPTION_FONT: u32 = 16;
const LEGEND_FONT: u32 = 14;
/// The legend's sample-line width and inner margin (plotters' `legend_area_size`, `margin`).
const LEGEND_KEY: u32 = 26;
const LEGEND_MARGIN: u32 = 5;
/// How far a legend sits from the plotting area's edges, in pixels.
const LEGEND_INSET: i32 = 4;
/// Radius of the points marking each epoch, in pixels.
const POINT_RADIUS: i32 = 3;

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

/// The x range of panels whose last epoch is `last`: epochs 1 to `last` with room on both
/// sides, so that the first and last points are drawn whole.
fn x_range(last: i64) -> (f64, f64) {
    let last = last.max(2) as f64;
    let margin = ((last - 1.0) * 0.04).max(0.25);
    (1.0 - margin, last + margin)
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
    let (lo, hi) = match metric {
        Metric::ValF1 => (0.0, hi.clamp(0.05, 1.0) * 1.05),
        Metric::Loss if lo.is_finite() => (lo.min(0.0), hi * 1.05 + 1e-6),
        Metric::Loss => (0.0, 1.0),
    };
    // Room below zero too, so that points at (or near) zero are drawn whole.
    (lo - (hi - lo) * 0.03, hi)
}

/// A y tick's label: short decimals (`0.05`, `1.5`, `0.0`), and powers of ten from 10⁴ on
/// (`6.4e9`), so that a diverged trial's loss does not overflow the label area.
fn tick_text(value: f64) -> String {
    let value = if value.abs() < 1e-12 { 0.0 } else { value };
    if value.abs() >= 1e4 {
        format!("{value:.1e}").replace(".0e", "e")
    } else {
        let text = format!("{value:.4}");
        let text = text.trim_end_matches('0');
        if text.ends_with('.') {
            format!("{text}0")
        } else {
            text.to_string()
        }
    }
}

/// A corner of a panel's plotting area, where its legend can go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Corner {
    UpperRight,
    LowerRight,
    UpperLeft,
    LowerLeft,
}

impl Corner {
    /// The corners to try for a metric's legend, best first: loss falls, so its legend goes
    /// upper right; F1 rises, so lower right.
    fn preferred(metric: Metric) -> [Corner; 4] {
        use Corner::*;
        match metric {
            Metric::Loss => [UpperRight, LowerLeft, LowerRight, UpperLeft],
            Metric::ValF1 => [LowerRight, UpperLeft, UpperRight, LowerLeft],
        }
    }

    /// The top-left pixel of a `legend`-sized box in this corner of a plotting area of
    /// `area` pixels.
    fn origin(self, area: (i32, i32), legend: (i32, i32)) -> (i32, i32) {
        let right = area.0 - legend.0 - LEGEND_INSET;
        let bottom = area.1 - legend.1 - LEGEND_INSET;
        match self {
            Corner::UpperRight => (right, LEGEND_INSET),
            Corner::LowerRight => (right, bottom),
            Corner::UpperLeft => (LEGEND_INSET, LEGEND_INSET),
            Corner::LowerLeft => (LEGEND_INSET, bottom),
        }
    }
}

/// A panel's plotting area: its data ranges and its size in pixels.
struct Frame {
    x: (f64, f64),
    y: (f64, f64),
    pixels: (i32, i32),
}

impl Frame {
    /// Where a data point lands, in pixels from the area's top-left corner.
    fn pixel(&self, (x, y): (f64, f64)) -> (f64, f64) {
        (
            (x - self.x.0) / (self.x.1 - self.x.0) * self.pixels.0 as f64,
            (self.y.1 - y) / (self.y.1 - self.y.0) * self.pixels.1 as f64,
        )
    }
}

/// The corner for a panel's legend (`legend` pixels): the first of `preferred` whose box
/// no line crosses (points included), else the one crossed least. Lines are in data units.
fn legend_corner(
    lines: &[Vec<(f64, f64)>],
    frame: &Frame,
    legend: (i32, i32),
    preferred: &[Corner],
) -> Corner {
    // Pixels of the lines' paths, sampled every pixel or so.
    let mut path = Vec::new();
    for line in lines {
        let pixels: Vec<(f64, f64)> = line.iter().map(|&p| frame.pixel(p)).collect();
        path.extend(pixels.first().copied());
        for pair in pixels.windows(2) {
            let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
            let steps = (x1 - x0).abs().max((y1 - y0).abs()).ceil().max(1.0) as usize;
            path.extend((1..=steps).map(|k| {
                let t = k as f64 / steps as f64;
                (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t)
            }));
        }
    }
    let crossed = |corner: &Corner| {
        let (left, top) = corner.origin(frame.pixels, legend);
        let pad = POINT_RADIUS as f64;
        path.iter()
            .filter(|&&(x, y)| {
                x >= left as f64 - pad
                    && x <= (left + legend.0) as f64 + pad
                    && y >= top as f64 - pad
                    && y <= (top + legend.1) as f64 + pad
            })
            .count()
    };
    preferred
        .iter()
        .copied()
        .min_by_key(crossed)
        .unwrap_or(Corner::UpperRight)
}

/// What an empty panel (a trial without epochs) says in its middle.
fn empty_label(status: TrialStatus) -> String {
    match status {
        TrialStatus::Pending => "pending".into(),
        TrialStatus::Running => "running: no epoch yet".into(),
        TrialStatus::Done => "no epochs".into(),
        other => format!("{other} before epoch 1"),
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
    let last_epoch = curves
        .iter()
        .flat_map(|c| c.epochs.iter().map(|e| e.epoch))
        .max()
        .unwrap_or(1);
    let (x_lo, x_hi) = x_range(last_epoch);
    let y_desc = match metric {
        Metric::Loss => "loss",
        Metric::ValF1 => "val macro F1",
    };
    for (row, col, panel_title, index) in &figure.panels {
        let area = &cells[row * figure.cols.max(1) + col];
        let curve = &curves[*index];
        let caption = match curve.status {
            TrialStatus::Done => panel_title.clone(),
            TrialStatus::Stopped | TrialStatus::Paused => format!(
                "{panel_title} ({} at epoch {})",
                curve.status,
                curve.epochs.len()
            ),
            status => format!("{panel_title} ({status})"),
        };
        // A trial pruning stopped is drawn as far as it went, faded.
        let fade = if curve.status == TrialStatus::Stopped {
            0.45
        } else {
            1.0
        };
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", CAPTION_FONT))
            .margin(6)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(y_desc)
            .x_labels((last_epoch.max(2) as usize).min(10))
            .x_label_formatter(&|v| {
                if v.fract() == 0.0 {
                    format!("{v:.0}")
                } else {
                    String::new()
                }
            })
            .y_labels(5)
            .y_label_formatter(&|v| tick_text(*v))
            .label_style(("sans-serif", TICK_FONT))
            .axis_desc_style(("sans-serif", AXIS_FONT))
            .bold_line_style(BLACK.mix(0.12))
            .light_line_style(TRANSPARENT)
            .draw()
            .map_err(draw_err)?;
        if curve.epochs.is_empty() {
            draw_empty(&chart, (x_lo, x_hi), (y_lo, y_hi), curve.status)?;
            continue;
        }
        let mut lines = Vec::new();
        for (label, colour, value) in series(metric) {
            let colour = colour.mix(fade);
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
                        .iter()
                        .map(|&p| Circle::new(p, POINT_RADIUS, colour.filled())),
                )
                .map_err(draw_err)?;
            lines.push(points);
        }
        let (w, h) = chart.plotting_area().dim_in_pixel();
        let frame = Frame {
            x: (x_lo, x_hi),
            y: (y_lo, y_hi),
            pixels: (w as i32, h as i32),
        };
        let legend = legend_size(metric)?;
        let corner = legend_corner(&lines, &frame, legend, &Corner::preferred(metric));
        let (x, y) = corner.origin(frame.pixels, legend);
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", LEGEND_FONT))
            .legend_area_size(LEGEND_KEY)
            .margin(LEGEND_MARGIN)
            .position(SeriesLabelPosition::Coordinate(x, y))
            .draw()
            .map_err(draw_err)?;
    }
    root.present().map_err(draw_err)?;
    Ok(())
}

/// The size in pixels of a metric's legend box, as plotters draws it: the labels' text, the
/// sample lines and the margins.
fn legend_size(metric: Metric) -> Result<(i32, i32), ReportError> {
    let font: TextStyle = ("sans-serif", LEGEND_FONT).into();
    let mut text = MultiLineText::<(i32, i32), &str>::new((0, 0), &font);
    for (label, _, _) in series(metric) {
        text.push_line(label);
    }
    let (w, h) = text.estimate_dimension().map_err(draw_err)?;
    let margin = LEGEND_MARGIN as i32;
    Ok((w + LEGEND_KEY as i32 + 2 * margin, h + 2 * margin))
}

/// Draws an empty panel (a trial without epochs): a grey plotting area with its status in
/// the middle instead of curves.
fn draw_empty<DB: DrawingBackend>(
    chart: &ChartContext<DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    (x_lo, x_hi): (f64, f64),
    (y_lo, y_hi): (f64, f64),
    status: TrialStatus,
) -> Result<(), ReportError> {
    let area = chart.plotting_area();
    area.draw(&Rectangle::new(
        [(x_lo, y_lo), (x_hi, y_hi)],
        RGBColor(238, 238, 238).filled(),
    ))
    .map_err(draw_err)?;
    let colour = if status == TrialStatus::Failed {
        RGBColor(190, 40, 40)
    } else {
        RGBColor(100, 100, 100)
    };
    let label = empty_label(status);
    // As large as fits across the panel, up to 22 pixels.
    let width = area.dim_in_pixel().0 as f64;
    let size = (width * 0.9 / (0.55 * label.chars().count() as f64)).clamp(10.0, 22.0);
    let style = TextStyle::from(("sans-serif", size).into_font())
        .color(&colour)
        .pos(Pos::new(HPos::Center, VPos::Center));
    area.draw(&Text::new(
        label,
        ((x_lo + x_hi) / 2.0, (y_lo + y_hi) / 2.0),
        style,
    ))
    .map_err(draw_err)?;
    Ok(())
}
