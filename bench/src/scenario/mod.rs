//! Fault scenarios of `tandem bench --scenario NAME`: each injects one failure into a live
//! deployment under load and prints one result table (median and worst over `--runs`).
//! - [`failover`]: kill -9 the master under writes; measure the unavailability window and
//!   count acknowledged writes lost and stale reads.

pub mod failover;

use clap::ValueEnum;

/// The scenarios `--scenario` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// kill -9 the master under writes through the proxy.
    Failover,
}

/// Runs `scenario` with `args`; exit 0 when it ran (whatever it measured), 1 when it could
/// not run, 2 for invalid flags.
pub fn run(scenario: Scenario, args: &crate::BenchArgs) -> std::process::ExitCode {
    match scenario {
        Scenario::Failover => failover::main(args),
    }
}
