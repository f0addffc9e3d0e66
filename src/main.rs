//! The `tandem` binary: one executable, one subcommand per component.

mod cli;
mod up;

use clap::Parser;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: tandem_node::alloc::Counting<mimalloc::MiMalloc> =
    tandem_node::alloc::Counting(mimalloc::MiMalloc);

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cli::run(cli)
}
