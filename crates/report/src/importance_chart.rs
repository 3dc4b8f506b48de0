//! `importance.png`: each term's share of the objective's variance as a horizontal bar, its
//! 95% interval as a whisker, largest first within main effects, then interactions, the rest
//! and the noise (the order of [`Importance::shares`]).

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::importance::{Importance, Kind};
use crate::{draw_err, ReportError};

const WIDTH: u32 = 800;
const TITLE_HEIGHT: u32 = 56;
const ROW_HEIGHT: u32 = 30;
const AXIS_HEIGHT: u32 = 40;
/// Where the bars start (the terms' names are right-aligned before it) and end.
const BARS_LEFT: i32 = 260;
const BARS_RIGHT: i32 = WIDTH as i32 - 70;
const FONT: u32 = 15;

fn bar_colour(kind: Kind) -> RGBColor {
    match kind {
        Kind::Main => RGBColor(31, 119, 180),
        Kind::Interaction => RGBColor(255, 127, 14),
        Kind::Higher => RGBColor(148, 103, 189),
        Kind::Noise => RGBColor(150, 150, 150),
    }
}

/// Draws `importance`'s shares of `objective` into a PNG at `path`.
pub fn draw_importance(
    path: &Path,
    title: &str,
    importance: &Importance,
) -> Result<(), ReportError> {
    let rows = importance.shares.len() as u32;
    let height = TITLE_HEIGHT + rows * ROW_HEIGHT + AXIS_HEIGHT;
    let root = BitMapBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let centre = Pos::new(HPos::Center, VPos::Center);
    root.draw(&Text::new(
        title.to_string(),
        (WIDTH as i32 / 2, 18),
        ("sans-serif", 20).into_font().color(&BLACK).pos(centre),
    ))
    .map_err(draw_err)?;
    let subtitle = match importance.method {
        crate::importance::Method::Exact => "exact functional ANOVA of the grid's cell means",
        crate::importance::Method::Estimate => {
            "estimate: each hyperparameter alone (ε² of its marginal means), no interactions"
        }
    };
    root.draw(&Text::new(
        subtitle,
        (WIDTH as i32 / 2, 42),
        ("sans-serif", 14)
            .into_font()
            .color(&RGBColor(90, 90, 90))
            .pos(centre),
    ))
    .map_err(draw_err)?;
    let x =
        |share: f64| BARS_LEFT + (share.clamp(0.0, 1.0) * (BARS_RIGHT - BARS_LEFT) as f64) as i32;
    let top = TITLE_HEIGHT as i32;
    let bottom = top + (rows * ROW_HEIGHT) as i32;
    for tick in 0..=4 {
        let share = tick as f64 / 4.0;
        let at = x(share);
        root.draw(&PathElement::new(
            vec![(at, top), (at, bottom)],
            BLACK.mix(0.12),
        ))
        .map_err(draw_err)?;
        root.draw(&Text::new(
            format!("{}%", tick * 25),
            (at, bottom + 14),
            ("sans-serif", FONT).into_font().color(&BLACK).pos(centre),
        ))
        .map_err(draw_err)?;
    }
    root.draw(&Text::new(
        "share of the objective's variance",
        (x(0.5), bottom + 32),
        ("sans-serif", FONT).into_font().color(&BLACK).pos(centre),
    ))
    .map_err(draw_err)?;
    let right_middle = Pos::new(HPos::Right, VPos::Center);
    for (row, share) in importance.shares.iter().enumerate() {
        let y0 = top + row as i32 * ROW_HEIGHT as i32;
        let middle = y0 + ROW_HEIGHT as i32 / 2;
        root.draw(&Text::new(
            share.term.clone(),
            (BARS_LEFT - 8, middle),
            ("sans-serif", FONT)
                .into_font()
                .color(&BLACK)
                .pos(right_middle),
        ))
        .map_err(draw_err)?;
        root.draw(&Rectangle::new(
            [
                (x(0.0), y0 + 6),
                (x(share.share).max(x(0.0) + 1), y0 + ROW_HEIGHT as i32 - 6),
            ],
            bar_colour(share.kind).filled(),
        ))
        .map_err(draw_err)?;
        if let Some((lo, hi)) = share.interval {
            let (lo, hi) = (x(lo), x(hi));
            let whisker = BLACK.stroke_width(2);
            root.draw(&PathElement::new(vec![(lo, middle), (hi, middle)], whisker))
                .map_err(draw_err)?;
            for end in [lo, hi] {
                root.draw(&PathElement::new(
                    vec![(end, middle - 6), (end, middle + 6)],
                    whisker,
                ))
                .map_err(draw_err)?;
            }
        }
        root.draw(&Text::new(
            share.percent(),
            (BARS_RIGHT + 60, middle),
            ("sans-serif", FONT)
                .into_font()
                .color(&BLACK)
                .pos(right_middle),
        ))
        .map_err(draw_err)?;
    }
    root.present().map_err(draw_err)?;
    Ok(())
}
