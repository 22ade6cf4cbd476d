//! Attaching by pid to an asyncio program that is already running.

use std::{process::Command, time::Duration};

use tracer_tests::{Target, Tracer, assert_near, blocking_calls, functions, require_root};

#[test]
fn asyncio_time_sleep_in_coroutine() {
    require_root!("asyncio_time_sleep_in_coroutine");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/targets/asyncio_sleep.py");
    let mut target = Target::start(Command::new(tracer_tests::pyenv_python("3.11")).arg(script));
    let tracer = Tracer::attach(target.pid, &["--all-syscalls"]);
    target.go();
    assert!(target.wait(Duration::from_secs(30)).success());
    let done = tracer.finish();
    assert!(done.status.success(), "tracer failed: {:?}", done.stderr);
    let sleeps = blocking_calls(&done.report, "clock_nanosleep");
    assert_eq!(sleeps.len(), 5, "{sleeps:?}");
    for sleep in sleeps {
        assert_near(
            "time.sleep(0.2)",
            sleep["duration_ns"].as_f64().unwrap(),
            200e6,
            0.05,
        );
        let stack = functions(&sleep["stack"]);
        assert!(stack.iter().any(|f| f == "time_sleep"), "{stack:?}");
    }
}
