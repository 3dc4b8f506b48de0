//! The best trial's confusion matrix as a heat map: rows are true labels, columns predicted
//! ones, each cell coloured by the fraction of its row, with a colour scale; readable at 100
//! classes (tick labels every 10).

use std::path::Path;

use plotters::prelude::*;

use crate::ReportError;

fn colour(fraction: f64) -> RGBColor {
    // White to dark blue, like matplotlib's "Blues".
    let f = fraction.clamp(0.0, 1.0);
    let mix = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    RGBColor(mix(247.0, 8.0), mix(251.0, 48.0), mix(255.0, 107.0))
}

fn draw_err(e: impl std::fmt::Display) -> ReportError {
    ReportError::Draw(e.to_string())
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
    for &(t, _, c) in cells {
        row_totals[t as usize] += c;
    }
    let root = BitMapBackend::new(path, (900, 820)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let (matrix_area, scale_area) = root.split_horizontally(800);
    let step = if n > 20 { 10 } else { 1 };
    let last = n as i32 - 1;
    let mut chart = ChartBuilder::on(&matrix_area)
        .caption(title, ("sans-serif", 22))
        .margin(10)
        .x_label_area_size(45)
        .y_label_area_size(55)
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
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15))
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
    let mut scale = ChartBuilder::on(&scale_area)
        .margin_top(50)
        .margin_bottom(55)
        .margin_right(10)
        .y_label_area_size(45)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)
        .map_err(draw_err)?;
    scale
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_desc("fraction of the true label")
        .y_labels(6)
        .label_style(("sans-serif", 12))
        .axis_desc_style(("sans-serif", 13))
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
