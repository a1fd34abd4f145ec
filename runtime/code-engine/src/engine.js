// The engine of inline code steps: a Sluice connector whose `run` action evaluates the
// step's JavaScript function `(context, stepResults) => result` and whose `check`
// action only compiles it (publish-time syntax errors). Built once per Sluice release
// with componentize-js (`build.sh`) and instantiated per execution like any guest, so
// the step runs under the same fuel, memory, time and output limits, and reaches the
// outside only through what the host links for its instance (HTTP through `fetch`,
// under the instance's allow-list).
//
// The function's shape follows the code steps users know:
//   async (context, stepResults) => ({ data, instanceState: { key: value } })
// `context` has `logger`, `configVars`, the ids of the execution, instance, customer,
// integration and flow, `webhookUrls`, and the four state scopes (`executionState`,
// `instanceState` (this flow), `crossFlowState` (every flow of the instance),
// `integrationState`); reading a key of a scope reads the stored value, and the scopes
// returned beside `data` are written when the function returns.
import { write } from "sluice:flow/log@0.1.0";
import { all as allConfig } from "sluice:flow/config@0.1.0";
import { get as stateGet, set as stateSet, delete as stateDelete } from "sluice:flow/state@0.1.0";

const MANIFEST = JSON.stringify({
  key: "sluice-code",
  version: "0.1.0",
  display: {
    label: "Code",
    description: "Runs the JavaScript function of a code step.",
  },
  actions: {
    run: {
      display: { label: "Run", description: "Runs the step's function." },
      inputs: {
        type: "object",
        required: ["code"],
        properties: { code: { type: "string" }, stepResults: { type: "object" } },
      },
    },
    check: {
      display: {
        label: "Check",
        description: "Compiles every step's function without running it; returns each one's error or null.",
      },
      inputs: {
        type: "object",
        required: ["sources"],
        properties: { sources: { type: "array", items: { type: "string" } } },
      },
    },
  },
});

// The scopes of the WIT `state` interface, by the name a code step uses.
const SCOPES = {
  executionState: "execution",
  instanceState: "flow",
  crossFlowState: "instance",
  integrationState: "integration",
};

class StepError {
  constructor(tag, message) {
    this.tag = tag;
    this.val = message;
  }
}

function fatal(message) {
  return new StepError("fatal", message);
}

function describe(error) {
  if (error instanceof Error) {
    return `${error}${stepStack(error)}`;
  }
  try {
    return typeof error === "string" ? error : JSON.stringify(error);
  } catch {
    return String(error);
  }
}

// `new Function` puts two lines of its own before the body, and the body two more
// before the step's code.
const PROLOGUE_LINES = 4;

function codeLine(line) {
  return Math.max(1, line - PROLOGUE_LINES);
}

// A thrown error's stack, kept to the frames in the step's code, numbered as the step
// author wrote it (the engine's own frames mean nothing to them).
function stepStack(error) {
  if (!(error instanceof Error) || !error.stack) return "";
  const frames = error.stack
    .split("\n")
    .filter((frame) => frame.includes("> Function:"))
    .map((frame) => {
      const [name] = frame.split("@");
      const match = /> Function:(\d+):(\d+)$/.exec(frame);
      const where = match ? `line ${codeLine(Number(match[1]))}, column ${match[2]}` : "";
      return `  at ${name.replace(/^anonymous\/?<?/, "") || "<step>"} (${where})`;
    });
  return frames.length ? `\n${frames.join("\n")}` : "";
}

// The step's source is an expression whose value is the function; a syntax error is
// reported with the line and column inside the step's code.
function compile(code) {
  if (typeof code !== "string" || code.trim() === "") {
    throw new StepError("invalid-input", "the code step's `code` is empty");
  }
  let factory;
  try {
    factory = new Function(`"use strict";\nreturn (\n${code}\n);`);
  } catch (error) {
    const where = error.lineNumber ? ` (line ${codeLine(error.lineNumber)}, column ${error.columnNumber})` : "";
    throw new StepError("invalid-input", `syntax error in the code step${where}: ${error.message}`);
  }
  return factory;
}

function text(value) {
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

function logger() {
  const at = (level) => (...parts) => write(level, parts.map(text).join(" "), undefined);
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error"), trace: at("trace") };
}

function stateError(error) {
  const payload = error && error.payload ? error.payload : error;
  if (payload && payload.tag === "unavailable") {
    return new StepError("retryable", `state: ${payload.val}`);
  }
  return fatal(`state: ${payload && payload.val ? payload.val : describe(error)}`);
}

// A read-only view of one state scope: `scope.key` reads the stored value.
function scopeView(scope) {
  return new Proxy(
    {},
    {
      get(_, key) {
        if (typeof key !== "string") return undefined;
        let stored;
        try {
          stored = stateGet(scope, key);
        } catch (error) {
          throw stateError(error);
        }
        return stored === undefined || stored === null ? undefined : JSON.parse(stored);
      },
      set() {
        throw fatal("state is written by returning it beside `data`, e.g. { data, instanceState: { key: value } }");
      },
    },
  );
}

function buildContext(ctx) {
  const configVars = {};
  for (const [key, value] of allConfig()) {
    configVars[key] = JSON.parse(value);
  }
  const context = {
    logger: logger(),
    configVars,
    executionId: ctx.executionId,
    stepId: ctx.step ?? null,
    attempt: ctx.attempt,
    startedAt: new Date(Number(ctx.startedAtMs)).toISOString(),
    customer: { id: ctx.customerId ?? null, externalId: ctx.customerExternalId ?? null },
    integration: { id: ctx.integrationId },
    instance: { id: ctx.instanceId },
    flow: { name: ctx.flowName },
    webhookUrls: Object.fromEntries(ctx.webhookUrls),
  };
  for (const [name, scope] of Object.entries(SCOPES)) {
    context[name] = scopeView(scope);
  }
  return context;
}

function saveState(returned) {
  for (const [name, scope] of Object.entries(SCOPES)) {
    const values = returned[name];
    if (values === undefined || values === null) continue;
    if (typeof values !== "object" || Array.isArray(values)) {
      throw new StepError("invalid-input", `\`${name}\` must be an object of keys to values`);
    }
    for (const [key, value] of Object.entries(values)) {
      try {
        if (value === undefined || value === null) {
          stateDelete(scope, key);
        } else {
          stateSet(scope, key, JSON.stringify(value));
        }
      } catch (error) {
        throw stateError(error);
      }
    }
  }
}

function output(returned) {
  // `{ data, ... }` is the usual shape; anything else is the result itself.
  const shaped = returned !== null && typeof returned === "object" && !Array.isArray(returned) && "data" in returned;
  const data = shaped ? returned.data : returned;
  const json = JSON.stringify(data === undefined ? null : data);
  const result = { data: { tag: "json", val: json }, headers: [] };
  if (shaped) {
    saveState(returned);
    if (returned.statusCode !== undefined) result.status = Number(returned.statusCode);
    if (typeof returned.contentType === "string") result.contentType = returned.contentType;
    if (returned.headers && typeof returned.headers === "object") {
      result.headers = Object.entries(returned.headers).map(([name, value]) => [name, String(value)]);
    }
  }
  return result;
}

function parseInput(input) {
  try {
    return JSON.parse(input);
  } catch (error) {
    throw new StepError("invalid-input", `the code step's input is not JSON: ${error.message}`);
  }
}

async function run(ctx, input) {
  const { code, stepResults } = parseInput(input);
  const step = compile(code)();
  if (typeof step !== "function") {
    throw new StepError("invalid-input", "a code step's code must be a function: (context, stepResults) => result");
  }
  let returned;
  try {
    returned = await step(buildContext(ctx), stepResults ?? {});
  } catch (error) {
    if (error instanceof StepError) throw error;
    throw fatal(`the code step threw: ${describe(error)}`);
  }
  return output(returned);
}

// Every source of a definition in one call, so a publish costs one sandbox whatever
// the number of code steps: an array of the syntax error of each source, or null.
function check(input) {
  const { sources } = parseInput(input);
  if (!Array.isArray(sources)) {
    throw new StepError("invalid-input", "`sources` must be an array of code steps' sources");
  }
  const errors = sources.map((code) => {
    try {
      compile(code);
      return null;
    } catch (error) {
      return error instanceof StepError ? error.val : describe(error);
    }
  });
  return { data: { tag: "json", val: JSON.stringify(errors) }, headers: [] };
}

function unsupported() {
  throw fatal("the code engine has only the `run` and `check` actions");
}

export const connector = {
  manifest() {
    return MANIFEST;
  },
  async runAction(ctx, action, input) {
    if (action === "check") return check(input);
    if (action !== "run") unsupported();
    return run(ctx, input);
  },
  runTrigger: unsupported,
  runDataSource: unsupported,
  onInstanceDeploy: unsupported,
  onInstanceRemove: unsupported,
};
