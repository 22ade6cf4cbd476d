// A Node.js service whose checkQuota calls loadQuota, which stalls the
// event loop (execSync('sleep 0.2'): a child process blocks it), twice,
// after WARM_CALLS calls each through the same path without the stall, so
// that TurboFan has compiled checkQuota with loadQuota inlined into it (run
// with --no-use-osr, or V8 may compile warm's loop instead, with both
// inlined into it; with --no-opt --always-sparkplug: baseline code instead). Prints "ready
// PID", waits for a line on stdin (the tracer attaches), runs, prints
// "done", and exits. The tests read the planted lines from this file's
// `// plant:` markers; keep each on the line of its call.
const { execSync } = require('child_process');

const WARM_CALLS = 100000;

function echo(text) {
  return text;
}

function measure(text) {
  return text.length;
}

// The work is passed in: the warm-up calls run the same code as the
// planted ones, with a call site V8 compiles as a generic call.
function loadQuota(run, command) {
  return run(command); // plant: loadQuota
}

function checkQuota(run, command) {
  const quota = loadQuota(run, command); // plant: checkQuota
  return quota;
}

function warm() {
  for (let i = 0; i < WARM_CALLS; i++) {
    checkQuota(echo, 'a');
    checkQuota(measure, 'b');
  }
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  warm();
  for (let i = 0; i < 2; i++) {
    await pause(300);
    checkQuota(execSync, 'sleep 0.2');
  }
  // The tracer names JavaScript frames from the live process.
  await pause(1000);
  process.stdout.write('done\n');
  process.exit(0);
}

require('./node_when_told')(main);
