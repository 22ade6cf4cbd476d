// A Node.js busy loop whose CPU time splits 60/40 between two JavaScript
// functions of the same body: hotLoop runs 3 iterations for each 2 of
// coldLoop's. Prints "ready PID", waits for a line on stdin, spins for
// argv[2] ms (default 3000), prints "done" and exits a second later: the
// tracer names JavaScript frames from the live process, and takes in the
// CPU samples in batches (no wake-up of its own per sample).
const HOT = 300000;
const COLD = 200000;

function hotLoop(n) {
  let x = 0;
  for (let i = 0; i < n; i++) x += Math.sqrt(i + x);
  return x;
}

function coldLoop(n) {
  let x = 0;
  for (let i = 0; i < n; i++) x += Math.sqrt(i + x);
  return x;
}

function spin(ms) {
  const end = Date.now() + ms;
  let sum = 0;
  while (Date.now() < end) sum += hotLoop(HOT) + coldLoop(COLD);
  return sum;
}

require('./node_when_told')(() => {
  spin(Number(process.argv[2] || 3000));
  process.stdout.write('done\n');
  setTimeout(() => process.exit(0), 1000);
});
