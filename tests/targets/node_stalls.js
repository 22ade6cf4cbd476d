// A Node.js service that stalls its event loop two ways, ROUNDS times:
//   runChild: execSync('sleep 0.2') - a nested loop blocks the main thread
//   crunch:   200 ms of JavaScript on the CPU
// with 300 ms of idle timers between them. Prints "ready PID", waits for a
// line on stdin (the tracer attaches), runs, and exits.
const { execSync } = require('child_process');

const ROUNDS = 3;

function runChild() {
  execSync('sleep 0.2');
}

function crunch() {
  const end = Date.now() + 200;
  let x = 0;
  while (Date.now() < end) x += Math.sqrt(x + 1);
  return x;
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  for (let i = 0; i < ROUNDS; i++) {
    await pause(300);
    runChild();
    await pause(300);
    crunch();
  }
  await pause(300);
  process.exit(0);
}

// The first execSync compiles and loads what spawning needs (it took 70 ms
// more than the others under tracing on 2 busy cores): not what is measured.
execSync('true');
require('./node_when_told')(main);
