//! A tokio multi-thread service whose async tasks block their worker thread:
//! after WARMUP idle rounds (a running service idles between requests; the
//! tracer learns there how its workers park), ROUNDS times
//! `std::thread::sleep(200 ms)` inside an async fn, 300 ms apart. Prints
//! "ready PID", waits for a line on stdin (the tracer attaches), runs, and
//! exits.

use std::time::Duration;

const WARMUP: usize = 2;
const ROUNDS: usize = 3;

async fn load_config() {
    // Blocks the worker: should be tokio::time::sleep or spawn_blocking.
    std::thread::sleep(Duration::from_millis(200));
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!("ready {}", std::process::id());
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).expect("stdin");
    runtime.block_on(async {
        for _ in 0..WARMUP {
            tokio::spawn(tokio::time::sleep(Duration::from_millis(300)))
                .await
                .expect("task");
        }
        for _ in 0..ROUNDS {
            tokio::time::sleep(Duration::from_millis(300)).await;
            tokio::spawn(load_config()).await.expect("task");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    });
}
