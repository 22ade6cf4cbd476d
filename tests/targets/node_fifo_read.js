// A Node.js service whose threadpool blocks in a task: fs.readFile on the
// FIFO named by argv[2], whose data the test writes 300 ms after "reading".
// The test holds the FIFO open for writing, so the open does not block and
// the read does. Prints "ready PID", waits for a line on stdin, reads,
// prints "read N" (bytes), and exits.
const fs = require('fs');

const fifo = process.argv[2];

// A first file read starts the threadpool: its workers then idle.
fs.readFile(__filename, () =>
  require('./node_when_told')(() => {
    fs.readFile(fifo, (error, data) => {
      process.stdout.write(`read ${error ? error.code : data.length}\n`);
      setTimeout(() => process.exit(error ? 1 : 0), 200);
    });
    process.stdout.write('reading\n');
  }),
);
