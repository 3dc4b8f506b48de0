//! The Slurm executor end to end, on a real Slurm (`.ci/slurm-up` starts a one-node cluster
//! with MaxArraySize=8): a sweep's trials done through Slurm with a local run's metrics, a
//! killed scheduler re-attached without a second submission, a requeued job resumed from its
//! checkpoint, a job past its time limit warned (`--signal=B:USR2`), requeued by its own
//! script and resumed (and, with `max_requeues = 0`, failed naming the bound), cancelled and
//! killed jobs failed with Slurm's reason (and retried), a bad partition refused with sbatch's
//! words, a grid chunked into several arrays, a command trial (a user's program) paused
//! and resumed by halving across jobs, and a TPE search making a local run's trials.
//!
//! Without Slurm these tests are reported as ignored, with the reason, unless
//! `SWEEP_REQUIRE_SLURM=1` (as in CI) makes that a failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sweep_store::TrialStatus;
mod common;

use common::{stored_trials, sweep_bin, text, trial_dir, wait_for, wait_until, StoredTrial};

/// What this machine lacks to run these tests against, if anything: `sbatch` on the PATH and
/// a controller answering `squeue`.
fn slurm_missing() -> Option<String> {
    let works = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let here = works("sbatch", &["--version"]) && works("squeue", &["-h", "-o", "%i"]);
    (!here).then(|| {
        "no Slurm here (sbatch on the PATH and a controller answering squeue): start a one-node \
         test cluster as root with `.ci/slurm-up`"
            .to_string()
    })
}

fn main() {
    common::run_needing(
        "SWEEP_REQUIRE_SLURM",
        slurm_missing(),
        // One at a time: a test's jobs are then the only ones of the suite on the cluster, so
        // each wait is for its own jobs, never for a queue behind another test's.
        1,
        tests![
            the_quick_sweep_runs_through_slurm_with_a_local_runs_metrics,
            a_killed_scheduler_is_re_attached_and_no_trial_is_submitted_twice,
            a_requeued_job_resumes_from_its_checkpoint_without_a_duplicate_epoch,
            a_cancelled_job_fails_with_slurms_reason_and_is_retried_with_max_retries,
            a_job_whose_trial_is_killed_on_the_node_fails_with_a_reason,
            a_bad_partition_exits_2_with_sbatchs_message_and_submits_nothing,
            a_grid_larger_than_max_array_size_is_chunked_and_every_trial_runs_once,
            a_job_past_its_time_limit_is_warned_requeued_and_resumed_from_its_checkpoint,
            a_job_past_its_time_limit_with_no_requeue_left_fails_naming_the_bound,
            a_command_trial_runs_as_a_job_pauses_at_its_rung_and_resumes_in_the_next,
            a_tpe_search_on_slurm_makes_the_trials_a_local_run_makes_in_the_same_order
        ],
    )
}

/// A sweep name no earlier test run on this cluster used (Slurm remembers jobs for an hour).
fn unique(name: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 1_000_000;
    format!("{name}{}x{now}", std::process::id())
}

/// A small Slurm sweep on synthetic data: `lr` × 2 optimizers, `epochs` epochs of `train`
/// images; `slurm` is added to its `[run.slurm]` table. At most 2 of its jobs run at once
/// unless `slurm` says otherwise: a test never floods a cluster, whatever its limits.
fn sweep_file(name: &str, lr: &str, epochs: u32, train: usize, run: &str, slurm: &str) -> String {
    let throttle = if slurm.contains("max_parallel") {
        ""
    } else {
        "max_parallel = 2\n"
    };
    format!(
        r#"name = "{name}"

[data]
synthetic = {{ classes = 3, size = 24, train = {train}, val = 30, test = 10, seed = 1 }}

[model]
arch = "resnet"
filters = [8, 16]
neurons = 8
dropout = 0.1

[train]
epochs = {epochs}
batch_size = 16
seed = 3

[grid]
lr = {lr}
optimizer = ["adam", "sgd"]

[run]
executor = "slurm"
devices = "cpu"
{run}

[run.slurm]
cpus_per_trial = 1
{slurm}
{throttle}"#
    )
}

/// `sweep ARGS` in `dir`, waited for; its exit code, stdout and stderr.
fn sweep(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(sweep_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

/// Starts `sweep run FILE --db sweep.db` in `dir`.
fn spawn_run(dir: &Path, file: &str) -> Child {
    Command::new(sweep_bin())
        .args(["run", file, "--db", "sweep.db"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a `sweep run` to end, within the deadline; its exit code, stdout and stderr.
fn finish(child: Child) -> (Option<i32>, String, String) {
    let mut child = child;
    wait_until("the scheduler to exit", || {
        child.try_wait().unwrap().map(|_| ())
    });
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

/// Every job (`123_4`) Slurm knows by the sweep's job name, pending, running or ended.
fn jobs_named(sweep: &str) -> Vec<String> {
    let out = Command::new("squeue")
        .args(["-h", "-r", "--states=all", "-o", "%i"])
        .arg(format!("--name=sweep-{sweep}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .collect()
}

/// The jobs a trial folder lists, one per submission.
fn jobs_of(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("slurm_jobs"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The epoch numbers of a trial folder's `epoch` events, in file order.
fn epoch_events(dir: &Path) -> Vec<u64> {
    events(dir)
        .iter()
        .filter(|e| e["event"] == "epoch")
        .map(|e| e["epoch"].as_u64().unwrap())
        .collect()
}

fn events(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The epochs' metrics without their timings: what must not depend on where a trial ran.
fn metrics(t: &StoredTrial) -> Vec<std::collections::BTreeMap<String, f64>> {
    t.metrics.iter().map(|e| e.metrics.clone()).collect()
}

/// The trials of `sweep` in `dir`'s database, by configuration hash.
fn by_hash(dir: &Path, sweep: &str) -> std::collections::BTreeMap<String, StoredTrial> {
    stored_trials(&dir.join("sweep.db"), sweep)
        .into_iter()
        .map(|t| (t.row.config_hash.clone(), t))
        .collect()
}

/// Runs the sweep file `file` of `dir` locally, in `dir/local/` (its own database and
/// results), with one trial at a time on every core.
fn run_locally(dir: &Path, file: &str) -> PathBuf {
    let local = dir.join("local");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::copy(dir.join(file), local.join(file)).unwrap();
    let (code, _, stderr) = sweep(
        &local,
        &[
            "run",
            file,
            "--db",
            "sweep.db",
            "--executor",
            "local",
            "--jobs",
            "1",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    local
}

/// The pids of the `sweep trial` processes that run the trial in `dir`.
fn trial_processes(dir: &Path) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            common::trial_dir_of_process(pid).is_some_and(|d| d == dir)
                && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "sweep")
        })
        .collect()
}

/// Waits until some trial of the sweep runs with at least `epochs` epochs recorded and
/// returns it.
fn a_running_trial(run: &mut Child, db: &Path, sweep: &str, epochs: usize) -> StoredTrial {
    let trials = wait_for(
        "a trial running with enough epochs",
        run,
        db,
        sweep,
        |trials| {
            let ended = !trials.is_empty() && trials.iter().all(|t| t.row.status.is_final());
            assert!(
                !ended,
                "the trials ended before the test could act: make them longer"
            );
            trials
                .iter()
                .any(|t| t.row.status == TrialStatus::Running && t.epochs.len() >= epochs)
        },
    );
    trials
        .into_iter()
        .find(|t| t.row.status == TrialStatus::Running && t.epochs.len() >= epochs)
        .unwrap()
}

/// The state of a job as squeue shows it (empty when Slurm does not know it).
fn job_state(job: &str) -> String {
    let out = Command::new("squeue")
        .args(["-h", "-r", "--states=all", "-o", "%T", "-j", job])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A job's state and reason as squeue shows them (empty when Slurm does not know it).
fn job_state_and_reason(job: &str) -> (String, String) {
    let out = Command::new("squeue")
        .args(["-h", "-r", "--states=all", "-o", "%T|%r", "-j", job])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (state, reason) = line.split_once('|').unwrap_or((&line, ""));
    (state.to_string(), reason.to_string())
}

/// How many times Slurm requeued a job (`Restarts=` of `scontrol show job`).
fn restarts(job: &str) -> u32 {
    let out = Command::new("scontrol")
        .args(["show", "job", job])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace()
        .find_map(|field| field.strip_prefix("Restarts=")?.parse().ok())
        .unwrap_or_else(|| panic!("no Restarts= in `scontrol show job {job}`: {text}"))
}

/// Lets a requeued job start again at once instead of after Slurm's delay for requeued jobs
/// (`PENDING (BeginTime)`, about 2 minutes), once it has been pending that way for 2 s: a
/// start whose job credential dates from the same second as the previous start's end is
/// refused by slurmd ("Job credential revoked") and the job ends FAILED, which that delay
/// is there to prevent.
#[derive(Default)]
struct Release {
    pending_since: Option<Instant>,
    /// How many times the job was let go.
    done: u32,
}

impl Release {
    /// Looks at `job` once; lets it go when it is time.
    fn poll(&mut self, job: &str) {
        let (state, reason) = job_state_and_reason(job);
        if state != "PENDING" || reason != "BeginTime" {
            self.pending_since = None;
            return;
        }
        let since = *self.pending_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= Duration::from_secs(2) {
            scontrol(&["update", &format!("jobid={job}"), "starttime=now"]);
            self.done += 1;
            self.pending_since = None;
        }
    }
}

fn scontrol(args: &[&str]) {
    let out = Command::new("scontrol").args(args).output().unwrap();
    assert!(out.status.success(), "scontrol {args:?}: {}", text(&out).1);
}

fn the_quick_sweep_runs_through_slurm_with_a_local_runs_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let name = unique("quick");
    let quick = include_str!("../../../sweeps/quick.toml")
        .replace("name = \"quick\"", &format!("name = \"{name}\""))
        .replace("[run]\n", "[run]\nexecutor = \"slurm\"\n")
        // The same on any cluster: arrays of at most 8, 4 jobs at a time.
        + "\n[run.slurm]\narray_size = 8\nmax_parallel = 4\n";
    std::fs::write(dir.join("quick.toml"), &quick).unwrap();
    let started = Instant::now();
    let (code, stdout, stderr) = sweep(dir, &["run", "quick.toml", "--db", "sweep.db"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("submitted 12 trials to Slurm as 2 job arrays"),
        "{stderr}"
    );
    eprintln!(
        "12 trials through Slurm in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let slurm = by_hash(dir, &name);
    let results = dir.join("results");
    for t in slurm.values() {
        assert_eq!(t.row.status, TrialStatus::Done, "{:?}", t.row);
        assert_eq!(t.epochs, (1..=6).collect::<Vec<_>>());
        let folder = trial_dir(&results, &name, &t.row);
        let jobs = jobs_of(&folder);
        assert_eq!(jobs.len(), 1, "one job per trial: {jobs:?}");
        assert_eq!(
            t.row.slurm_job.as_deref(),
            Some(jobs[0].as_str()),
            "recorded with the trial"
        );
    }
    let local = by_hash(&run_locally(dir, "quick.toml"), &name);
    assert_eq!(slurm.len(), 12);
    for (hash, t) in &slurm {
        let l = &local[hash];
        assert_eq!(
            metrics(t),
            metrics(l),
            "trial {}: the same metrics on Slurm (1 thread) as locally",
            t.row.number
        );
        assert_eq!(t.row.objective, l.row.objective);
        assert_eq!(t.row.best_epoch, l.row.best_epoch);
    }
}

fn a_killed_scheduler_is_re_attached_and_no_trial_is_submitted_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let name = unique("kill");
    let file = sweep_file(
        &name,
        "[0.01, 0.005, 0.001]",
        6,
        200,
        "",
        "max_parallel = 2",
    );
    std::fs::write(dir.join("k.toml"), file).unwrap();
    let db = dir.join("sweep.db");
    let mut run = spawn_run(dir, "k.toml");
    let pid = run.id();
    wait_for(
        "an epoch recorded while a trial has work left",
        &mut run,
        &db,
        &name,
        |trials| {
            trials.iter().any(|t| !t.epochs.is_empty())
                && trials.iter().any(|t| t.row.status != TrialStatus::Done)
        },
    );
    // A second scheduler on the same sweep is refused while the first is alive.
    let (code, _, stderr) = sweep(dir, &["run", "k.toml", "--db", "sweep.db"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("is followed by another `sweep run`"),
        "{stderr}"
    );
    common::signal(pid, libc::SIGKILL);
    let _ = finish(run);
    // The jobs go on without it.
    let (code, stdout, stderr) = sweep(dir, &["run", "k.toml", "--db", "sweep.db"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("re-attached to"), "{stderr}");
    let trials = stored_trials(&db, &name);
    let results = dir.join("results");
    for t in &trials {
        assert_eq!(t.row.status, TrialStatus::Done, "{:?}", t.row);
        assert_eq!(t.epochs, (1..=6).collect::<Vec<_>>());
        assert_eq!(t.row.attempts, 1, "{:?}", t.row);
        assert_eq!(
            jobs_of(&trial_dir(&results, &name, &t.row)).len(),
            1,
            "{:?}",
            t.row
        );
    }
    let mut jobs = jobs_named(&name);
    jobs.sort();
    jobs.dedup();
    assert_eq!(jobs.len(), trials.len(), "one job per trial: {jobs:?}");
}

fn a_requeued_job_resumes_from_its_checkpoint_without_a_duplicate_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let name = unique("requeue");
    let file = sweep_file(&name, "[0.01]", 12, 1500, "", "");
    std::fs::write(dir.join("r.toml"), file).unwrap();
    let db = dir.join("sweep.db");
    let mut run = spawn_run(dir, "r.toml");
    let trial = a_running_trial(&mut run, &db, &name, 2);
    let job = trial.row.slurm_job.clone().unwrap();
    let folder = trial_dir(&dir.join("results"), &name, &trial.row);
    scontrol(&["requeue", &job]);
    // A requeued job waits (Reason=BeginTime) before it may start again: let it go sooner.
    let mut release = Release::default();
    wait_until("the requeued job to be released", || {
        release.poll(&job);
        (release.done > 0).then_some(())
    });
    let (code, stdout, stderr) = finish(run);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let trials = stored_trials(&db, &name);
    for t in &trials {
        assert_eq!(t.row.status, TrialStatus::Done, "{:?}", t.row);
        assert_eq!(t.epochs, (1..=12).collect::<Vec<_>>());
    }
    let all = events(&folder);
    assert!(all.iter().any(|e| e["event"] == "interrupted"), "{all:?}");
    assert_eq!(
        all.iter().filter(|e| e["event"] == "started").count(),
        2,
        "{all:?}"
    );
    let epochs = epoch_events(&folder);
    assert_eq!(
        epochs,
        (1..=12).collect::<Vec<_>>(),
        "no epoch trained twice"
    );
    assert_eq!(jobs_of(&folder), [job], "requeued, not submitted again");
    let local = by_hash(&run_locally(dir, "r.toml"), &name);
    for t in &trials {
        let l = &local[&t.row.config_hash];
        assert_eq!(
            metrics(t),
            metrics(l),
            "the same metrics as an uninterrupted run"
        );
        assert_eq!(t.row.objective, l.row.objective);
    }
}

fn a_cancelled_job_fails_with_slurms_reason_and_is_retried_with_max_retries() {
    let tmp = tempfile::tempdir().unwrap();
    let (once, retried) = (tmp.path().join("once"), tmp.path().join("retried"));
    let (a, b) = (unique("cancel"), unique("retry"));
    for (dir, name, retries) in [(&once, &a, 0), (&retried, &b, 1)] {
        std::fs::create_dir_all(dir).unwrap();
        let run = format!("max_retries = {retries}");
        // One job of each sweep at a time: both sweeps run side by side on the test cluster.
        let file = sweep_file(name, "[0.01]", 20, 1000, &run, "max_parallel = 1");
        std::fs::write(dir.join("c.toml"), file).unwrap();
    }
    let runs = [spawn_run(&once, "c.toml"), spawn_run(&retried, "c.toml")];
    let mut cancelled: Vec<Option<(i64, String)>> = vec![None, None];
    wait_until(
        "a running trial with an epoch in each sweep, to cancel its job",
        || {
            for (i, (dir, name)) in [(&once, &a), (&retried, &b)].into_iter().enumerate() {
                if cancelled[i].is_some() {
                    continue;
                }
                let trials = common::try_stored_trials(&dir.join("sweep.db"), name).ok()?;
                let Some(trial) = trials
                    .iter()
                    .find(|t| t.row.status == TrialStatus::Running && !t.epochs.is_empty())
                else {
                    continue;
                };
                let job = trial.row.slurm_job.clone().unwrap();
                let out = Command::new("scancel").arg(&job).output().unwrap();
                assert!(out.status.success(), "{}", text(&out).1);
                cancelled[i] = Some((trial.row.id, job));
            }
            cancelled.iter().all(Option::is_some).then_some(())
        },
    );
    let cancelled: Vec<(i64, String)> = cancelled.into_iter().flatten().collect();
    let [once_run, retried_run] = runs;
    let (code, stdout, stderr) = finish(once_run);
    assert_eq!(code, Some(1), "a trial failed: {stdout}\n{stderr}");
    let trials = stored_trials(&once.join("sweep.db"), &a);
    for t in &trials {
        if t.row.id == cancelled[0].0 {
            assert_eq!(t.row.status, TrialStatus::Failed, "{:?}", t.row);
            let error = t.row.error.as_deref().unwrap_or_default();
            assert!(
                error.starts_with(&format!("Slurm job {} ended CANCELLED", cancelled[0].1)),
                "{error}"
            );
        } else {
            assert_eq!(
                t.row.status,
                TrialStatus::Done,
                "the others finish: {:?}",
                t.row
            );
        }
    }
    let (code, stdout, stderr) = finish(retried_run);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let trials = stored_trials(&retried.join("sweep.db"), &b);
    for t in &trials {
        assert_eq!(t.row.status, TrialStatus::Done, "{:?}", t.row);
        assert_eq!(t.epochs, (1..=20).collect::<Vec<_>>());
        let jobs = jobs_of(&trial_dir(&retried.join("results"), &b, &t.row));
        if t.row.id == cancelled[1].0 {
            assert_eq!(t.row.attempts, 2, "{:?}", t.row);
            assert_eq!(jobs.len(), 2, "resubmitted once: {jobs:?}");
            assert_eq!(jobs[0], cancelled[1].1);
        } else {
            assert_eq!(jobs.len(), 1, "{jobs:?}");
        }
    }
}

fn a_job_whose_trial_is_killed_on_the_node_fails_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let name = unique("killed");
    let file = sweep_file(&name, "[0.01]", 20, 1000, "", "");
    std::fs::write(dir.join("x.toml"), file).unwrap();
    let db = dir.join("sweep.db");
    let mut run = spawn_run(dir, "x.toml");
    let trial = a_running_trial(&mut run, &db, &name, 1);
    let folder = trial_dir(&dir.join("results"), &name, &trial.row);
    let pids = wait_until("the trial's process on the node", || {
        Some(trial_processes(&folder)).filter(|p| !p.is_empty())
    });
    for pid in pids {
        common::signal(pid, libc::SIGKILL);
    }
    let (code, stdout, stderr) = finish(run);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let t = stored_trials(&db, &name)
        .into_iter()
        .find(|t| t.row.id == trial.row.id)
        .unwrap();
    assert_eq!(
        t.row.status,
        TrialStatus::Failed,
        "not left running: {:?}",
        t.row
    );
    let error = t.row.error.as_deref().unwrap_or_default();
    let job = trial.row.slurm_job.unwrap();
    assert!(
        error.starts_with(&format!("Slurm job {job} ended FAILED")),
        "{error}"
    );
    assert!(error.contains("without a result from its trial"), "{error}");
}

fn a_bad_partition_exits_2_with_sbatchs_message_and_submits_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let name = unique("badpart");
    let file = sweep_file(
        &name,
        "[0.01, 0.001]",
        1,
        40,
        "",
        "partition = \"nosuchpartition\"",
    );
    std::fs::write(dir.join("b.toml"), file).unwrap();
    let (code, stdout, stderr) = sweep(dir, &["run", "b.toml", "--db", "sweep.db"]);
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("sbatch refused the sweep's jobs: sbatch: error:"),
        "{stderr}"
    );
    assert!(
        stderr.to_lowercase().contains("invalid partition"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was submitted"), "{stderr}");
    let trials = stored_trials(&dir.join("sweep.db"), &name);
    assert_eq!(trials.len(), 4);
    for t in &trials {
        assert_eq!(t.row.status, TrialStatus::Pending, "{:?}", t.row);
        assert_eq!((t.row.attempts, t.row.slurm_job.as_deref()), (0, None));
    }
    assert_eq!(jobs_named(&name), Vec::<String>::new(), "nothing submitted");
}

fn a_grid_larger_than_max_array_size_is_chunked_and_every_trial_runs_once() {
    let max_array = sweep_scheduler::executor::slurm::max_array_size();
    // Small on any cluster: arrays of at most 3 (`array_size`, or MaxArraySize where that is
    // smaller), 8 one-epoch trials, 2 jobs at a time.
    let chunk = max_array.min(3);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let name = unique("chunks");
    let file = sweep_file(
        &name,
        "[0.01]",
        1,
        40,
        "",
        "max_parallel = 2\narray_size = 3",
    )
    .replace("[grid]\n", "[grid]\nseed = [0, 1, 2, 3]\n");
    std::fs::write(dir.join("g.toml"), file).unwrap();
    let (code, stdout, stderr) = sweep(dir, &["run", "g.toml", "--db", "sweep.db"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let trials = stored_trials(&dir.join("sweep.db"), &name);
    assert_eq!(trials.len(), 8);
    let mut arrays: Vec<String> = Vec::new();
    for t in &trials {
        assert_eq!(t.row.status, TrialStatus::Done, "{:?}", t.row);
        assert_eq!(t.epochs, [1]);
        let jobs = jobs_of(&trial_dir(&dir.join("results"), &name, &t.row));
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        arrays.push(jobs[0].split('_').next().unwrap().to_string());
    }
    arrays.sort();
    arrays.dedup();
    assert_eq!(
        arrays.len(),
        trials.len().div_ceil(chunk),
        "{} trials in arrays of at most {chunk} (MaxArraySize {max_array})",
        trials.len()
    );
    let mut jobs = jobs_named(&name);
    jobs.sort();
    jobs.dedup();
    assert_eq!(jobs.len(), trials.len(), "every trial's job once: {jobs:?}");
}

/// Epochs of the time-limited trial: about a minute of work on one core of the CI machine
/// (≈ 1.4 s an epoch), more than a job of `time = "1"` has once Slurm's warning comes.
const LIMITED_EPOCHS: u32 = 40;

/// A sweep of one trial that needs longer than its job's time limit: `time = "1"` (minute)
/// and `warning_seconds = 20`. slurmctld checks time limits every 30 s, so the warning
/// (`--signal=B:USR2@20`) reaches the batch shell 10 to 40 s into each start (the sbatch
/// manual allows up to 60 s early: as early as the start), and the limit itself (KillWait 5 s,
/// OverTimeLimit 0 on the test cluster) 60 to 90 s in: the trial stops within a batch, long
/// before that.
fn time_limited_file(name: &str, max_requeues: u32) -> String {
    let slurm = format!("time = \"1\"\nwarning_seconds = 20\nmax_requeues = {max_requeues}");
    sweep_file(name, "[0.01]", LIMITED_EPOCHS, 8000, "", &slurm)
        .replace(r#"optimizer = ["adam", "sgd"]"#, r#"optimizer = ["adam"]"#)
}

/// The events of each kind in a trial folder's events file, in file order.
fn events_of_kind(all: &[serde_json::Value], kind: &str) -> Vec<serde_json::Value> {
    all.iter().filter(|e| e["event"] == kind).cloned().collect()
}

fn a_job_past_its_time_limit_is_warned_requeued_and_resumed_from_its_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let name = unique("timelimit");
    // As many requeues as a loaded machine needs: each start trains 10 to 40 s.
    std::fs::write(dir.join("t.toml"), time_limited_file(&name, 20)).unwrap();
    let db = dir.join("sweep.db");
    let started = Instant::now();
    let mut run = spawn_run(&dir, "t.toml");
    // The same trial uninterrupted, locally, meanwhile: the reference for its metrics.
    let reference = {
        let (dir, name) = (dir.clone(), name.clone());
        std::thread::spawn(move || by_hash(&run_locally(&dir, "t.toml"), &name))
    };
    let trial = wait_for(
        "a trial submitted as a Slurm job",
        &mut run,
        &db,
        &name,
        |trials| trials.iter().any(|t| t.row.slurm_job.is_some()),
    )
    .remove(0);
    let job = trial.row.slurm_job.clone().unwrap();
    let folder = trial_dir(&dir.join("results"), &name, &trial.row);
    // Until the run ends: each time the job requeued itself after Slurm's warning, it waits
    // (Reason=BeginTime, about 2 minutes on this Slurm) before it may start again; let it go
    // after 2 s (see `Release`). Polled every 0.25 s, with a deadline.
    let deadline = Duration::from_secs(900);
    let mut release = Release::default();
    while run.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < deadline,
            "the time-limited sweep did not end within {deadline:?}: job {job} is {:?}",
            job_state_and_reason(&job)
        );
        release.poll(&job);
        std::thread::sleep(Duration::from_millis(250));
    }
    let (code, stdout, stderr) = finish(run);
    let wall = started.elapsed();
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let all = events(&folder);
    let interrupted = events_of_kind(&all, "interrupted");
    let starts = events_of_kind(&all, "started");
    let requeues = restarts(&job);
    eprintln!(
        "a {LIMITED_EPOCHS}-epoch trial with a 1-minute limit: {} starts, done in {:.1} s \
         (let go from BeginTime {} times)",
        starts.len(),
        wall.as_secs_f64(),
        release.done
    );
    assert!(
        !interrupted.is_empty(),
        "Slurm's warning never reached the trial (it finished within its first start): \
         make the trial longer. Events: {:?}",
        all.iter().map(|e| &e["event"]).collect::<Vec<_>>()
    );
    assert_eq!(
        requeues as usize,
        interrupted.len(),
        "the job requeued itself once per warning, under its own id"
    );
    assert_eq!(starts.len(), interrupted.len() + 1, "{all:?}");
    assert_eq!(
        jobs_of(&folder),
        std::slice::from_ref(&job),
        "requeued, never submitted again"
    );
    assert_eq!(
        job_state(&job),
        "COMPLETED",
        "never killed at its time limit"
    );
    // Each start after the first resumed from the checkpoint of the epochs done before.
    let mut done_before = 0;
    let mut resumed_after_epochs = false;
    for e in &all {
        match e["event"].as_str().unwrap() {
            "epoch" => done_before += 1,
            "interrupted" => assert_eq!(e["epochs"], done_before, "{e}"),
            "started" => {
                let history = e["history"].as_array().map_or(0, Vec::len);
                assert_eq!(
                    history, done_before,
                    "resumed from its last checkpoint: {e}"
                );
                resumed_after_epochs |= history > 0;
            }
            _ => {}
        }
    }
    assert!(
        resumed_after_epochs,
        "no start resumed a checkpoint with epochs"
    );
    let epochs = epoch_events(&folder);
    assert_eq!(
        epochs,
        (1..=LIMITED_EPOCHS as u64).collect::<Vec<_>>(),
        "every epoch trained once, in order"
    );
    let trials = stored_trials(&db, &name);
    assert_eq!(trials.len(), 1);
    let t = &trials[0];
    assert_eq!(t.row.status, TrialStatus::Done, "{:?}", t.row);
    assert_eq!(
        t.epochs,
        (1..=LIMITED_EPOCHS as i64).collect::<Vec<_>>(),
        "every epoch recorded once"
    );
    let local = reference.join().unwrap();
    let l = &local[&t.row.config_hash];
    assert_eq!(
        metrics(t),
        metrics(l),
        "the same metrics as an uninterrupted run"
    );
    assert_eq!(t.row.objective, l.row.objective);
    assert_eq!(t.row.best_epoch, l.row.best_epoch);
}

fn a_job_past_its_time_limit_with_no_requeue_left_fails_naming_the_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let name = unique("norequeue");
    std::fs::write(dir.join("n.toml"), time_limited_file(&name, 0)).unwrap();
    let db = dir.join("sweep.db");
    let started = Instant::now();
    let (code, stdout, stderr) = finish(spawn_run(dir, "n.toml"));
    eprintln!(
        "warned and failed without a requeue in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(code, Some(1), "the trial failed: {stdout}\n{stderr}");
    let trials = stored_trials(&db, &name);
    assert_eq!(trials.len(), 1);
    let t = &trials[0];
    assert_eq!(
        t.row.status,
        TrialStatus::Failed,
        "not left running: {:?}",
        t.row
    );
    let job = t.row.slurm_job.clone().unwrap();
    let error = t.row.error.as_deref().unwrap_or_default();
    let first = error.lines().next().unwrap_or_default();
    eprintln!("its reason: {first}");
    assert!(
        first.starts_with(&format!("Slurm job {job} ended")),
        "{error}"
    );
    assert!(first.contains("time limit"), "{error}");
    assert!(first.contains("run.slurm.max_requeues = 0"), "{error}");
    assert_eq!(restarts(&job), 0, "not requeued");
    assert!(job_state_and_reason(&job).0 != "RUNNING");
    let folder = trial_dir(&dir.join("results"), &name, &t.row);
    assert!(trial_processes(&folder).is_empty(), "no trial left running");
    let all = events(&folder);
    let interrupted = events_of_kind(&all, "interrupted");
    assert_eq!(interrupted.len(), 1, "warned once: {all:?}");
    assert_eq!(events_of_kind(&all, "started").len(), 1);
    // Its checkpoint's epochs are recorded, for a later --retry-failed to resume.
    let kept = interrupted[0]["epochs"].as_i64().unwrap();
    assert!(kept < LIMITED_EPOCHS as i64);
    assert_eq!(t.epochs, (1..=kept).collect::<Vec<_>>());
    assert_eq!(common::checkpoint_epochs(&folder) as i64, kept);
}

/// The repository's quadratic example (a standard-library Python command trial) as a sweep
/// of `epochs` epochs on `executor`, `search` saying what it tries: 2 jobs at a time.
fn quadratic(name: &str, executor: &str, epochs: u32, search: &str) -> String {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quadratic/train.py");
    let example = format!("{:?}", example.display().to_string());
    format!(
        r#"name = "{name}"

[trial]
command = ["python3", {example}]
files = [{example}]
epochs = {epochs}
objective = "val_loss"
direction = "minimize"

[params]
lr = 0.1
momentum = 0.0
steps = 5

{search}

[run]
executor = "{executor}"
devices = "cpu"
trials_per_device = 2

[run.slurm]
cpus_per_trial = 1
max_parallel = 2
"#
    )
}

/// 3 learning rates with halving (rungs at epochs 2 and 6).
fn quadratic_file(name: &str, executor: &str) -> String {
    let halving = "[grid]\nlr = [0.01, 0.05, 0.2]\n\n\
                   [prune]\nmethod = \"halving\"\nmin_epochs = 2\nreduction_factor = 3";
    quadratic(name, executor, 6, halving)
}

fn a_command_trial_runs_as_a_job_pauses_at_its_rung_and_resumes_in_the_next() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let name = unique("command");
    std::fs::write(dir.join("slurm.toml"), quadratic_file(&name, "slurm")).unwrap();
    let (code, stdout, stderr) = sweep(dir, &["run", "slurm.toml", "--db", "sweep.db"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let slurm = by_hash(dir, &name);
    let done: Vec<&StoredTrial> = slurm
        .values()
        .filter(|t| t.row.status == TrialStatus::Done)
        .collect();
    assert_eq!(done.len(), 1, "one of three promoted to the end: {slurm:?}");
    assert_eq!(done[0].epochs, (1..=6).collect::<Vec<_>>());
    let results = dir.join("results");
    let jobs = jobs_of(&trial_dir(&results, &name, &done[0].row));
    assert_eq!(
        jobs.len(),
        2,
        "one job to its rung, one from there: {jobs:?}"
    );
    // The same epochs as the same program run locally.
    let local_dir = dir.join("local");
    std::fs::create_dir(&local_dir).unwrap();
    std::fs::write(local_dir.join("local.toml"), quadratic_file(&name, "local")).unwrap();
    let (code, _, stderr) = sweep(&local_dir, &["run", "local.toml", "--db", "sweep.db"]);
    assert_eq!(code, Some(0), "{stderr}");
    let local = by_hash(&local_dir, &name);
    for (hash, t) in &slurm {
        let l = &local[hash];
        assert_eq!(
            (t.row.status, metrics(t)),
            (l.row.status, metrics(l)),
            "trial {}",
            t.row.number
        );
    }
}

/// A TPE search over the quadratic example's lr and momentum: 8 trials, 2 out at once.
fn quadratic_search(name: &str, executor: &str) -> String {
    let search = "[search]\nmethod = \"tpe\"\ntrials = 8\nseed = 3\nstartup = 3\nparallel = 2\n\
                  lr = { log_uniform = [0.001, 0.5] }\nmomentum = { uniform = [0.0, 0.9] }";
    quadratic(name, executor, 2, search)
}

fn a_tpe_search_on_slurm_makes_the_trials_a_local_run_makes_in_the_same_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let name = unique("search");
    std::fs::write(dir.join("slurm.toml"), quadratic_search(&name, "slurm")).unwrap();
    let (code, stdout, stderr) = sweep(dir, &["run", "slurm.toml", "--db", "sweep.db"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let local_dir = dir.join("local");
    std::fs::create_dir(&local_dir).unwrap();
    std::fs::write(
        local_dir.join("local.toml"),
        quadratic_search(&name, "local"),
    )
    .unwrap();
    let (code, _, stderr) = sweep(&local_dir, &["run", "local.toml", "--db", "sweep.db"]);
    assert_eq!(code, Some(0), "{stderr}");
    let sequence = |dir: &Path| -> Vec<(i64, String, Option<f64>)> {
        stored_trials(&dir.join("sweep.db"), &name)
            .into_iter()
            .map(|t| {
                assert_eq!(t.row.status, TrialStatus::Done, "{:?}", t.row);
                (t.row.number, t.row.config_hash, t.row.objective)
            })
            .collect()
    };
    let on_slurm = sequence(dir);
    assert_eq!(on_slurm.len(), 8);
    assert_eq!(
        on_slurm,
        sequence(&local_dir),
        "the same trials, numbered alike, on Slurm and here"
    );
}
