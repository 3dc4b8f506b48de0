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
use crate::{draw_err, ReportError};

/// What a figure plots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metric {
    /// Training and validation loss, where the trials report them.
    Loss,
    /// One metric by name: the built-in trainer's validation macro F1 (`val_f1`), or the
    /// objective a command trial's program reports.
    Named(String),
}

impl Metric {
    /// The built-in trainer's validation macro F1.
    pub fn val_f1() -> Self {
        Metric::Named("val_f1".into())
    }

    /// Whether it is a share between 0 and 1, drawn from 0 (validation macro F1).
    fn is_f1(&self) -> bool {
        matches!(self, Metric::Named(name) if name == "val_f1")
    }
}

/// One panel's trial: its epochs and how it stands.
pub struct Curve<'a> {
    pub epochs: &'a [EpochRow],
    /// `done`, `failed`, `running`, …: anything but `done` is marked in the panel's title.
    pub status: TrialStatus,
}

const PANEL: (u32, u32) = (340, 260);
const TITLE_HEIGHT: u32 = 50;
/// The figure title's font sizes, largest first: the first at which it fits the width.
const TITLE_FONTS: [u32; 5] = [26, 22, 19, 16, 14];
/// A panel caption's font sizes, largest first, and at most how many lines it takes.
const CAPTION_FONTS: [u32; 4] = [CAPTION_FONT, 14, 13, 12];
const CAPTION_LINES: usize = 2;
/// The space around a panel's plot (plotters' chart margin) and its caption's lines.
const PANEL_MARGIN: u32 = 6;
const LINE_GAP: u32 = 3;
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

/// A plotted line: its legend, colour and the metric it reads from each epoch.
type Series = (String, RGBColor, String);

fn series(metric: &Metric) -> Vec<Series> {
    match metric {
        Metric::Loss => vec![
            (
                "train loss".into(),
                RGBColor(31, 119, 180),
                "train_loss".into(),
            ),
            ("val loss".into(), RGBColor(255, 127, 14), "val_loss".into()),
        ],
        Metric::Named(name) if metric.is_f1() => {
            vec![("val F1".into(), RGBColor(44, 160, 44), name.clone())]
        }
        Metric::Named(name) => vec![(name.clone(), RGBColor(44, 160, 44), name.clone())],
    }
}

/// The epoch's value of a series' metric, when it reported a finite one.
fn value(epoch: &EpochRow, metric: &str) -> Option<f64> {
    epoch.metric(metric).filter(|v| v.is_finite())
}

/// The x range of panels whose last epoch is `last`: epochs 1 to `last` with room on both
/// sides, so that the first and last points are drawn whole.
fn x_range(last: i64) -> (f64, f64) {
    let last = last.max(2) as f64;
    let margin = ((last - 1.0) * 0.04).max(0.25);
    (1.0 - margin, last + margin)
}

/// The y range shared by every panel: all finite values, with a little room.
fn y_range(curves: &[Curve], metric: &Metric) -> (f64, f64) {
    let lines = series(metric);
    let values: Vec<f64> = curves
        .iter()
        .flat_map(|c| c.epochs.iter())
        .flat_map(|e| lines.iter().filter_map(move |(_, _, m)| value(e, m)))
        .collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = match metric {
        _ if metric.is_f1() => (0.0, hi.clamp(0.05, 1.0) * 1.05),
        _ if !lo.is_finite() => (0.0, 1.0),
        Metric::Loss => (lo.min(0.0), hi * 1.05 + 1e-6),
        // Any other metric: its own range, with room above and below.
        Metric::Named(_) => {
            let pad = ((hi - lo) * 0.05).max(hi.abs().max(1.0) * 1e-3);
            (lo - pad, hi + pad)
        }
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
    fn preferred(metric: &Metric) -> [Corner; 4] {
        use Corner::*;
        match metric {
            Metric::Loss => [UpperRight, LowerLeft, LowerRight, UpperLeft],
            Metric::Named(_) => [LowerRight, UpperLeft, UpperRight, LowerLeft],
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

/// Text set to fit a width: its font size and its lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub size: u32,
    pub lines: Vec<String>,
}

impl Fitted {
    /// The height of its lines, in pixels.
    fn height(&self) -> u32 {
        self.lines.len() as u32 * (self.size + LINE_GAP)
    }
}

/// Sets `words` (whole, in order, one space apart) in at most `max_lines` lines no wider than
/// `width` pixels, at the first of `sizes` (largest first) where they fit; at the last size,
/// words that still do not fit join the last line and a line too wide is cut with `…`.
/// `measure(text, size)` is a text's width in pixels.
pub fn fit_text(
    words: &[String],
    width: u32,
    max_lines: usize,
    sizes: &[u32],
    measure: &dyn Fn(&str, u32) -> u32,
) -> Fitted {
    let wrap = |size: u32| {
        let mut lines: Vec<String> = Vec::new();
        for word in words {
            match lines.last_mut() {
                Some(line) if measure(&format!("{line} {word}"), size) <= width => {
                    line.push(' ');
                    line.push_str(word);
                }
                _ => lines.push(word.clone()),
            }
        }
        lines
    };
    for &size in sizes {
        let lines = wrap(size);
        if lines.len() <= max_lines && lines.iter().all(|l| measure(l, size) <= width) {
            return Fitted { size, lines };
        }
    }
    let size = sizes.last().copied().unwrap_or(CAPTION_FONT);
    let mut lines = wrap(size);
    if lines.len() > max_lines.max(1) {
        let rest = lines.split_off(max_lines.max(1) - 1).join(" ");
        lines.push(rest);
    }
    for line in lines.iter_mut().filter(|l| measure(l, size) > width) {
        while !line.is_empty() && measure(&format!("{line}…"), size) > width {
            line.pop();
        }
        line.push('…');
    }
    Fitted { size, lines }
}

/// A text's width in pixels in the embedded font at `size`.
fn text_width(text: &str, size: u32) -> u32 {
    ("sans-serif", size as f64)
        .into_font()
        .box_size(text)
        .map_or(text.chars().count() as u32 * size, |(w, _)| w)
}

/// A panel's caption: the params that tell it from the figure's other panels, then where a
/// trial that did not finish stands (`(stopped at epoch 2)`), fitted to `width` pixels.
fn panel_caption(title: &str, curve: &Curve, width: u32) -> Fitted {
    let status = match curve.status {
        TrialStatus::Done => None,
        TrialStatus::Stopped | TrialStatus::Paused => Some(format!(
            "({} at epoch {})",
            curve.status,
            curve.epochs.len()
        )),
        status => Some(format!("({status})")),
    };
    let words: Vec<String> = title
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .chain(status)
        .collect();
    fit_text(&words, width, CAPTION_LINES, &CAPTION_FONTS, &text_width)
}

/// Draws fitted lines centred across `area`, from its top.
fn draw_lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    fitted: &Fitted,
    top: i32,
) -> Result<(), ReportError> {
    let (width, _) = area.dim_in_pixel();
    let style = TextStyle::from(("sans-serif", fitted.size as f64).into_font())
        .pos(Pos::new(HPos::Center, VPos::Top));
    for (k, line) in fitted.lines.iter().enumerate() {
        let y = top + (k as u32 * (fitted.size + LINE_GAP)) as i32;
        area.draw(&Text::new(
            line.as_str(),
            (width as i32 / 2, y),
            style.clone(),
        ))
        .map_err(draw_err)?;
    }
    Ok(())
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

/// Draws `figure` with `curves[i]` for the trial at input index `i` into a PNG at `path`.
pub fn draw_figure(
    path: &Path,
    title: &str,
    figure: &Figure,
    curves: &[Curve],
    metric: &Metric,
) -> Result<(), ReportError> {
    let size = (
        (PANEL.0 * figure.cols.max(1) as u32).max(640),
        PANEL.1 * figure.rows.max(1) as u32 + TITLE_HEIGHT,
    );
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let words: Vec<String> = title.split(' ').map(str::to_string).collect();
    let heading = fit_text(
        &words,
        size.0 - 2 * PANEL_MARGIN,
        1,
        &TITLE_FONTS,
        &text_width,
    );
    let (top, root) = root.split_vertically(TITLE_HEIGHT);
    let room = TITLE_HEIGHT.saturating_sub(heading.height()) as i32 / 2;
    draw_lines(&top, &heading, room)?;
    let cells = root.split_evenly((figure.rows.max(1), figure.cols.max(1)));
    // Every panel's caption fits its width; the figure's captions take the height of the
    // tallest, so that the plots line up.
    let caption_width = size.0 / figure.cols.max(1) as u32 - 2 * PANEL_MARGIN;
    let captions: Vec<Fitted> = figure
        .panels
        .iter()
        .map(|(_, _, panel_title, index)| {
            panel_caption(panel_title, &curves[*index], caption_width)
        })
        .collect();
    let caption_height = captions.iter().map(Fitted::height).max().unwrap_or(0) + PANEL_MARGIN;
    let members: Vec<&Curve> = figure.panels.iter().map(|p| &curves[p.3]).collect();
    let owned: Vec<Curve> = members
        .iter()
        .map(|c| Curve {
            epochs: c.epochs,
            status: c.status,
        })
        .collect();
    let (y_lo, y_hi) = y_range(&owned, metric);
    let lines_of = series(metric);
    let last_epoch = curves
        .iter()
        .flat_map(|c| c.epochs.iter().map(|e| e.epoch))
        .max()
        .unwrap_or(1);
    let (x_lo, x_hi) = x_range(last_epoch);
    let y_desc = match metric {
        Metric::Loss => "loss",
        _ if metric.is_f1() => "val macro F1",
        Metric::Named(name) => name.as_str(),
    };
    for ((row, col, _, index), caption) in figure.panels.iter().zip(&captions) {
        let (head, area) = cells[row * figure.cols.max(1) + col].split_vertically(caption_height);
        draw_lines(&head, caption, PANEL_MARGIN as i32)?;
        let area = &area;
        let curve = &curves[*index];
        // A trial pruning stopped is drawn as far as it went, faded.
        let fade = if curve.status == TrialStatus::Stopped {
            0.45
        } else {
            1.0
        };
        let mut chart = ChartBuilder::on(area)
            .margin(PANEL_MARGIN)
            .margin_top(2)
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
        for (label, colour, name) in &lines_of {
            let colour = colour.mix(fade);
            let points: Vec<(f64, f64)> = curve
                .epochs
                .iter()
                .filter_map(|e| Some((e.epoch as f64, value(e, name)?)))
                .collect();
            if points.is_empty() {
                // A metric this trial does not report (a command trial without a loss).
                continue;
            }
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                .map_err(draw_err)?
                .label(label.as_str())
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
fn legend_size(metric: &Metric) -> Result<(i32, i32), ReportError> {
    let font: TextStyle = ("sans-serif", LEGEND_FONT).into();
    let lines = series(metric);
    let mut text = MultiLineText::<(i32, i32), &str>::new((0, 0), &font);
    for (label, _, _) in &lines {
        text.push_line(label.as_str());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A monospaced stand-in: every character half the font size wide.
    fn half(text: &str, size: u32) -> u32 {
        text.chars().count() as u32 * size / 2
    }

    fn words(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn a_caption_that_fits_stays_one_line_at_the_largest_size() {
        let fitted = fit_text(&words("lr=0.01 neurons=8"), 200, 2, &[16, 12], &half);
        assert_eq!(
            fitted,
            Fitted {
                size: 16,
                lines: vec!["lr=0.01 neurons=8".into()]
            }
        );
    }

    #[test]
    fn a_long_caption_wraps_then_shrinks_then_is_cut() {
        let mut text = words("lr=0.001 arch=mlp neurons=16");
        text.push("(stopped at epoch 1)".into());
        // 49 characters: 392 pixels at 16, two lines of 28 and 20 at 16 fit 240.
        let fitted = fit_text(&text, 240, 2, &[16, 12], &half);
        assert_eq!(fitted.size, 16);
        assert_eq!(
            fitted.lines,
            ["lr=0.001 arch=mlp neurons=16", "(stopped at epoch 1)"]
        );
        // At 120 pixels it takes more than two lines at either size: the last is cut.
        let fitted = fit_text(&text, 120, 2, &[16, 12], &half);
        assert_eq!(fitted.size, 12);
        assert_eq!(fitted.lines.len(), 2);
        for line in &fitted.lines {
            assert!(half(line, 12) <= 120, "{line}");
        }
        assert!(fitted.lines[1].ends_with('…'), "{:?}", fitted.lines);
    }

    #[test]
    fn every_caption_of_a_three_axis_grid_fits_its_panel_in_the_real_font() {
        crate::register_font().unwrap();
        let width = PANEL.0 - 2 * PANEL_MARGIN;
        for status in [
            TrialStatus::Done,
            TrialStatus::Stopped,
            TrialStatus::Interrupted,
        ] {
            let epochs = Vec::new();
            let curve = Curve {
                epochs: &epochs,
                status,
            };
            let caption = panel_caption(
                "lr=0.001 arch=resnet neurons=128 dropout=0.25",
                &curve,
                width,
            );
            assert!(caption.lines.len() <= CAPTION_LINES, "{caption:?}");
            for line in &caption.lines {
                assert!(text_width(line, caption.size) <= width, "{line}");
            }
        }
    }
}
