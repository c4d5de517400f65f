//! The `sluice-loadtest` command; everything it does lives in the library,
//! so that the test suite can run it in-process as a smoke test.

use std::process::ExitCode;

use clap::Parser;
use sluice_loadtest::{run, Args};

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(0) => ExitCode::SUCCESS,
        Ok(errors) => {
            eprintln!("sluice-loadtest: {errors} request(s) failed; see the report");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("sluice-loadtest: {e:#}");
            ExitCode::FAILURE
        }
    }
}
