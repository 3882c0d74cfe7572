//! `shoal-bench`: parse the command line, run the benchmark, exit with its status.
#![forbid(unsafe_code)]

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    shoal_bench::run(shoal_bench::BenchArgs::parse())
}
