//! `sluice flow validate` and `sluice flow run` end to end: the real binary on the
//! real `hello` and `hello-flow` guests, checking output, errors and exit codes.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

/// A directory holding the components, a definition and a payload.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let components = dir.path().join("components");
        std::fs::create_dir(&components).expect("components dir");
        for name in ["hello", "hello-flow"] {
            let path =
                sluice_runtime::guest_build::example(name).unwrap_or_else(|err| panic!("{err}"));
            let file = path.file_name().expect("file name");
            std::fs::copy(&path, components.join(file)).expect("copy guest");
        }
        // A file that is not a component is skipped, not fatal.
        std::fs::write(components.join("junk.wasm"), b"not wasm").expect("junk");
        Workspace { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write file");
        path.to_str().expect("UTF-8 path").to_string()
    }

    fn components(&self) -> String {
        self.path("components")
            .to_str()
            .expect("UTF-8 path")
            .to_string()
    }
}

fn sluice(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wait for sluice")
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited normally")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json_out(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "stdout is not JSON ({err}):\n{}\nstderr:\n{}",
            stdout(output),
            stderr(output)
        )
    })
}

const DEFINITION: &str = r#"
definitionVersion: 1
name: Demo
components:
  hello: {version: "0.1.0"}
  hello-flow: {version: "0.0.0"}
configVars:
  - key: Region
    defaultValue: eu
flows:
  - key: sync
    steps:
      - key: ticket
        action: hello.echo
        inputs:
          externalId: {type: template, value: "gh-{{trigger.results.body.issue.number}}"}
          region: {type: configVar, value: Region}
          signature: {type: reference, value: trigger.results.headers.x-signature}
      - key: route
        branchOnValue:
          value: {type: reference, value: trigger.results.body.action}
          branches:
            - name: Closed
              value: closed
              steps:
                - key: done
                  stopExecution:
                    status: 202
                    body: {type: reference, value: ticket.results.externalId}
      - key: fail
        action: hello.fail
        inputs: {kind: fatal, message: not closed}
  - key: code
    code: {component: hello-flow}
"#;

fn run(workspace: &Workspace, flow: &str, payload: Value, extra: &[&str]) -> Output {
    let mut args = vec!["--flow", flow];
    args.extend_from_slice(extra);
    run_definition(workspace, DEFINITION, payload, &args)
}

/// `sluice flow run` of `definition` with `payload`, against the workspace's components.
fn run_definition(
    workspace: &Workspace,
    definition: &str,
    payload: Value,
    extra: &[&str],
) -> Output {
    let definition = workspace.write("flow.yaml", definition);
    let payload = workspace.write("payload.json", &payload.to_string());
    let components = workspace.components();
    let mut args = vec![
        "flow",
        "run",
        definition.as_str(),
        "--payload",
        payload.as_str(),
        "--components",
        components.as_str(),
    ];
    args.extend_from_slice(extra);
    sluice(&args, b"")
}

#[test]
fn validate_accepts_a_valid_definition_and_reports_the_pins() {
    let workspace = Workspace::new();
    let definition = workspace.write("flow.yaml", DEFINITION);
    let output = sluice(&["flow", "validate", &definition], b"");
    assert_eq!(code(&output), 0, "stderr: {}", stderr(&output));
    assert!(stdout(&output).contains("valid: integration `Demo` with 2 flows (sync, code)"));
    assert!(stdout(&output).contains("components not checked"));

    let components = workspace.components();
    let output = sluice(
        &[
            "flow",
            "validate",
            &definition,
            "--components",
            &components,
            "--json",
        ],
        b"",
    );
    assert_eq!(code(&output), 0, "stderr: {}", stderr(&output));
    let report = json_out(&output);
    assert_eq!(report["valid"], true);
    assert_eq!(report["flows"], json!(["sync", "code"]));
    assert_eq!(report["pins"]["hello"]["version"], "0.1.0");
    assert_eq!(
        report["pins"]["hello"]["hash"].as_str().map(str::len),
        Some(64)
    );
}

#[test]
fn validate_reports_every_error_with_its_path_and_exits_64() {
    let workspace = Workspace::new();
    let definition = workspace.write(
        "bad.yaml",
        "definitionVersion: 1\nname: Bad\ncomponents:\n  hello: {version: \"0.1.0\"}\nflows:\n  - key: f\n    steps:\n      - {key: a, action: hello.recall, inputs: {scope: flow, ticketId: 1}}\n      - {key: b, action: hello.echo, inputs: {x: {type: reference, value: c.results}}}\n      - {key: c, action: hello.echo}\n",
    );
    let components = workspace.components();
    let output = sluice(
        &["flow", "validate", &definition, "--components", &components],
        b"",
    );
    assert_eq!(code(&output), 64, "stdout: {}", stdout(&output));
    let errors = stderr(&output);
    assert!(
        errors.contains(
            "flows[0].steps[0].inputs.ticketId: `ticketId` is not an input of `hello.recall`"
        ),
        "{errors}"
    );
    assert!(
        errors.contains("flows[0].steps[0].inputs: missing required input `key`"),
        "{errors}"
    );
    assert!(
        errors
            .contains("flows[0].steps[1].inputs.x: reference to step `c`, which does not precede"),
        "{errors}"
    );
    assert!(stdout(&output).is_empty());

    let output = sluice(
        &[
            "flow",
            "validate",
            &definition,
            "--components",
            &components,
            "--json",
        ],
        b"",
    );
    assert_eq!(code(&output), 64);
    let report = json_out(&output);
    assert_eq!(report["valid"], false);
    assert_eq!(report["errors"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        report["errors"][0]["path"],
        "flows[0].steps[0].inputs.ticketId"
    );
}

#[test]
fn validate_reports_syntax_errors_with_a_line() {
    let workspace = Workspace::new();
    let definition = workspace.write("broken.yaml", "definitionVersion: 1\nname: x\nflows: [\n");
    let output = sluice(&["flow", "validate", &definition], b"");
    assert_eq!(code(&output), 64);
    assert!(stderr(&output).contains("line "), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("not valid YAML"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn run_prints_a_summary_and_exits_0_when_the_flow_succeeds() {
    let workspace = Workspace::new();
    let output = run(
        &workspace,
        "sync",
        json!({"action": "closed", "issue": {"number": 13}}),
        &["--config", "Region=us", "--header", "X-Signature: abc"],
    );
    assert_eq!(
        code(&output),
        0,
        "stdout: {}\nstderr: {}",
        stdout(&output),
        stderr(&output)
    );
    let summary = stdout(&output);
    assert!(
        summary.starts_with("flow `sync` of `Demo` succeeded"),
        "{summary}"
    );
    assert!(summary.contains("hello.echo"), "{summary}");
    assert!(summary.contains("branchOnValue → Closed"), "{summary}");
    assert!(summary.contains("[info] echo"), "{summary}");
    assert!(summary.contains("response: 202 \"gh-13\""), "{summary}");
}

#[test]
fn run_prints_the_full_record_as_json() {
    let workspace = Workspace::new();
    let output = run(
        &workspace,
        "sync",
        json!({"action": "closed", "issue": {"number": 7}}),
        &[
            "--json",
            "--config",
            "Region=us",
            "--header",
            "X-Signature: abc",
        ],
    );
    assert_eq!(code(&output), 0, "stderr: {}", stderr(&output));
    let record = json_out(&output);
    assert_eq!(record["status"], "succeeded");
    assert_eq!(record["flow"], "sync");
    let ticket = &record["steps"][1];
    assert_eq!(ticket["key"], "ticket");
    assert_eq!(
        ticket["result"]["value"],
        json!({"externalId": "gh-7", "region": "us", "signature": "abc"})
    );
    assert!(ticket["fuelUsed"].as_u64().unwrap() > 0);
    assert_eq!(ticket["attempts"][0]["outcome"], "completed");
    assert_eq!(record["response"]["status"], 202);
}

#[test]
fn run_exits_1_when_the_flow_fails() {
    let workspace = Workspace::new();
    let output = run(
        &workspace,
        "sync",
        json!({"action": "opened", "issue": {"number": 1}}),
        &[],
    );
    assert_eq!(code(&output), 1, "stderr: {}", stderr(&output));
    let summary = stdout(&output);
    assert!(
        summary.starts_with("flow `sync` of `Demo` failed at step `fail`"),
        "{summary}"
    );
    assert!(summary.contains("error: fatal: not closed"), "{summary}");
}

#[test]
fn run_runs_code_native_flows() {
    let workspace = Workspace::new();
    let payload = json!({"invoke": {"component": "hello", "action": "echo", "input": {"n": 1}}});
    let output = run(&workspace, "code", payload, &["--json"]);
    assert_eq!(code(&output), 0, "stderr: {}", stderr(&output));
    let record = json_out(&output);
    assert_eq!(record["kind"], "code");
    let keys: Vec<&str> = record["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["trigger", "hello-flow", "hello.echo"]);
    assert_eq!(record["response"]["body"]["value"], json!({"n": 1}));
}

#[test]
fn run_usage_errors_exit_64() {
    let workspace = Workspace::new();
    let definition = workspace.write("flow.yaml", DEFINITION);
    let components = workspace.components();
    // Two flows and no --flow.
    let output = sluice(
        &["flow", "run", &definition, "--components", &components],
        b"",
    );
    assert_eq!(code(&output), 64);
    assert!(
        stderr(&output).contains("choose one with --flow KEY"),
        "{}",
        stderr(&output)
    );
    // A payload that is not JSON.
    let payload = workspace.write("bad.json", "{nope");
    let output = sluice(
        &[
            "flow",
            "run",
            &definition,
            "--components",
            &components,
            "--flow",
            "sync",
            "--payload",
            &payload,
        ],
        b"",
    );
    assert_eq!(code(&output), 64);
    assert!(
        stderr(&output).contains("the payload is not valid JSON"),
        "{}",
        stderr(&output)
    );
    // An unknown flow.
    let output = sluice(
        &[
            "flow",
            "run",
            &definition,
            "--components",
            &components,
            "--flow",
            "nope",
        ],
        b"",
    );
    assert_eq!(code(&output), 64);
    assert!(
        stderr(&output).contains("no flow `nope`"),
        "{}",
        stderr(&output)
    );
    // A component missing from the directory names the skipped file.
    let empty = workspace.path("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("junk.wasm"), b"junk").unwrap();
    let output = sluice(
        &[
            "flow",
            "run",
            &definition,
            "--components",
            empty.to_str().unwrap(),
            "--flow",
            "sync",
        ],
        b"",
    );
    assert_eq!(code(&output), 64);
    assert!(
        stderr(&output).contains("unknown component `hello`"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("junk.wasm was skipped"),
        "{}",
        stderr(&output)
    );
    // The payload from stdin.
    let output = sluice(
        &[
            "flow",
            "run",
            &definition,
            "--components",
            &components,
            "--flow",
            "code",
            "--payload",
            "-",
            "--json",
        ],
        br#"{"from": "stdin"}"#,
    );
    assert_eq!(code(&output), 0, "stderr: {}", stderr(&output));
    assert_eq!(
        json_out(&output)["response"]["body"]["value"],
        json!({"from": "stdin"})
    );
}

#[test]
fn validate_json_prints_json_whatever_goes_wrong() {
    let workspace = Workspace::new();
    let missing = workspace.path("missing.yaml");
    let missing = missing.to_str().unwrap();
    let binary = workspace.path("binary.yaml");
    std::fs::write(&binary, b"name: \xff\xfe\n").unwrap();
    let binary = binary.to_str().unwrap();
    let valid = workspace.write("flow.yaml", DEFINITION);
    let cases: [(&str, Vec<&str>, &str); 4] = [
        ("a missing file", vec![missing], "cannot read"),
        (
            "a file that is not UTF-8",
            vec![binary],
            "is not UTF-8 text",
        ),
        (
            "standard input that is not UTF-8",
            vec!["-"],
            "is not UTF-8 text",
        ),
        (
            "a components directory that does not exist",
            vec![&valid, "--components", missing],
            "not a directory",
        ),
    ];
    for (name, args, message) in cases {
        let mut all = vec!["flow", "validate", "--json"];
        all.extend(args);
        let output = sluice(&all, b"\xff\xfe");
        assert_eq!(code(&output), 64, "{name}: {}", stderr(&output));
        let report = json_out(&output);
        assert_eq!(report["valid"], false, "{name}: {report}");
        let first = &report["errors"][0]["message"];
        assert!(
            first.as_str().is_some_and(|text| text.contains(message)),
            "{name}: {report}"
        );
    }
    // `flow run --json` reports an error before the run the same way.
    let components = workspace.components();
    let output = sluice(
        &[
            "flow",
            "run",
            missing,
            "--components",
            &components,
            "--json",
        ],
        b"",
    );
    assert_eq!(code(&output), 64, "{}", stderr(&output));
    let report = json_out(&output);
    assert_eq!(report["status"], "error", "{report}");
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .is_some_and(|text| text.contains("cannot read")),
        "{report}"
    );
    // Without --json, the same problem is one line on stderr.
    let output = sluice(&["flow", "validate", binary], b"");
    assert_eq!(code(&output), 64);
    assert!(stdout(&output).is_empty());
    assert!(
        stderr(&output).contains("is not UTF-8 text"),
        "{}",
        stderr(&output)
    );
}

/// A flow that loops `count` times over one cheap step: `count + 1` step runs.
fn counting(count: u32) -> String {
    format!(
        "definitionVersion: 1\nname: Count\ncomponents:\n  hello: {{version: \"0.1.0\"}}\nflows:\n  - key: f\n    steps:\n      - key: many\n        loopNTimes:\n          count: {count}\n          steps:\n            - key: tick\n              branchOnValue:\n                value: 1\n                branches: [{{name: Two, value: 2, steps: [{{key: two, action: hello.echo}}]}}]\n                else: []\n"
    )
}

#[test]
fn the_step_run_cap_is_one_flag_of_validate_and_run() {
    let workspace = Workspace::new();
    let definition = workspace.write("count.yaml", &counting(20_000));
    let components = workspace.components();
    // The default cap (10,000) cannot run it: refused at validation, naming the flag.
    let output = sluice(&["flow", "validate", &definition, "--json"], b"");
    assert_eq!(code(&output), 64);
    let report = json_out(&output);
    assert_eq!(
        report["errors"][0]["path"],
        "flows[0].steps[0].loopNTimes.count"
    );
    let message = report["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("more than the 10000 step runs") && message.contains("--max-step-runs"),
        "{report}"
    );
    let output = sluice(
        &["flow", "run", &definition, "--components", &components],
        b"",
    );
    assert_eq!(code(&output), 64, "{}", stderr(&output));
    // Raised just enough, both accept it and the run goes to the end.
    let output = sluice(
        &["flow", "validate", &definition, "--max-step-runs", "20001"],
        b"",
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let output = sluice(
        &[
            "flow",
            "run",
            &definition,
            "--components",
            &components,
            "--max-step-runs",
            "20001",
        ],
        b"",
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    // One short: refused again.
    let output = sluice(
        &["flow", "validate", &definition, "--max-step-runs", "20000"],
        b"",
    );
    assert_eq!(code(&output), 64, "{}", stderr(&output));
    // Zero is bad usage, not a cap.
    let output = sluice(
        &["flow", "validate", &definition, "--max-step-runs", "0"],
        b"",
    );
    assert_eq!(code(&output), 64, "{}", stderr(&output));
}

/// `sluice flow run` runs code steps with the code engine found among the
/// `--components` files, and says where to put it when it is missing.
#[test]
fn flow_run_finds_the_code_engine_among_the_components() {
    let workspace = Workspace::new();
    let definition = "definitionVersion: 1\nname: Shape\nflows:\n  - key: shape\n    steps:\n      - key: shape\n        code: \"(context, stepResults) => ({ data: { title: stepResults.trigger.results.body.title.toUpperCase() } })\"\n";
    let payload = json!({"title": "gh-13"});
    let output = run_definition(&workspace, definition, payload.clone(), &["--json"]);
    assert_ne!(code(&output), 0, "{}", stdout(&output));
    assert!(
        stdout(&output).contains("among the --components files"),
        "{}",
        stdout(&output)
    );

    let engine = sluice_runtime::guest_build::code_engine::code_engine()
        .unwrap_or_else(|err| panic!("{err}"));
    std::fs::copy(
        &engine,
        workspace.path("components").join("sluice-code.wasm"),
    )
    .expect("copy the engine");
    let output = run_definition(&workspace, definition, payload, &["--json"]);
    assert_eq!(code(&output), 0, "stderr: {}", stderr(&output));
    let record = json_out(&output);
    assert_eq!(record["status"], "succeeded", "{record}");
    assert!(record.to_string().contains("GH-13"), "{record}");
}
