//! `sluice-loadtest`: the benchmark driver. The scenarios arrive with the
//! load-test issue; until then this binary only says so, so that nobody
//! mistakes it for a measurement.

fn main() {
    eprintln!("sluice-loadtest: no scenarios yet; see the load-test issue");
    std::process::exit(2);
}
