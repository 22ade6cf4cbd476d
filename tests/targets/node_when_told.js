// The protocol of the Node.js test targets: print "ready PID", then run
// `start` at the first line on stdin (the tracer has attached by then).
module.exports = function whenTold(start) {
  process.stdout.write(`ready ${process.pid}\n`);
  process.stdin.once('data', () => {
    process.stdin.pause();
    start();
  });
};
