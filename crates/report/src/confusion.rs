//! The best trial's confusion matrix as a heat map: rows are true labels, columns predicted
//! ones, each cell coloured by the fraction of its row, with a colour scale; up to
//! [`ANNOTATED_CLASSES`] classes each cell also shows its count (as scikit-learn's
//! `ConfusionMatrixDisplay` does); readable at 100 classes (tick labels every 10).

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::{draw_err, ReportError};

/// Up to this many classes, each cell shows its count; above, the heat map alone.
pub const ANNOTATED_CLASSES: usize = 20;

/// Whether a matrix of `classes` classes shows the count in each cell.
fn annotated(classes: usize) -> bool {
    classes <= ANNOTATED_CLASSES
}

fn colour(fraction: f64) -> RGBColor {
    // White to dark blue, like matplotlib's "Blues".
    let f = fraction.clamp(0.0, 1.0);
    let mix = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    RGBColor(mix(247.0, 8.0), mix(251.0, 48.0), mix(255.0, 107.0))
}

/// The colour of text on a cell filled with `fill`: white on dark cells, near-black on light
/// ones (by the fill's luma).
fn text_colour(fill: RGBColor) -> RGBColor {
    let RGBColor(r, g, b) = fill;
    let luma = (0.299 * r as f64 + 0.587 * g as f64 + 0.114 * b as f64) / 255.0;
    if luma < 0.5 {
        WHITE
    } else {
        RGBColor(30, 30, 30)
    }
}

/// The font size (pixels) of a count of `digits` digits in a cell of `cell` pixels: as large
/// as fits, between 8 and 22.
fn cell_font(cell: (f64, f64), digits: usize) -> u32 {
    let by_width = cell.0 * 0.8 / (0.62 * digits.max(1) as f64);
    let by_height = cell.1 * 0.45;
    by_width.min(by_height).clamp(8.0, 22.0) as u32
}

/// Draws a `classes × classes` matrix given as `(actual, predicted, count)` cells.
pub fn draw_confusion(
    path: &Path,
    title: &str,
    classes: usize,
    cells: &[(i64, i64, i64)],
) -> Result<(), ReportError> {
    let n = classes.max(1);
    let mut row_totals = vec![0i64; n];
    let mut counts = vec![vec![0i64; n]; n];
    for &(t, p, c) in cells {
        row_totals[t as usize] += c;
        counts[t as usize][p as usize] += c;
    }
    let root = BitMapBackend::new(path, (900, 820)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let (matrix_area, scale_area) = root.split_horizontally(800);
    let step = if n > 20 { 10 } else { 1 };
    let last = n as i32 - 1;
    let mut chart = ChartBuilder::on(&matrix_area)
        .caption(title, ("sans-serif", 22))
        .margin(10)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d((0..last).into_segmented(), (0..last).into_segmented())
        .map_err(draw_err)?;
    // Labels at the centres of the cells, every `step`; row 0 at the top (y = last - row).
    let x_label = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(k) if *k % step == 0 => k.to_string(),
        _ => String::new(),
    };
    let y_label = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(k) if (last - *k) % step == 0 && *k <= last => {
            (last - *k).to_string()
        }
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("predicted label")
        .y_desc("true label")
        .x_labels(n)
        .y_labels(n)
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .label_style(("sans-serif", 18))
        .axis_desc_style(("sans-serif", 18))
        .draw()
        .map_err(draw_err)?;
    chart
        .draw_series(cells.iter().filter(|(_, _, c)| *c > 0).map(|&(t, p, c)| {
            let fraction = c as f64 / row_totals[t as usize].max(1) as f64;
            let y = last - t as i32;
            let (x, x1) = (
                SegmentValue::Exact(p as i32),
                SegmentValue::Exact(p as i32 + 1),
            );
            let (y0, y1) = (SegmentValue::Exact(y), SegmentValue::Exact(y + 1));
            Rectangle::new([(x, y0), (x1, y1)], colour(fraction).filled())
        }))
        .map_err(draw_err)?;
    if annotated(n) {
        let (w, h) = chart.plotting_area().dim_in_pixel();
        let cell = (w as f64 / n as f64, h as f64 / n as f64);
        let digits = counts
            .iter()
            .flatten()
            .max()
            .map_or(1, |c| c.to_string().len());
        let size = cell_font(cell, digits);
        for (t, row) in counts.iter().enumerate() {
            for (p, &count) in row.iter().enumerate() {
                let fraction = count as f64 / row_totals[t].max(1) as f64;
                // Zero cells in grey, so that the counts stand out.
                let ink = if count == 0 {
                    RGBColor(170, 170, 170)
                } else {
                    text_colour(colour(fraction))
                };
                let style = TextStyle::from(("sans-serif", size).into_font())
                    .color(&ink)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                let at = (
                    SegmentValue::CenterOf(p as i32),
                    SegmentValue::CenterOf(last - t as i32),
                );
                chart
                    .plotting_area()
                    .draw(&Text::new(count.to_string(), at, style))
                    .map_err(draw_err)?;
            }
        }
    }
    let mut scale = ChartBuilder::on(&scale_area)
        .margin_top(50)
        .margin_bottom(55)
        .margin_left(4)
        .margin_right(4)
        .right_y_label_area_size(60)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)
        .map_err(draw_err)?;
    scale
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_desc("fraction of the true label")
        .y_labels(6)
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(draw_err)?;
    scale
        .draw_series((0..100).map(|k| {
            let lo = k as f64 / 100.0;
            Rectangle::new([(0.0, lo), (1.0, lo + 0.01)], colour(lo + 0.005).filled())
        }))
        .map_err(draw_err)?;
    root.present().map_err(draw_err)?;
    Ok(())
}
