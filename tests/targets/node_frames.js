// A Node.js service for frame naming and idle workers, ROUNDS times:
//   spinForRender: 200 ms of JavaScript on the CPU, in a timer callback
//   runChild:      execSync('sleep 0.2') - a nested loop blocks the thread
//   a file read through libuv's threadpool, so its workers wake and idle
// with 300 ms of idle timers between them. Prints "ready PID", waits for a
// line on stdin (the tracer attaches), runs, and exits.
const { execSync } = require('child_process');
const fs = require('fs');

const ROUNDS = 3;

function spinForRender() {
  const end = Date.now() + 200;
  let x = 0;
  while (Date.now() < end) x += Math.sqrt(x + 1);
  return x;
}

function runChild() {
  execSync('sleep 0.2');
}

function round(i) {
  if (i === ROUNDS) {
    setTimeout(() => process.exit(0), 300);
    return;
  }
  fs.readFile(__filename, () => {});
  setTimeout(() => {
    spinForRender();
    setTimeout(() => {
      runChild();
      round(i + 1);
    }, 300);
  }, 300);
}

// The first execSync loads what spawning needs; the first file read starts
// the threadpool: neither is what is measured.
execSync('true');
fs.readFile(__filename, () => require('./node_when_told')(() => round(0)));
