//! Scheduled flows against a real `sluice serve` whose scheduler ticks every 100 ms
//! (`--schedule-tick-ms`), with crons that fire every second: schedules fire and their
//! runs read the trigger payload, per-instance schedules from a config variable,
//! singleton flows skip runs while one is unfinished, disabling and upgrading stop a
//! schedule, and after downtime one catch-up run stands for the missed ones. Time is
//! compressed through configuration; assertions count at least, never exact timings.

mod support;

use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use support::{Client, Server, Sink};

/// How long a test waits for something that takes a few seconds on an idle machine.
const PATIENCE: Duration = Duration::from_secs(90);

fn start() -> Server {
    Server::start_with(&["--schedule-tick-ms", "100", "--webhook-rate-limit", "0"])
}

/// An integration whose flow `tick` runs every second and echoes its trigger payload.
const TICKER: &str = r#"
definitionVersion: 1
name: Ticker
components:
  hello: {version: 1}
flows:
  - key: tick
    schedule: {cron: "* * * * * *"}
    steps:
      - key: echo
        action: hello.echo
        inputs:
          scheduledAt: {type: reference, value: trigger.results.body.scheduledAt}
          missed: {type: reference, value: trigger.results.body.missed}
"#;

async fn publish(client: &Client, key: &str, definition: &str) -> support::Reply {
    client
        .post_bytes(
            &format!("/v1/integrations/{key}/versions"),
            "application/yaml",
            definition.as_bytes().to_vec(),
        )
        .await
}

async fn publish_ok(client: &Client, key: &str, definition: &str) {
    let reply = publish(client, key, definition).await;
    assert!(reply.status == 201 || reply.status == 200, "{}", reply.text);
}

async fn new_customer(client: &Client) -> String {
    let customer = client
        .post("/v1/customers", &json!({"name": "Scheduled customer"}))
        .await
        .expect(201)
        .body;
    customer["id"].as_str().expect("a customer id").to_string()
}

/// Deploys `integration` with `extra` fields (config, allowedHosts) merged in.
async fn deploy(client: &Client, customer: &str, integration: &str, extra: Value) -> Value {
    let mut body = json!({"customerId": customer, "integration": integration});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let instance = client.post("/v1/instances", &body).await.expect(201).body;
    assert_eq!(instance["status"], "deployed", "{instance}");
    instance
}

fn id_of(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_string()
}

/// The instance view's entry for `flow`.
fn flow_view<'a>(instance: &'a Value, flow: &str) -> &'a Value {
    instance["flows"]
        .as_array()
        .and_then(|flows| flows.iter().find(|candidate| candidate["key"] == flow))
        .unwrap_or_else(|| panic!("no flow {flow} in {instance}"))
}

/// Every scheduled execution of an instance, newest first.
async fn scheduled(client: &Client, instance: &str) -> Vec<Value> {
    client
        .all_executions(&format!("instanceId={instance}&trigger=schedule"))
        .await
}

/// Polls `probe` every 200 ms until it returns something; panics after [`PATIENCE`].
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Checks that an instance's schedule stopped: at most one run (claimed just before
/// the change) appears over more than two fire times.
async fn assert_stopped(client: &Client, instance: &str) {
    let before = scheduled(client, instance).await.len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = scheduled(client, instance).await.len();
    assert!(
        after <= before + 1,
        "the schedule kept firing: {before} runs, then {after}"
    );
}

/// The trigger payload of an execution, its body (text in the API) parsed as JSON.
async fn payload(client: &Client, execution: &str) -> Value {
    let mut payload = client
        .get(&format!("/v1/executions/{execution}/payload"))
        .await
        .expect(200)
        .body;
    let body = payload["body"].as_str().unwrap_or_default();
    payload["body"] = serde_json::from_str(body).unwrap_or_else(|err| panic!("{body}: {err}"));
    payload
}

fn instant(rfc3339: &Value) -> SystemTime {
    let text = rfc3339
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {rfc3339}"));
    humantime::parse_rfc3339(text).unwrap_or_else(|err| panic!("{text}: {err}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_schedule_fires_and_stops_while_the_instance_is_disabled() {
    let server = start();
    let client = server.tenant("Acme");
    client.upload_example("hello").await;
    publish_ok(&client, "ticker", TICKER).await;
    let customer = new_customer(&client).await;
    let instance = deploy(&client, &customer, "ticker", json!({})).await;
    let id = id_of(&instance);
    // A scheduled flow keeps its webhook, and the view shows its schedule.
    let tick = flow_view(&instance, "tick");
    assert!(tick["webhookUrl"].is_string(), "{tick}");
    assert_eq!(tick["schedule"]["cron"], "* * * * * *");
    assert_eq!(tick["schedule"]["timezone"], "UTC");
    assert!(tick["schedule"]["nextRunAt"].is_string(), "{tick}");

    let runs = eventually("three scheduled runs", || async {
        let runs = scheduled(&client, &id).await;
        (runs.len() >= 3).then_some(runs)
    })
    .await;
    let oldest = id_of(runs.last().expect("runs"));
    let finished = client.finished_execution(&oldest).await;
    assert_eq!(finished["status"], "succeeded", "{finished}");
    assert_eq!(finished["trigger"], "schedule");
    let trigger = payload(&client, &oldest).await;
    assert_eq!(trigger["method"], "POST");
    assert!(
        trigger["headers"]
            .as_array()
            .is_some_and(|headers| headers.contains(&json!(["sluice-trigger", "schedule"]))),
        "{trigger}"
    );
    let body = &trigger["body"];
    assert_eq!(body["cron"], "* * * * * *");
    assert_eq!(body["timezone"], "UTC");
    assert!(body["missed"].is_u64(), "{body}");
    instant(&body["scheduledAt"]);
    // The step read the payload through `trigger.results.body`.
    let echo = finished["record"]["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|step| step["key"] == "echo"))
        .unwrap_or_else(|| panic!("no echo step in {finished}"));
    assert_eq!(echo["result"]["value"]["scheduledAt"], body["scheduledAt"]);

    // Each fire time ran once.
    let mut fire_times = BTreeSet::new();
    for run in scheduled(&client, &id).await {
        let body = payload(&client, &id_of(&run)).await["body"].clone();
        let at = body["scheduledAt"].as_str().unwrap_or_default().to_string();
        assert!(fire_times.insert(at.clone()), "{at} ran twice");
    }

    let disabled = client
        .patch(&format!("/v1/instances/{id}"), &json!({"enabled": false}))
        .await
        .expect(200)
        .body;
    assert!(
        flow_view(&disabled, "tick")["schedule"].is_null(),
        "{disabled}"
    );
    assert_stopped(&client, &id).await;

    // Enabled again, it fires again.
    let stopped_at = scheduled(&client, &id).await.len();
    client
        .patch(&format!("/v1/instances/{id}"), &json!({"enabled": true}))
        .await
        .expect(200);
    eventually("a run after enabling", || async {
        (scheduled(&client, &id).await.len() > stopped_at).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_from_a_config_variable_are_set_per_instance() {
    let server = start();
    let client = server.tenant("Acme");
    client.upload_example("hello").await;

    // A bad schedule in a definition is refused at upload, with its path.
    for (schedule, path, message) in [
        (
            r#"{cron: "*/5 * * *"}"#,
            "flows[0].schedule.cron",
            "malformed cron expression",
        ),
        (
            r#"{cron: "0 9 * * *", timezone: Europe/Pariss}"#,
            "flows[0].schedule.timezone",
            "unknown time zone `Europe/Pariss`",
        ),
        (
            "{configVar: Region}",
            "flows[0].schedule.configVar",
            "data type `string`",
        ),
    ] {
        let definition = format!(
            "definitionVersion: 1\nname: Bad\ncomponents: {{hello: {{version: 1}}}}\n\
             configVars: [{{key: Region}}]\n\
             flows:\n  - key: sync\n    schedule: {schedule}\n    steps: [{{key: a, action: hello.echo}}]\n"
        );
        let reply = publish(&client, "bad", &definition).await;
        assert!((400..500).contains(&reply.status), "{}", reply.text);
        let details = reply.body["error"]["details"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            details.iter().any(|detail| detail["path"] == path
                && detail["message"]
                    .as_str()
                    .is_some_and(|text| text.contains(message))),
            "expected {path}: {message} in {}",
            reply.text
        );
    }

    let per_customer = r#"
definitionVersion: 1
name: Per customer
components:
  hello: {version: 1}
configVars:
  - key: Sync schedule
    dataType: schedule
flows:
  - key: sync
    schedule: {configVar: Sync schedule}
    steps:
      - key: echo
        action: hello.echo
        inputs:
          timezone: {type: reference, value: trigger.results.body.timezone}
"#;
    publish_ok(&client, "per-customer", per_customer).await;
    let customer = new_customer(&client).await;

    // A bad value is refused at deploy, naming the config variable.
    for (value, message) in [
        (json!("every minute"), "malformed cron expression"),
        (
            json!({"cron": "* * * * *", "timezone": "Mars/Olympus"}),
            "unknown time zone",
        ),
        (json!({"cron": "0 0 30 2 *"}), "never fires"),
    ] {
        let reply = client
            .post(
                "/v1/instances",
                &json!({"customerId": customer, "integration": "per-customer",
                        "config": {"Sync schedule": value}}),
            )
            .await;
        assert_eq!(reply.status, 400, "{}", reply.text);
        let text = reply.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            text.contains("config.Sync schedule") && text.contains(message),
            "{text}"
        );
    }

    let every_second = deploy(
        &client,
        &customer,
        "per-customer",
        json!({"config": {"Sync schedule": "* * * * * *"}}),
    )
    .await;
    // Midnight of a leap day in Auckland: it will not come during this test.
    let leap_day = deploy(
        &client,
        &customer,
        "per-customer",
        json!({"config": {"Sync schedule": {"cron": "0 0 0 29 2 *", "timezone": "Pacific/Auckland"}}}),
    )
    .await;
    let (fast, slow) = (id_of(&every_second), id_of(&leap_day));
    let schedule = &flow_view(&leap_day, "sync")["schedule"];
    assert_eq!(schedule["timezone"], "Pacific/Auckland");
    // 00:00 on 29 February in New Zealand's summer time (UTC+13) is 11:00 UTC the day before.
    assert!(
        schedule["nextRunAt"]
            .as_str()
            .is_some_and(|at| at.contains("-02-28T11:00:00")),
        "{schedule}"
    );

    eventually("two runs of the every-second instance", || async {
        (scheduled(&client, &fast).await.len() >= 2).then_some(())
    })
    .await;
    assert!(scheduled(&client, &slow).await.is_empty());

    // A new value reschedules the instance.
    client
        .patch(
            &format!("/v1/instances/{slow}"),
            &json!({"config": {"Sync schedule": {"cron": "* * * * * *", "timezone": "Asia/Tokyo"}}}),
        )
        .await
        .expect(200);
    let run = eventually("a run after the new value", || async {
        scheduled(&client, &slow).await.pop()
    })
    .await;
    let body = payload(&client, &id_of(&run)).await["body"].clone();
    assert_eq!(body["timezone"], "Asia/Tokyo");
    assert!(
        body["scheduledAt"]
            .as_str()
            .is_some_and(|at| at.ends_with("+09:00")),
        "{body}"
    );

    // Upgrading to a version without the schedule removes it.
    publish_ok(
        &client,
        "per-customer",
        &per_customer.replace("    schedule: {configVar: Sync schedule}\n", ""),
    )
    .await;
    let upgraded = client
        .post(
            &format!("/v1/instances/{fast}/upgrade"),
            &json!({"version": 2}),
        )
        .await
        .expect(200)
        .body;
    assert!(
        flow_view(&upgraded, "sync")["schedule"].is_null(),
        "{upgraded}"
    );
    assert_stopped(&client, &fast).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_singleton_flow_skips_runs_while_one_is_unfinished() {
    let server = start();
    let client = server.tenant("Acme");
    client.upload_example("http").await;
    // Each run waits on the sink longer than the schedule's period.
    let sink = Sink::start(Duration::from_millis(2500)).await;
    publish_ok(
        &client,
        "slow",
        r#"
definitionVersion: 1
name: Slow
components:
  http: {version: 1}
configVars:
  - key: Sink Url
flows:
  - key: slow
    schedule: {cron: "* * * * * *"}
    singleton: true
    steps:
      - key: post
        action: http.request
        inputs:
          method: POST
          url: {type: configVar, value: Sink Url}
          json: {type: reference, value: trigger.results.body}
          timeoutMs: 30000
          failOnError: true
"#,
    )
    .await;
    let customer = new_customer(&client).await;
    let instance = deploy(
        &client,
        &customer,
        "slow",
        json!({"config": {"Sink Url": format!("{}/", sink.url)}, "allowedHosts": [sink.url]}),
    )
    .await;
    let id = id_of(&instance);
    eventually("two finished runs and three skipped ones", || async {
        let runs = scheduled(&client, &id).await;
        let count = |status: &str| runs.iter().filter(|run| run["status"] == status).count();
        (count("succeeded") >= 2 && count("skipped") >= 3).then_some(())
    })
    .await;
    client
        .patch(&format!("/v1/instances/{id}"), &json!({"enabled": false}))
        .await
        .expect(200);
    client.wait_until_idle(PATIENCE).await;

    let runs = scheduled(&client, &id).await;
    let (skipped, ran): (Vec<&Value>, Vec<&Value>) =
        runs.iter().partition(|run| run["status"] == "skipped");
    assert!(
        ran.iter().all(|run| run["status"] == "succeeded"),
        "{runs:#?}"
    );
    assert_eq!(
        sink.received().len(),
        ran.len(),
        "each run reached the sink once"
    );
    // Never two at once: sorted by start, each run started after the previous ended.
    let mut intervals: Vec<(SystemTime, SystemTime, SystemTime)> = ran
        .iter()
        .map(|run| {
            (
                instant(&run["createdAt"]),
                instant(&run["startedAt"]),
                instant(&run["finishedAt"]),
            )
        })
        .collect();
    intervals.sort_by_key(|(_, started, _)| *started);
    for pair in intervals.windows(2) {
        assert!(pair[1].1 >= pair[0].2, "two runs overlapped: {runs:#?}");
    }
    // Each skipped run came while a run was unfinished.
    for run in &skipped {
        let at = instant(&run["createdAt"]);
        assert!(
            intervals
                .iter()
                .any(|(created, _, finished)| *created <= at && at <= *finished),
            "{run} was skipped with nothing unfinished: {runs:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_runs_after_downtime_catch_up_once() {
    let mut server = start();
    let client = server.tenant("Acme");
    client.upload_example("hello").await;
    publish_ok(&client, "ticker", TICKER).await;
    let customer = new_customer(&client).await;
    let id = id_of(&deploy(&client, &customer, "ticker", json!({})).await);
    eventually("a first run", || async {
        (!scheduled(&client, &id).await.is_empty()).then_some(())
    })
    .await;

    server.kill();
    // Down for more than two fire times.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    server.restart();
    let client = Client {
        base: server.url.clone(),
        ..client
    };

    // Wait for the catch-up run and two runs after it.
    let runs = eventually("a catch-up run and two on-time runs after it", || async {
        let mut runs = Vec::new();
        for run in scheduled(&client, &id).await {
            let body = payload(&client, &id_of(&run)).await["body"].clone();
            runs.push((
                instant(&body["scheduledAt"]),
                body["missed"].as_u64().unwrap_or(0),
            ));
        }
        let catch_up = runs.iter().find(|(_, missed)| *missed >= 2)?.0;
        let after = runs.iter().filter(|(at, _)| *at > catch_up).count();
        (after >= 2).then_some(runs)
    })
    .await;
    let catch_ups: Vec<&(SystemTime, u64)> =
        runs.iter().filter(|(_, missed)| *missed >= 2).collect();
    assert_eq!(
        catch_ups.len(),
        1,
        "one run stands for the missed ones: {runs:?}"
    );
    let (catch_up, missed) = *catch_ups[0];
    // The missed fire times (the seconds before the catch-up's) never ran on their own.
    for back in 1..=missed {
        let fire_time = catch_up - Duration::from_secs(back);
        assert!(
            runs.iter().all(|(at, _)| *at != fire_time),
            "missed fire time {back} s before the catch-up ran: {runs:?}"
        );
    }
}
