//! How a sweep's trials are spread over figures and panels: one figure per optimizer, and in
//! it one panel per combination of the other grid axes (rows: learning rate, columns:
//! neurons, when those are the two others). Plain functions over the trials' params.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use sweep_store::Param;
pub use sweep_store::Params;

/// The axis that splits trials into figures.
pub const FIGURE_AXIS: &str = "optimizer";

/// One figure: the trials sharing the figure axis's value, placed in a grid of panels.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// The figure axis's value (`adam`), or `None` when the grid has no such axis.
    pub key: Option<String>,
    /// What every panel of the figure shares (`arch=mlp`): said once, in the figure's title,
    /// and left out of the panels' titles.
    pub shared: Vec<String>,
    pub rows: usize,
    pub cols: usize,
    /// `(row, col, panel title, index of the trial in the input)`: the title names the axes
    /// whose values differ between the figure's panels.
    pub panels: Vec<(usize, usize, String, usize)>,
}

/// Numbers in their order, anything else (a trial without the axis too) in that of its JSON.
fn compare(a: Option<&Param>, b: Option<&Param>) -> Ordering {
    match (a.and_then(Param::as_f64), b.and_then(Param::as_f64)) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => {
            let json = |p: Option<&Param>| serde_json::to_string(&p).expect("a param serialises");
            json(a).cmp(&json(b))
        }
    }
}

fn distinct(params: &[Params], key: &str) -> Vec<Param> {
    let mut values: Vec<Param> = Vec::new();
    for p in params {
        if let Some(v) = p.get(key) {
            if !values.contains(v) {
                values.push(v.clone());
            }
        }
    }
    values.sort_by(|a, b| compare(Some(a), Some(b)));
    values
}

/// Lays out trials with these params into figures.
pub fn lay_out(params: &[Params]) -> Vec<Figure> {
    let axes: BTreeSet<&str> = params
        .iter()
        .flat_map(|p| p.keys().map(String::as_str))
        .collect();
    let mut others: Vec<&str> = axes.iter().copied().filter(|a| *a != FIGURE_AXIS).collect();
    // Learning rate down the rows and neurons across, as in the seed's figures.
    others.sort_by_key(|a| match *a {
        "lr" => 0,
        "neurons" => 2,
        _ => 1,
    });
    let figure_keys: Vec<Option<Param>> = if axes.contains(FIGURE_AXIS) {
        distinct(params, FIGURE_AXIS)
            .into_iter()
            .map(Some)
            .collect()
    } else {
        vec![None]
    };
    figure_keys
        .into_iter()
        .map(|key| {
            let members: Vec<usize> = (0..params.len())
                .filter(|&i| {
                    key.as_ref()
                        .is_none_or(|k| params[i].get(FIGURE_AXIS) == Some(k))
                })
                .collect();
            // An axis with one value among the figure's trials (and held by all of them) is
            // the figure's, not a panel's.
            let (shared, varying): (Vec<&str>, Vec<&str>) = others.iter().partition(|a| {
                let values: Vec<Option<&Param>> =
                    members.iter().map(|&i| params[i].get(**a)).collect();
                members.len() > 1 && values.iter().all(|v| v.is_some() && *v == values[0])
            });
            let shared: Vec<String> = shared
                .iter()
                .filter_map(|a| {
                    let i = *members.first()?;
                    params[i].get(*a).map(|v| format!("{a}={v}"))
                })
                .collect();
            let title = |i: usize| {
                varying
                    .iter()
                    .filter_map(|a| params[i].get(*a).map(|v| format!("{a}={v}")))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let (rows, cols, panels) = if varying.len() == 2 {
                let row_values = distinct(params, varying[0]);
                let col_values = distinct(params, varying[1]);
                let panels = members
                    .iter()
                    .map(|&i| {
                        let r = row_values
                            .iter()
                            .position(|v| params[i].get(varying[0]) == Some(v))
                            .unwrap_or(0);
                        let c = col_values
                            .iter()
                            .position(|v| params[i].get(varying[1]) == Some(v))
                            .unwrap_or(0);
                        (r, c, title(i), i)
                    })
                    .collect();
                (row_values.len(), col_values.len(), panels)
            } else {
                let mut sorted = members.clone();
                sorted.sort_by(|&a, &b| {
                    varying
                        .iter()
                        .map(|k| compare(params[a].get(*k), params[b].get(*k)))
                        .find(|o| *o != Ordering::Equal)
                        .unwrap_or(Ordering::Equal)
                });
                let n = sorted.len().max(1);
                // One axis: learning rate down the rows, anything else across; more: a square.
                let cols = match varying.as_slice() {
                    ["lr"] => 1,
                    [_] => n,
                    _ => (n as f64).sqrt().ceil() as usize,
                };
                let rows = n.div_ceil(cols);
                let panels = sorted
                    .iter()
                    .enumerate()
                    .map(|(k, &i)| (k / cols, k % cols, title(i), i))
                    .collect();
                (rows, cols, panels)
            };
            Figure {
                key: key.as_ref().map(Param::to_string),
                shared,
                rows,
                cols,
                panels,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(text: &str) -> Params {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn the_seed_grid_gives_a_figure_per_optimizer_with_lr_rows_and_neuron_columns() {
        let mut all = Vec::new();
        for n in [64, 128, 256] {
            for lr in [0.01, 0.005, 0.001] {
                for opt in ["adam", "sgd", "rmsprop"] {
                    all.push(params(&format!(
                        r#"{{"neurons":{n},"lr":{lr},"optimizer":"{opt}"}}"#
                    )));
                }
            }
        }
        let figures = lay_out(&all);
        let keys: Vec<_> = figures.iter().map(|f| f.key.clone().unwrap()).collect();
        assert_eq!(keys, ["adam", "rmsprop", "sgd"]);
        let adam = &figures[0];
        assert_eq!((adam.rows, adam.cols, adam.panels.len()), (3, 3, 9));
        let (r, c, title, i) = adam
            .panels
            .iter()
            .find(|p| p.2 == "lr=0.001 neurons=256")
            .unwrap()
            .clone();
        assert_eq!(
            (r, c),
            (0, 2),
            "rows in increasing lr, columns in increasing neurons: {title}"
        );
        assert_eq!(all[i]["optimizer"], Param::Text("adam".into()));
    }

    #[test]
    fn without_an_optimizer_axis_one_figure_and_with_more_axes_a_panel_per_combination() {
        let all: Vec<Params> = (0..5)
            .map(|k| params(&format!(r#"{{"neurons":{k}}}"#)))
            .collect();
        let figures = lay_out(&all);
        assert_eq!(figures.len(), 1);
        assert_eq!(figures[0].key, None);
        assert_eq!((figures[0].rows, figures[0].cols), (1, 5));
        let all: Vec<Params> = (0..3)
            .map(|k| params(&format!(r#"{{"lr":{k},"optimizer":"sgd"}}"#)))
            .collect();
        assert_eq!(
            (lay_out(&all)[0].rows, lay_out(&all)[0].cols),
            (3, 1),
            "learning rate down the rows"
        );
        let all: Vec<Params> = (0..8)
            .map(|k| {
                params(&format!(
                    r#"{{"lr":{},"neurons":{},"seed":{},"optimizer":"adam"}}"#,
                    k % 2,
                    k / 2 % 2,
                    k / 4
                ))
            })
            .collect();
        let figures = lay_out(&all);
        assert_eq!(
            (figures[0].rows, figures[0].cols, figures[0].panels.len()),
            (3, 3, 8)
        );
    }

    #[test]
    fn an_axis_every_panel_shares_goes_to_the_figure_title() {
        // arch is mlp for every sgd trial and resnet for every adam one.
        let all: Vec<Params> = (0..8)
            .map(|k| {
                let (opt, arch) = if k < 4 {
                    ("sgd", "mlp")
                } else {
                    ("adam", "resnet")
                };
                params(&format!(
                    r#"{{"lr":{},"neurons":{},"arch":"{arch}","optimizer":"{opt}"}}"#,
                    k % 2,
                    k / 2 % 2
                ))
            })
            .collect();
        let figures = lay_out(&all);
        assert_eq!(figures[0].key.as_deref(), Some("adam"));
        assert_eq!(figures[0].shared, ["arch=resnet"]);
        assert_eq!(figures[1].shared, ["arch=mlp"]);
        assert_eq!((figures[0].rows, figures[0].cols), (2, 2));
        let titles: Vec<&str> = figures[1].panels.iter().map(|p| p.2.as_str()).collect();
        assert_eq!(
            titles,
            [
                "lr=0 neurons=0",
                "lr=1 neurons=0",
                "lr=0 neurons=1",
                "lr=1 neurons=1"
            ]
        );
    }
}
