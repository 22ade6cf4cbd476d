// A Node.js service whose named functions each stall the event loop, in two
// rounds: "cold" (their first calls: V8 interprets them) and "hot" (after
// WARM_CALLS calls each on the same path without the stall, so that V8 has
// compiled them with its optimizing tiers):
//   renderInvoice: execSync('sleep 0.2'), a child process blocks the loop
//   compressLogs:  200 ms of JavaScript on the CPU
//   checkLicense:  fs.readFileSync of a FIFO (argv[2] cold, argv[3] hot) that
//                  the test fills 300 ms after this prints "reading ROUND"
// Prints "ready PID", waits for a line on stdin (the tracer attaches), runs
// the rounds with 300 ms of idle timers between stalls, prints "done", and
// exits. The tests read the planted lines from this file's `// plant:`
// markers; keep each on the line of its call.
const { execSync } = require('child_process');
const fs = require('fs');

const WARM_CALLS = 10000;
const SPIN_MS = 200;

// The work is passed in, so that the warm-up calls run the same code as
// the planted ones: once two targets were seen, V8 compiles the call as a
// generic one, and the planted call does not undo the optimized code.
function renderInvoice(run, command) {
  run(command); // plant: renderInvoice
  return command.length;
}

function compressLogs(until) {
  let x = 0;
  do {
    x += Math.sqrt(x + 1);
  } while (Date.now() < until); // plant: compressLogs
  return x;
}

function checkLicense(read, path) {
  const license = read(path); // plant: checkLicense
  return license.length;
}

function echo(text) {
  return text;
}

function measure(text) {
  return text.length;
}

// Every warm-up call goes through one call site with more targets than
// TurboFan inlines (4): the planted functions are not inlined into warm()
// once it is optimized, and get optimized on their own.
const WARM_UPS = [
  [renderInvoice, echo, 'true'],
  [renderInvoice, measure, 'true'],
  [compressLogs, 0],
  [checkLicense, echo, 'license'],
  [checkLicense, measure, 'license'],
  [echo, 'a'],
  [measure, 'b'],
];

function warm() {
  let sum = 0;
  for (let i = 0; i < WARM_CALLS; i++) {
    for (let j = 0; j < WARM_UPS.length; j++) {
      const [fn, a, b] = WARM_UPS[j];
      sum += fn(a, b);
    }
  }
  return sum;
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function round(name, fifo) {
  await pause(300);
  renderInvoice(execSync, 'sleep 0.2');
  await pause(300);
  compressLogs(Date.now() + SPIN_MS);
  await pause(300);
  process.stdout.write(`reading ${name}\n`);
  checkLicense(fs.readFileSync, fifo);
}

async function main() {
  await round('cold', process.argv[2]);
  await pause(300);
  warm();
  await round('hot', process.argv[3]);
  // The tracer names JavaScript frames from the live process.
  await pause(1000);
  process.stdout.write('done\n');
  process.exit(0);
}

// The first execSync loads what spawning needs: not what is measured.
execSync('true');
require('./node_when_told')(main);
