//! The `tandem bench` command from flags to output: runs the same load against each target one
//! after another (never at once, so they do not compete for the machine), prints each target's
//! table as it finishes, then the side-by-side comparison; or all of it as JSON. Optionally saves
//! the histograms (`--hdr-out`).

use anyhow::Context as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use crate::args::BenchArgs;
use crate::histogram::{write_hdr_log, Tagged};
use crate::load::{self, LoadResult, LoadSpec};
use crate::progress::{self, Progress};
use crate::report::{self, TargetReport};

/// Entry point of `tandem bench`: exit 0 when every target ran, 1 when one could not be
/// reached or the output could not be written, 2 for invalid flags.
pub fn main(args: BenchArgs) -> ExitCode {
    if let Some(scenario) = args.scenario {
        return crate::scenario::run(scenario, &args);
    }
    let plan = match args.plan() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("tandem bench: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match runtime(&args) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(run(&args, plan)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tandem bench: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Runs every target, prints the results, writes `--hdr-out`; returns the reports.
pub async fn run(args: &BenchArgs, plan: Vec<LoadSpec>) -> anyhow::Result<Vec<TargetReport>> {
    let show_progress = progress::enabled();
    let first_start = Instant::now();
    let wall_start = std::time::SystemTime::now();
    let mut runs: Vec<(LoadSpec, LoadResult, std::time::Duration)> = Vec::new();
    let mut reports = Vec::new();
    for spec in plan {
        let started = first_start.elapsed();
        let progress = show_progress.then(|| Arc::new(Progress::new()));
        let printer = progress
            .clone()
            .map(|p| tokio::spawn(progress::print_loop(p, spec.target.clone())));
        let result = load::run(spec.clone(), progress).await;
        if let Some(p) = printer {
            p.abort();
        }
        let result = result.with_context(|| format!("benchmark of {} failed", spec.target))?;
        let r = TargetReport::new(&spec, &result);
        if !args.json {
            println!("{}", report::table(&r));
        }
        reports.push(r);
        runs.push((spec, result, started));
    }
    if args.json {
        println!("{}", report::json(&reports));
    } else if reports.len() > 1 {
        print!("{}", report::comparison(&reports));
    }
    if let Some(path) = &args.hdr_out {
        let totals: Vec<_> = runs.iter().map(|(_, r, _)| r.stats.all_latency()).collect();
        let mut tagged = Vec::new();
        for ((spec, result, started), all) in runs.iter().zip(&totals) {
            for cmd in result.stats.commands() {
                tagged.push(Tagged {
                    tag: format!("{}/{}", spec.target, cmd.name()),
                    start: *started,
                    length: result.elapsed,
                    histogram: &result.stats.latency[cmd.index()],
                });
            }
            tagged.push(Tagged {
                tag: format!("{}/all", spec.target),
                start: *started,
                length: result.elapsed,
                histogram: all,
            });
        }
        write_hdr_log(path, wall_start, &tagged)?;
    }
    Ok(reports)
}

/// The multi-thread runtime of a run or a scenario, or the exit code when it cannot start.
pub fn runtime(args: &crate::BenchArgs) -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.worker_threads())
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("tandem bench: cannot start the runtime: {e}");
            ExitCode::from(1)
        })
}
