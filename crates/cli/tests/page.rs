//! The report page in a real headless Chromium (see `common/browser.rs`): `report.html`
//! of a finished sweep opened from `file://`, and `sweep serve` while a sweep runs. The tests
//! look at what a person sees (rows, curves, the hover text) and act as one (clicks, the
//! mouse over a curve). Without chromium they are reported as ignored, with the reason, unless
//! `SWEEP_REQUIRE_CHROMIUM=1` (as in CI) makes that a failure.
//! Screenshots go to `results/test-artifacts/`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::Browser;
use common::{
    artifacts_dir, process_state, signal, spawn_run, stored_trials, sweep, sweep_bin, text,
    wait_for, wait_until,
};
use serde_json::{json, Value};
use sweep_store::{Direction, Ending, Goal, NewTrial, Param, TrialId, TrialSummary};

fn main() {
    let missing = browser::chromium()
        .is_none()
        .then(|| "no chromium on the PATH (`.ci/chromium` installs it)".to_string());
    common::run_needing(
        "SWEEP_REQUIRE_CHROMIUM",
        missing,
        std::thread::available_parallelism().map_or(1, usize::from),
        tests![
            browser::base64_decodes_with_and_without_padding,
            report_html_from_file_sorts_filters_and_names_the_hovered_trial,
            a_halving_sweeps_page_says_each_status_once_and_draws_every_trial,
            served_page_grows_while_the_sweep_runs,
            report_html_of_100_trials_of_60_epochs_is_small_and_draws_them_all,
            the_importance_panel_and_a_slice_per_hyperparameter_show_the_grid,
            served_page_shows_hostile_names_as_text_404s_and_survives_a_replaced_database,
            a_command_sweeps_page_charts_the_metrics_its_program_reports
        ],
    )
}

/// A sweep file of small ResNets on 3 classes of 8×8 images: `epochs` epochs, `grid` (the
/// `[grid]` table's lines), `slots` trials at a time.
fn sweep_file(name: &str, epochs: u32, grid: &str, slots: u32) -> String {
    format!(
        r#"name = "{name}"

[data]
synthetic = {{ classes = 3, size = 8, train = 60, val = 30, test = 12, seed = 3 }}

[model]
filters = [4, 8]
neurons = 8
dropout = 0.1

[train]
epochs = {epochs}
batch_size = 16
seed = 5

[grid]
{grid}

[run]
devices = "cpu"
trials_per_device = {slots}
"#
    )
}

/// Column `column` (0: trial) of the table's rows, top to bottom.
fn column(browser: &mut Browser, column: usize) -> Vec<String> {
    let values = browser.eval(&format!(
        "Array.from(document.querySelectorAll('#trials tbody tr'))
           .map((tr) => tr.children[{column}].textContent)"
    ));
    values
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn count(browser: &mut Browser, selector: &str) -> usize {
    let selector = serde_json::to_string(selector).unwrap();
    browser
        .eval(&format!("document.querySelectorAll({selector}).length"))
        .as_u64()
        .unwrap() as usize
}

/// Sets a `<select>` or `<input>` as a person choosing a value does (the change and input
/// events fire).
fn choose(browser: &mut Browser, selector: &str, value: &str) {
    let (selector, value) = (
        serde_json::to_string(selector).unwrap(),
        serde_json::to_string(value).unwrap(),
    );
    browser.eval(&format!(
        "(() => {{ const e = document.querySelector({selector}); e.focus(); e.value = {value};
            e.dispatchEvent(new Event('input', {{ bubbles: true }}));
            e.dispatchEvent(new Event('change', {{ bubbles: true }})); }})()"
    ));
}

/// The curves drawn per figure (optimizer) for `metric`: `{optimizer: [trial ids]}`.
fn curves(browser: &mut Browser, metric: &str) -> Value {
    browser.eval(&format!(
        "Object.fromEntries(Array.from(document.querySelectorAll('#curves .figure')).map((f) =>
           [f.dataset.group, Array.from(f.querySelectorAll('svg[data-metric={metric}] path.curve'))
              .map((p) => Number(p.dataset.trial)).sort((a, b) => a - b)]))"
    ))
}

/// The ids of the trials in the table, sorted.
fn table_ids(browser: &mut Browser) -> Vec<i64> {
    let ids = browser.eval(
        "Array.from(document.querySelectorAll('#trials tbody tr'))
           .map((tr) => Number(tr.dataset.trial)).sort((a, b) => a - b)",
    );
    serde_json::from_value(ids).unwrap()
}

/// Asserts that each optimizer's plots have one curve per trial of that optimizer the table
/// shows; `group_of` names a trial's optimizer, `None` for a trial without epochs (no curve).
fn assert_curves_match_table(browser: &mut Browser, group_of: &dyn Fn(i64) -> Option<String>) {
    let shown = table_ids(browser);
    for metric in ["train_loss", "val_loss", "val_f1"] {
        let drawn = curves(browser, metric);
        for (group, ids) in drawn.as_object().unwrap() {
            let ids: Vec<i64> = serde_json::from_value(ids.clone()).unwrap();
            let expected: Vec<i64> = shown
                .iter()
                .copied()
                .filter(|&id| group_of(id).as_ref() == Some(group))
                .collect();
            assert_eq!(ids, expected, "{metric} curves of {group}");
        }
    }
}

/// A trial's optimizer, `None` when it has no epoch to draw.
fn optimizer_of(trials: &[common::StoredTrial], id: i64) -> Option<String> {
    let t = trials.iter().find(|t| t.row.id == id).unwrap();
    (!t.epochs.is_empty()).then(|| t.row.summary.params["optimizer"].to_string())
}

/// Moves the mouse onto a point of one curve of `chart` that no other curve is near, and
/// returns the trial id of that curve and the tooltip's text.
fn hover_a_curve(browser: &mut Browser, chart: &str) -> (i64, String) {
    let chart = serde_json::to_string(chart).unwrap();
    let found = browser.eval(&format!(
        "(() => {{
            const svg = document.querySelector({chart});
            svg.scrollIntoView({{ block: 'center' }});
            const points = [];
            for (const p of svg.querySelectorAll('path.curve')) {{
              for (const m of p.getAttribute('d').matchAll(/[ML]([-\\d.]+) ([-\\d.]+)/g)) {{
                points.push([Number(m[1]), Number(m[2]), Number(p.dataset.trial)]);
              }}
            }}
            const alone = points.find(([x, y, t]) => points.every(([u, v, s]) =>
              s === t || Math.hypot(u - x, v - y) > 6));
            if (!alone) return null;
            const r = svg.getBoundingClientRect();
            return [r.left + alone[0], r.top + alone[1], alone[2]];
          }})()"
    ));
    assert!(!found.is_null(), "no curve point stands alone in {chart}");
    browser.hover(found[0].as_f64().unwrap(), found[1].as_f64().unwrap());
    browser.wait_for("!document.getElementById('tooltip').hidden");
    let tooltip = browser.eval("document.getElementById('tooltip').textContent");
    (
        found[2].as_i64().unwrap(),
        tooltip.as_str().unwrap().to_string(),
    )
}

fn report_html_from_file_sorts_filters_and_names_the_hovered_trial() {
    let mut browser = Browser::launch();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // 8 trials, the 4 with lr 1e30 diverge (failed).
    let grid = "lr = [1e30, 0.05]\nneurons = [4, 8]\noptimizer = [\"sgd\", \"adam\"]";
    std::fs::write(dir.join("s.toml"), sweep_file("page", 3, grid, 2)).unwrap();
    let out = sweep(dir, &["run", "s.toml", "--db", "sweep.db"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "lr 1e30 fails: {}",
        text(&out).1
    );
    let out = sweep(dir, &["report", "page", "--db", "sweep.db"]);
    assert!(out.status.success(), "{}", text(&out).1);
    let trials = stored_trials(&dir.join("sweep.db"), "page");
    assert_eq!(trials.len(), 8);
    let page = dir.join("results/page/report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    // No file is loaded from anywhere: the only URL in it is the SVG namespace's name.
    let urls = html.matches("http").count();
    assert_eq!(urls, html.matches("http://www.w3.org/2000/svg").count());
    for outside in ["src=", "href=", "<link", "@import"] {
        assert!(
            !html.contains(outside),
            "report.html loads something: {outside}"
        );
    }
    let optimizer = |id: i64| optimizer_of(&trials, id);
    let with_epochs = trials.iter().filter(|t| !t.epochs.is_empty()).count();
    assert!(with_epochs >= 4, "the four trials that learn have epochs");
    let number = |id: i64| trials.iter().find(|t| t.row.id == id).unwrap().row.number;

    browser.open(
        &format!("file://{}", page.display()),
        "document.body.dataset.rendered",
    );
    // One row per trial, best first by objective.
    let numbers: BTreeSet<String> = column(&mut browser, 0).into_iter().collect();
    let all: BTreeSet<String> = (1..=8).map(|n| n.to_string()).collect();
    assert_eq!(numbers, all);
    let mut ranked: Vec<_> = trials.iter().map(|t| t.row.clone()).collect();
    sweep_store::rank_best_first(&mut ranked);
    let best_first: Vec<String> = ranked.iter().map(|t| t.number.to_string()).collect();
    assert_eq!(column(&mut browser, 0), best_first);
    assert_curves_match_table(&mut browser, &optimizer);
    assert_eq!(count(&mut browser, "#parallel path.pc-line"), 8);
    assert_eq!(
        curves(&mut browser, "val_f1")
            .as_object()
            .unwrap()
            .values()
            .map(|ids| ids.as_array().unwrap().len())
            .sum::<usize>(),
        with_epochs
    );
    browser.screenshot(&artifacts_dir().join("report.png"));

    // Sorting: by trial, both ways, then by a parameter.
    browser.click_on("th[data-column=trial]");
    let ascending: Vec<String> = (1..=8).map(|n| n.to_string()).collect();
    assert_eq!(column(&mut browser, 0), ascending);
    browser.click_on("th[data-column=trial]");
    let descending: Vec<String> = ascending.iter().rev().cloned().collect();
    assert_eq!(column(&mut browser, 0), descending);
    browser.click_on("th[data-column='param:lr']");
    let lrs: Vec<f64> = column(&mut browser, 1)
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(lrs, [0.05, 0.05, 0.05, 0.05, 1e30, 1e30, 1e30, 1e30]);

    // Filtering by a parameter's value changes the rows and the curves.
    choose(&mut browser, "select[data-axis=optimizer]", "adam");
    let shown = table_ids(&mut browser);
    assert_eq!(shown.len(), 4);
    let params_of = |id: i64| {
        &trials
            .iter()
            .find(|t| t.row.id == id)
            .unwrap()
            .row
            .summary
            .params
    };
    assert!(shown
        .iter()
        .all(|&id| params_of(id)["optimizer"] == Param::Text("adam".into())));
    assert_curves_match_table(&mut browser, &optimizer);
    assert_eq!(curves(&mut browser, "val_loss")["sgd"], json!([]));
    choose(&mut browser, "select[data-axis=optimizer]", "");
    // And by status: the diverged trials failed, with their reason.
    let failed = trials
        .iter()
        .filter(|t| t.row.status == sweep_store::TrialStatus::Failed)
        .count();
    assert!(failed >= 1);
    choose(&mut browser, "#filter-status", "failed");
    assert_eq!(count(&mut browser, "#trials tbody tr"), failed);
    assert_eq!(
        count(&mut browser, "#trials tbody tr .status-failed"),
        failed
    );
    assert!(column(&mut browser, 4)
        .iter()
        .all(|s| s.contains("diverged")));
    choose(&mut browser, "#filter-status", "done");
    assert_eq!(count(&mut browser, "#trials tbody tr"), 8 - failed);
    assert_curves_match_table(&mut browser, &optimizer);
    choose(&mut browser, "#filter-status", "");
    assert_eq!(count(&mut browser, "#trials tbody tr"), 8);

    // Best K: the K best trials everywhere.
    choose(&mut browser, "#best-k", "3");
    let best3: BTreeSet<i64> = ranked.iter().take(3).map(|t| t.id).collect();
    assert_eq!(
        table_ids(&mut browser).into_iter().collect::<BTreeSet<_>>(),
        best3
    );
    assert_curves_match_table(&mut browser, &optimizer);
    choose(&mut browser, "#best-k", "0");
    assert_eq!(count(&mut browser, "#trials tbody tr"), 8);

    // The hover names the trial under the mouse.
    let (id, tooltip) = hover_a_curve(
        &mut browser,
        "#curves .figure[data-group=adam] svg[data-metric=val_loss]",
    );
    assert!(
        tooltip.starts_with(&format!("trial {} (done)", number(id))),
        "{tooltip}"
    );
    assert!(tooltip.contains("optimizer=adam"), "{tooltip}");
    assert!(tooltip.contains("validation loss"), "{tooltip}");

    // Clicking a row highlights its trial in every plot.
    let first = ranked[0].id;
    browser.click_on(&format!("#trials tbody tr[data-trial='{first}']"));
    assert_eq!(
        count(
            &mut browser,
            &format!("path.curve.selected[data-trial='{first}']")
        ),
        3
    );
    assert_eq!(
        count(
            &mut browser,
            &format!("path.pc-line.selected[data-trial='{first}']")
        ),
        1
    );
    assert_eq!(count(&mut browser, "#trials tr.selected"), 1);

    // The confusion matrix: the counts on hover.
    browser.click_on("#confusion rect.cell[data-actual='0'][data-predicted='0']");
    browser.wait_for(
        "document.getElementById('tooltip').textContent.startsWith('true 0, predicted 0')",
    );
    assert_eq!(browser.exceptions(), Vec::<Value>::new());
    let file = format!("file://{}", page.display());
    assert_eq!(browser.requests(), [file], "the page alone, nothing else");
}

fn a_halving_sweeps_page_says_each_status_once_and_draws_every_trial() {
    let mut browser = Browser::launch();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // 12 trials; halving keeps 4 after epoch 1, so 8 stop with one epoch (a single point).
    let grid = "lr = [0.05, 0.01, 0.000001]\nneurons = [4, 8]\noptimizer = [\"sgd\", \"adam\"]";
    let file = sweep_file("halving", 3, grid, 2).replace(
        "[run]",
        "[prune]\nmethod = \"halving\"\nmin_epochs = 1\nreduction_factor = 3\n\n[run]",
    );
    std::fs::write(dir.join("s.toml"), file).unwrap();
    let out = sweep(dir, &["run", "s.toml", "--db", "sweep.db"]);
    assert!(out.status.success(), "{}", text(&out).1);
    let out = sweep(dir, &["report", "halving", "--db", "sweep.db"]);
    assert!(out.status.success(), "{}", text(&out).1);
    let trials = stored_trials(&dir.join("sweep.db"), "halving");
    let single = trials.iter().filter(|t| t.epochs.len() == 1).count();
    assert_eq!(single, 8, "8 stopped at the first rung");
    let page = dir.join("results/halving/report.html");
    browser.open(
        &format!("file://{}", page.display()),
        "document.body.dataset.rendered",
    );
    browser.screenshot(&artifacts_dir().join("report-halving.png"));
    browser.screenshot_of(
        "#parallel-svg",
        2.0,
        &artifacts_dir().join("report-halving-parallel.png"),
    );
    browser.screenshot_of(
        "#curves .figure[data-group=adam]",
        2.0,
        &artifacts_dir().join("report-halving-curves.png"),
    );

    // The status cell says the status once: `stopped at epoch 1: …`.
    let statuses = column(&mut browser, 4);
    assert_eq!(statuses.len(), 12);
    for status in &statuses {
        assert!(!status.contains("stopped \u{2014} stopped"), "{status}");
    }
    let stopped = statuses
        .iter()
        .filter(|s| s.starts_with("stopped at epoch 1: "))
        .count();
    assert_eq!(stopped, 8, "{statuses:?}");

    // Each figure's legend names every curve's trial, its status when it did not finish.
    for optimizer in ["adam", "sgd"] {
        let figure = format!("#curves .figure[data-group={optimizer}]");
        let entries = browser.eval(&format!(
            "Array.from(document.querySelectorAll('{figure} .legend-item'))
               .map((e) => [Number(e.dataset.trial), e.textContent])"
        ));
        let entries: Vec<(i64, String)> = serde_json::from_value(entries).unwrap();
        let drawn = curves(&mut browser, "val_f1")[optimizer].clone();
        let drawn: BTreeSet<i64> = serde_json::from_value(drawn).unwrap();
        assert_eq!(entries.iter().map(|e| e.0).collect::<BTreeSet<_>>(), drawn);
        for (id, entry) in &entries {
            let t = trials.iter().find(|t| t.row.id == *id).unwrap();
            assert!(
                entry.starts_with(&format!("{} lr=", t.row.number)),
                "{entry}"
            );
            assert!(!entry.contains("optimizer="), "the figure says it: {entry}");
            let status = t.row.status.name();
            assert_eq!(
                entry.ends_with(&format!("({status})")),
                status != "done",
                "{entry}"
            );
        }
    }
    // A trial with one epoch is a marker in each of the three charts.
    assert_eq!(
        count(&mut browser, "#curves circle.curve-marker"),
        3 * single
    );
    let radius =
        browser.eval("Number(document.querySelector('circle.curve-marker').getAttribute('r'))");
    assert!(radius.as_f64().unwrap() >= 3.0);

    // Parallel coordinates: the objective's labels right of its axis, away from the lines;
    // the others' on a white halo that the lines pass under.
    let labels = browser.eval(
        "Array.from(document.querySelectorAll('#parallel-svg g.pc-axis')).map((g) => {
           const axis = Number(g.querySelector('line').getAttribute('x1'));
           return Array.from(g.querySelectorAll('text:not(.title)')).map((t) => [
             Number(t.getAttribute('x')) - axis, getComputedStyle(t).paintOrder,
             getComputedStyle(t).stroke]);
         })",
    );
    let axes = labels.as_array().unwrap();
    assert_eq!(axes.len(), 4, "lr, neurons, optimizer and the objective");
    for (i, axis) in axes.iter().enumerate() {
        for label in axis.as_array().unwrap() {
            let offset = label[0].as_f64().unwrap();
            if i == axes.len() - 1 {
                assert!(offset > 0.0, "the objective's labels on the right: {label}");
            } else {
                assert!(offset < 0.0, "{label}");
            }
            assert!(label[1].as_str().unwrap().starts_with("stroke"), "{label}");
            assert_eq!(label[2], "rgb(255, 255, 255)", "{label}");
        }
    }
    assert_eq!(browser.exceptions(), Vec::<Value>::new());
}

/// Starts `sweep serve --addr 127.0.0.1:0` on `db` in `dir`; its URL.
fn spawn_serve(dir: &Path, db: &str) -> (Child, String) {
    let mut child = Command::new(sweep_bin())
        .args(["serve", "--db", db, "--addr", "127.0.0.1:0"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(common::DEADLINE)
        .expect("sweep serve says where it listens");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .trim_end_matches('/')
        .to_string();
    (child, url)
}

/// Stops a server the test started.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn epochs_shown(browser: &mut Browser) -> usize {
    browser
        .eval("Number(document.getElementById('epoch-count').dataset.count)")
        .as_u64()
        .unwrap() as usize
}

fn served_page_grows_while_the_sweep_runs() {
    let mut browser = Browser::launch();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // 4 trials of 12 epochs, one at a time.
    let grid = "lr = [0.05, 0.01]\noptimizer = [\"sgd\", \"adam\"]";
    std::fs::write(dir.join("s.toml"), sweep_file("live", 12, grid, 1)).unwrap();
    let (server, url) = spawn_serve(dir, "sweep.db");
    let _server = Server(server);
    let mut run = spawn_run(dir, "s.toml");
    let db = dir.join("sweep.db");
    wait_for("a first epoch recorded", &mut run, &db, "live", |t| {
        t.iter().any(|t| !t.epochs.is_empty())
    });
    // The runner is the database's only writer: stopped, the page and the database agree
    // on a count that can only grow once it goes on.
    signal(run.id(), libc::SIGSTOP);
    wait_until("the scheduler to stop (SIGSTOP)", || {
        (process_state(run.id()) == Some('T')).then_some(())
    });
    let recorded: usize = stored_trials(&db, "live")
        .iter()
        .map(|t| t.epochs.len())
        .sum();
    browser.open(
        &format!("{url}/sweeps/live"),
        "document.body.dataset.rendered",
    );
    assert_eq!(epochs_shown(&mut browser), recorded);
    assert_eq!(count(&mut browser, "#trials tbody tr"), 4);
    signal(run.id(), libc::SIGCONT);
    browser.wait_for(&format!(
        "Number(document.getElementById('epoch-count').dataset.count) > {recorded}"
    ));
    let running = stored_trials(&db, "live")
        .iter()
        .any(|t| t.row.status != sweep_store::TrialStatus::Done);
    browser.screenshot(&artifacts_dir().join("serve.png"));
    let status = run.wait().unwrap();
    assert!(status.success(), "the sweep failed");
    // Everything the sweep recorded reaches the page, without a reload.
    browser.wait_for("Number(document.getElementById('epoch-count').dataset.count) === 48");
    browser.wait_for("document.querySelectorAll('#trials tbody tr').length === 4");
    let trials = stored_trials(&db, "live");
    let optimizer = |id: i64| optimizer_of(&trials, id);
    browser.wait_for("!document.getElementById('confusion').querySelector('.empty')");
    assert_curves_match_table(&mut browser, &optimizer);
    assert_eq!(browser.exceptions(), Vec::<Value>::new());
    eprintln!("the page grew while trials were still running: {running}");
}

/// A database made through the store, as a run would leave it: `trials` done trials of
/// `epochs` epochs each, with `params(i)` and a 10-class confusion matrix. Returns nothing;
/// the pool is closed so the file stands alone (no WAL beside it).
fn synthetic_database(path: &Path, name: &str, params: &[Value], epochs: usize, extra: &[&str]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pool = sweep_store::open(path).await.unwrap();
        for other in extra {
            sweep_store::record_sweep(&pool, other, "other.toml", "", &[])
                .await
                .unwrap();
        }
        let config =
            r#"{"train":{"objective":"val_f1","epochs":60},"data":{"synthetic":{"classes":10}}}"#;
        let new: Vec<NewTrial> = params
            .iter()
            .enumerate()
            .map(|(i, p)| NewTrial {
                until_epoch: None,
                grid_index: i as i64,
                summary: TrialSummary {
                    params: serde_json::from_value(p.clone()).expect("params of a trial"),
                    goal: Goal {
                        metric: "val_f1".into(),
                        direction: Direction::Maximise,
                    },
                    epochs: 60,
                    classes: Some(10),
                },
                config: config.into(),
                config_hash: format!("hash{i}"),
                origin: sweep_store::TrialOrigin::Grid,
            })
            .collect();
        let sweep = sweep_store::record_sweep(&pool, name, "synthetic.toml", "", &new)
            .await
            .unwrap();
        for (i, t) in sweep_store::trials(&pool, sweep)
            .await
            .unwrap()
            .iter()
            .enumerate()
        {
            // A trial ends only while it runs: claim it first (the trials come in grid order,
            // the order claims take them in).
            let claimed = sweep_store::claim_trial(
                &pool,
                sweep,
                "synthetic",
                "cpu",
                std::time::Duration::from_secs(3600),
            )
            .await
            .unwrap()
            .expect("a pending trial");
            assert_eq!(claimed.id, TrialId(t.id));
            let quality = 0.3 + 0.5 * ((i * 37) % 100) as f64 / 100.0;
            let rows: Vec<sweep_store::EpochRow> = (1..=epochs)
                .map(|e| {
                    let f = e as f64 / epochs as f64;
                    let metrics = [
                        ("train_loss", 2.3 * (1.0 - quality * f) + 0.01 * i as f64),
                        ("train_acc", quality * f),
                        (
                            "val_loss",
                            2.3 * (1.0 - 0.9 * quality * f) + 0.013 * (e % 7) as f64,
                        ),
                        ("val_acc", quality * f * 0.95),
                        ("val_f1", quality * f * 0.93 + 0.001 * (e % 5) as f64),
                        ("lr", 0.01),
                    ];
                    sweep_store::EpochRow {
                        epoch: e as i64,
                        seconds: 1.5,
                        metrics: metrics.map(|(name, v)| (name.to_string(), v)).into(),
                    }
                })
                .collect();
            sweep_store::record_epochs(&pool, TrialId(t.id), &rows)
                .await
                .unwrap();
            let confusion: Vec<u64> = (0..100)
                .map(|c| if c / 10 == c % 10 { 15 } else { (c % 3) as u64 })
                .collect();
            let best = rows
                .iter()
                .max_by(|a, b| a.metrics["val_f1"].total_cmp(&b.metrics["val_f1"]))
                .unwrap();
            let ending = Ending::Done {
                best_epoch: best.epoch,
                objective: best.metrics["val_f1"],
                checkpoint: Some("none".into()),
                confusion,
                classes: 10,
                note: None,
            };
            sweep_store::end_trial(&pool, TrialId(t.id), &ending)
                .await
                .unwrap();
        }
        sweep_store::close(pool).await;
    });
}

fn report_html_of_100_trials_of_60_epochs_is_small_and_draws_them_all() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let params: Vec<Value> = (0..100)
        .map(|i| {
            let lr = [0.1, 0.03, 0.01, 0.003, 0.001][i % 5];
            let neurons = [16, 32, 64, 128, 256][(i / 5) % 5];
            let optimizer = ["adam", "sgd", "rmsprop", "adamw"][i / 25];
            json!({ "lr": lr, "neurons": neurons, "optimizer": optimizer })
        })
        .collect();
    synthetic_database(&dir.join("big.db"), "big", &params, 60, &[]);
    let out = sweep(dir, &["report", "big", "--db", "big.db"]);
    assert!(out.status.success(), "{}", text(&out).1);
    let page = dir.join("results/big/report.html");
    let bytes = std::fs::metadata(&page).unwrap().len();
    eprintln!("report.html of 100 trials × 60 epochs: {bytes} bytes");
    assert!(bytes < 400_000, "report.html is {bytes} bytes");
    let mut browser = Browser::launch();
    browser.open(
        &format!("file://{}", page.display()),
        "document.body.dataset.rendered",
    );
    assert_eq!(count(&mut browser, "#trials tbody tr"), 100);
    assert_eq!(
        count(&mut browser, "svg[data-metric=val_f1] path.curve"),
        100
    );
    assert_eq!(count(&mut browser, "#curves .figure"), 4);
    assert_eq!(count(&mut browser, "#confusion rect.cell"), 100);
    browser.screenshot(&artifacts_dir().join("report-100x60.png"));
    assert_eq!(browser.exceptions(), Vec::<Value>::new());
}

fn the_importance_panel_and_a_slice_per_hyperparameter_show_the_grid() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // A complete 3 × 2 grid over 2 seeds: exact, with a noise share and intervals.
    let params: Vec<Value> = (0..12)
        .map(|i| {
            let lr = [0.1, 0.01, 0.001][i / 4];
            let optimizer = ["adam", "sgd"][(i / 2) % 2];
            json!({ "lr": lr, "optimizer": optimizer, "seed": i % 2 })
        })
        .collect();
    synthetic_database(&dir.join("imp.db"), "imp", &params, 3, &[]);
    let out = sweep(dir, &["report", "imp", "--db", "imp.db"]);
    assert!(out.status.success(), "{}", text(&out).1);
    let mut browser = Browser::launch();
    browser.open(
        &format!("file://{}", dir.join("results/imp/report.html").display()),
        "document.body.dataset.rendered",
    );
    assert_eq!(
        browser.eval("document.getElementById('importance-svg').dataset.method"),
        json!("exact")
    );
    let terms = browser.eval(
        "Array.from(document.querySelectorAll('#importance rect.imp-bar')).map((r) => r.dataset.term)",
    );
    let mut terms: Vec<String> = serde_json::from_value(terms).unwrap();
    terms.sort();
    assert_eq!(
        terms,
        ["lr", "lr × optimizer", "optimizer", "seed-to-seed noise"]
    );
    assert_eq!(
        count(&mut browser, "#importance line.whisker"),
        4 * 3,
        "a whisker and its two ends per bar"
    );
    assert!(browser
        .eval("document.getElementById('importance-method').textContent")
        .as_str()
        .unwrap()
        .starts_with("exact: the functional ANOVA of the cell means of the complete 3×2 (lr × optimizer) grid, 12 trials over 2 seeds"));
    // A slice per hyperparameter (the seed too), every trial a point, one best.
    let axes = browser.eval(
        "Array.from(document.querySelectorAll('#slices svg.slice')).map((s) => s.dataset.axis)",
    );
    assert_eq!(axes, json!(["lr", "optimizer", "seed"]));
    assert_eq!(count(&mut browser, "#slices circle.slice-point"), 3 * 12);
    assert_eq!(count(&mut browser, "#slices circle.slice-point.best"), 3);
    let first_row = browser.eval("document.querySelector('#trials tbody tr').dataset.trial");
    let best_point =
        browser.eval("document.querySelector('svg.slice[data-axis=lr] circle.best').dataset.trial");
    assert_eq!(
        best_point, first_row,
        "the best point is the table's first row"
    );
    // A click on a point picks its trial out everywhere.
    browser.click_on("svg.slice[data-axis=optimizer] circle.best");
    assert_eq!(count(&mut browser, "#trials tbody tr.selected"), 1);
    assert_eq!(
        count(&mut browser, "#slices circle.slice-point.selected"),
        3
    );
    browser.screenshot_of(
        "#lower",
        1.0,
        &artifacts_dir().join("report-importance.png"),
    );
    browser.screenshot_of(
        "#slices-box",
        1.0,
        &artifacts_dir().join("report-slices.png"),
    );
    assert_eq!(browser.exceptions(), Vec::<Value>::new());
}

fn served_page_shows_hostile_names_as_text_404s_and_survives_a_replaced_database() {
    let mut browser = Browser::launch();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let name = "<script>alert(1)</script>";
    let hostile = r#"a"b'<img src=x onerror=alert(2)>"#;
    let params = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| {
                let lr = [0.1, 0.01][i % 2];
                let optimizer = [hostile, "sgd"][i / 2 % 2];
                json!({ "lr": lr, "optimizer": optimizer })
            })
            .collect()
    };
    synthetic_database(&dir.join("sweep.db"), name, &params(4), 3, &[]);
    let (server, url) = spawn_serve(dir, "sweep.db");
    let _server = Server(server);
    browser.before_each_document(
        "window.alerts = []; window.alert = (m) => window.alerts.push(String(m));",
    );

    // The list of sweeps: the name is a link's text.
    browser.open(&format!("{url}/"), "document.querySelector('a')");
    assert_eq!(
        browser.eval("document.querySelector('li a').textContent"),
        json!(name)
    );
    assert_eq!(count(&mut browser, "script"), 0);
    browser.click_on("li a");
    browser.wait_for("location.pathname.startsWith('/sweeps/') && document.body && document.body.dataset.rendered");
    assert_eq!(
        browser.eval("document.getElementById('title').textContent"),
        json!(format!("Sweep {name}"))
    );
    assert_eq!(
        browser.eval("document.title"),
        json!(format!("sweep {name}"))
    );
    assert_eq!(count(&mut browser, "script"), 2, "the page's own two only");
    assert_eq!(count(&mut browser, "img"), 0);
    let cells = browser.eval(
        "Array.from(document.querySelectorAll('#trials tbody td')).map((td) => td.textContent)",
    );
    assert!(
        cells.as_array().unwrap().contains(&json!(hostile)),
        "{cells}"
    );
    let options =
        browser.eval("Array.from(document.querySelectorAll('option')).map((o) => o.value)");
    assert!(
        options.as_array().unwrap().contains(&json!(hostile)),
        "{options}"
    );
    assert_eq!(browser.eval("window.alerts"), json!([]));

    // Unknown paths are 404, as is an unknown sweep; the sweep's data endpoint answers.
    let status = |browser: &mut Browser, path: &str| {
        browser.eval(&format!(
            "fetch({}).then((r) => r.status)",
            serde_json::to_string(path).unwrap()
        ))
    };
    assert_eq!(status(&mut browser, "/nope"), json!(404));
    assert_eq!(status(&mut browser, "/sweeps/nope"), json!(404));
    assert_eq!(status(&mut browser, "/api/sweeps/nope"), json!(404));
    assert_eq!(status(&mut browser, "/sweeps/a/b"), json!(404));
    let encoded = "/api/sweeps/%3Cscript%3Ealert(1)%3C%2Fscript%3E?after=0";
    assert_eq!(status(&mut browser, encoded), json!(200));
    assert_eq!(epochs_shown(&mut browser), 12);

    // Another database put in its place: the open page shows the new one.
    let next = dir.join("next.db");
    synthetic_database(&next, name, &params(6), 5, &["first"]);
    // Replaced as a person does: moved over sweep.db alone, beside the -wal and -shm files
    // the server's read-only connections left there for the old database.
    for companion in ["sweep.db-wal", "sweep.db-shm"] {
        assert!(
            dir.join(companion).exists(),
            "{companion} is left beside sweep.db"
        );
    }
    std::fs::rename(&next, dir.join("sweep.db")).unwrap();
    browser.wait_for("Number(document.getElementById('epoch-count').dataset.count) === 30");
    browser.wait_for("document.querySelectorAll('#trials tbody tr').length === 6");
    assert_eq!(browser.eval("window.alerts"), json!([]));
    browser.screenshot(&artifacts_dir().join("serve-hostile.png"));
    assert_eq!(browser.exceptions(), Vec::<Value>::new());
}

/// A command trial's sweep (a Python program through the repository's helper, reporting
/// `score` and `w`): the page charts its objective per optimizer, and no built-in metric.
fn a_command_sweeps_page_charts_the_metrics_its_program_reports() {
    let mut browser = Browser::launch();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let helper = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../python");
    let program = format!(
        "import sys; sys.path.insert(0, {:?}); from sweep_trial import Trial; t = Trial(); \
         x = t.params['x'] * (2 if t.params['optimizer'] == 'adam' else 1); \
         [t.report(e, score=x * e / 3, w=e) for e in t.epochs()]",
        helper.display().to_string()
    );
    let file = format!(
        r#"name = "own"

[trial]
command = ["python3", "-c", {program:?}]
epochs = 3
objective = "score"
direction = "maximize"

[params]
optimizer = "adam"
x = 1

[grid]
optimizer = ["adam", "sgd"]
x = [1, 2]
"#
    );
    std::fs::write(dir.join("own.toml"), file).unwrap();
    let out = sweep(dir, &["run", "own.toml", "--db", "sweep.db"]);
    assert!(out.status.success(), "{:?}", text(&out));
    let out = sweep(dir, &["report", "own", "--db", "sweep.db"]);
    assert!(out.status.success(), "{}", text(&out).1);
    let page = dir.join("results/own/report.html");
    browser.open(
        &format!("file://{}", page.display()),
        "document.body.dataset.rendered",
    );
    let trials = stored_trials(&dir.join("sweep.db"), "own");
    let ids = |optimizer: &str| -> Vec<i64> {
        trials
            .iter()
            .filter(|t| optimizer_of(&trials, t.row.id).as_deref() == Some(optimizer))
            .map(|t| t.row.id)
            .collect()
    };
    assert_eq!(
        curves(&mut browser, "score"),
        serde_json::json!({ "adam": ids("adam"), "sgd": ids("sgd") }),
        "a curve of its objective per trial, by optimizer"
    );
    assert_eq!(
        count(&mut browser, "svg[data-metric=val_f1]"),
        0,
        "no metric it lacks"
    );
    assert_eq!(count(&mut browser, "svg[data-metric=train_loss]"), 0);
    // Best first by its score: adam with x = 2 (4 × 3 / 3).
    let best = trials
        .iter()
        .find(|t| t.row.objective == Some(4.0))
        .expect("the best trial");
    assert_eq!(column(&mut browser, 0)[0], best.row.number.to_string());
}
