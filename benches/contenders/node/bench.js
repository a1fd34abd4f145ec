// JavaScript contenders of the Sluice cold-start suite (benches/run.sh).
//
//   node bench.js vm          [--warmup N] [--samples N] [--seconds S] [--threads 1,2] [--input JSON]
//   node bench.js isolated-vm [...]
//
// One execution does the suite's job in a NEW context or isolate: take the JSON input,
// write one log line through a host function (which discards it, as Sluice's contender
// discards its log), return the JSON output; then the context or isolate is dropped.
// The script is compiled once before measuring, as Sluice's component is:
//
// - vm: `new vm.Script(code)` once; per execution `vm.createContext({INPUT, log})` +
//   `script.runInContext(context)`.
// - isolated-vm: V8 code cache produced once; per execution `new ivm.Isolate({memoryLimit: 32})`
//   + `createContextSync()` + `INPUT` and a `log` callback set on its global +
//   `compileScriptSync(code, {cachedData})` + `runSync` + `dispose()`.
//
// Latency: a warm-up, then `--samples` executions one after another, each timed with
// process.hrtime.bigint(). Throughput: for each thread count, that many worker threads
// (each its own V8 isolate and event loop) run executions back to back for `--seconds`.
// Peak RSS: process.resourceUsage().maxRSS (the whole process, workers included).
//
// Prints one JSON line on stdout, with the same fields as every other contender.

'use strict';

const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');

const CODE = 'log("echo", JSON.stringify({ bytes: INPUT.length })); JSON.stringify(JSON.parse(INPUT));';
const DEFAULT_INPUT = '{"id":42,"name":"cold start"}';

function discard() {}

const CONTENDERS = {
  vm: {
    label: 'Node vm, new context per execution',
    what: 'vm.Script compiled once; per execution vm.createContext({INPUT, log}) + script.runInContext',
    version: () => `node ${process.version} (V8 ${process.versions.v8})`,
    setup() {
      const vm = require('node:vm');
      const script = new vm.Script(CODE);
      return (input) => {
        const context = vm.createContext({ INPUT: input, log: discard });
        return script.runInContext(context);
      };
    },
  },
  'isolated-vm': {
    label: 'isolated-vm, new isolate per execution',
    what: 'code cache produced once; per execution new Isolate({memoryLimit: 32}) + createContextSync + set INPUT and a log Callback + compileScriptSync(cachedData) + runSync + dispose',
    version: () => {
      const pkg = require('isolated-vm/package.json');
      return `isolated-vm ${pkg.version} on node ${process.version} (V8 ${process.versions.v8})`;
    },
    setup() {
      const ivm = require('isolated-vm');
      const first = new ivm.Isolate({ memoryLimit: 32 });
      const produced = first.compileScriptSync(CODE, { produceCachedData: true });
      const cachedData = produced.cachedData;
      first.dispose();
      if (!cachedData) throw new Error('isolated-vm produced no code cache');
      const log = new ivm.Callback(discard);
      return (input) => {
        const isolate = new ivm.Isolate({ memoryLimit: 32 });
        try {
          const context = isolate.createContextSync();
          const global = context.global;
          global.setSync('INPUT', input);
          global.setSync('log', log);
          const script = isolate.compileScriptSync(CODE, { cachedData });
          return script.runSync(context);
        } finally {
          isolate.dispose();
        }
      };
    },
  },
};

function parseArgs(argv) {
  const args = { contender: null, warmup: 200, samples: 1000, seconds: 1, threads: [1, 2], input: DEFAULT_INPUT };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
      return argv[++i];
    };
    const positive = (text) => {
      const n = Number(text);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${arg} needs a positive number, not ${text}`);
      return n;
    };
    switch (arg) {
      case '--warmup': args.warmup = positive(value()); break;
      case '--samples': args.samples = positive(value()); break;
      case '--seconds': args.seconds = positive(value()); break;
      case '--threads': args.threads = value().split(',').map(positive); break;
      case '--input': args.input = value(); break;
      default:
        if (arg.startsWith('--') || args.contender) throw new Error(`unknown argument ${arg}`);
        args.contender = arg;
    }
  }
  if (!CONTENDERS[args.contender]) {
    throw new Error(`usage: node bench.js (${Object.keys(CONTENDERS).join('|')}) [--warmup N] [--samples N] [--seconds S] [--threads 1,2]`);
  }
  return args;
}

function checked(execute, input) {
  const output = execute(input);
  if (output !== input) throw new Error(`the job returned ${JSON.stringify(output)}`);
}

// Nearest-rank percentile of sorted nanoseconds, in microseconds (as benches/src/lib.rs).
function percentile(sorted, pct) {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((pct / 100) * sorted.length);
  return Number(sorted[Math.min(Math.max(rank, 1), sorted.length) - 1]) / 1e3;
}

// Worker: set up, say ready, wait for "go", run for the given time, report the count.
function workerMain() {
  const { contender, input } = workerData;
  const execute = CONTENDERS[contender].setup();
  checked(execute, input);
  parentPort.on('message', ({ seconds }) => {
    const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
    let executions = 0;
    while (process.hrtime.bigint() < deadline) {
      checked(execute, input);
      executions++;
    }
    parentPort.postMessage({ executions });
  });
  parentPort.postMessage({ ready: true });
}

async function throughput(args, threads) {
  const workers = [];
  const ready = [];
  for (let i = 0; i < threads; i++) {
    const worker = new Worker(__filename, { workerData: { contender: args.contender, input: args.input } });
    workers.push(worker);
    ready.push(new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    }));
  }
  await Promise.all(ready);
  const started = process.hrtime.bigint();
  const counts = workers.map((worker) => new Promise((resolve, reject) => {
    worker.once('message', ({ executions }) => resolve(executions));
    worker.once('error', reject);
    worker.postMessage({ seconds: args.seconds });
  }));
  const executions = (await Promise.all(counts)).reduce((a, b) => a + b, 0);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await Promise.all(workers.map((worker) => worker.terminate()));
  return { threads, seconds, executions, per_second: executions / seconds };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const contender = CONTENDERS[args.contender];
  const setupStarted = process.hrtime.bigint();
  const execute = contender.setup();
  const setupMs = Number(process.hrtime.bigint() - setupStarted) / 1e6;

  for (let i = 0; i < args.warmup; i++) checked(execute, args.input);
  const nanos = new Array(args.samples);
  for (let i = 0; i < args.samples; i++) {
    const started = process.hrtime.bigint();
    checked(execute, args.input);
    nanos[i] = process.hrtime.bigint() - started;
  }
  nanos.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const mean = nanos.reduce((sum, n) => sum + Number(n), 0) / nanos.length / 1e3;

  const rates = [];
  for (const threads of args.threads) rates.push(await throughput(args, threads));

  process.stdout.write(JSON.stringify({
    kind: 'contender',
    contender: args.contender,
    label: contender.label,
    what: contender.what,
    version: contender.version(),
    setup_ms: setupMs,
    warmup: args.warmup,
    samples: nanos.length,
    median_us: percentile(nanos, 50),
    p90_us: percentile(nanos, 90),
    p99_us: percentile(nanos, 99),
    mean_us: mean,
    throughput: rates,
    peak_rss_kib: process.resourceUsage().maxRSS,
    rss_source: 'process.resourceUsage().maxRSS of the contender process (worker threads included)',
  }) + '\n');
}

if (isMainThread) {
  main().catch((error) => {
    process.stderr.write(`node contender: ${error.stack || error}\n`);
    process.exit(1);
  });
} else {
  workerMain();
}
