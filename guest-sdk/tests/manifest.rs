//! The manifest a declaration produces, checked against docs/manifest.md's example
//! (a GitHub connector), and the dispatch of calls by key, natively: handlers that
//! make no host call run outside wasm.

use serde_json::json;
use sluice_sdk::bindings::flow::sluice::flow::types as wit;
use sluice_sdk::connector::export;
use sluice_sdk::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct CreateIssue {
    title: String,
}

fn create_issue(_ctx: &mut Context, input: CreateIssue) -> Result<Value, Error> {
    if input.title == "fail" {
        return Err(Error::retryable("GitHub is down"));
    }
    Ok(json!({"title": input.title}))
}

fn issue_event(
    _ctx: &mut Context,
    request: &Request,
    _inputs: NoInput,
) -> Result<TriggerResponse, Error> {
    Ok(TriggerResponse::accept_request(request))
}

fn noop_hook(_ctx: &mut Context, _inputs: NoInput) -> Result<(), Error> {
    Ok(())
}

fn repositories(_ctx: &mut Context, _input: NoInput) -> Result<Vec<PicklistItem>, Error> {
    Ok(vec![PicklistItem::new("sluice", "Sluice")])
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct OAuthFields {
    client_id: String,
}

fn github() -> Component {
    Component::new("github", "1.2.0")
        .label("GitHub")
        .description("Issues and webhooks")
        .icon_path("icon.png")
        .action(
            Action::new("createIssue", create_issue)
                .label("Create issue")
                .description("..."),
        )
        .trigger(
            Trigger::new("issueEvent", issue_event)
                .label("Issue event")
                .description("...")
                .on_deploy(noop_hook),
        )
        .data_source(
            DataSource::new("repositories", repositories)
                .label("Repositories")
                .description("...")
                .kind(DataSourceType::Picklist),
        )
        .connection(
            ConnectionType::new("oauth", "oauth2")
                .label("OAuth 2.0")
                .inputs::<OAuthFields>(),
        )
}

#[test]
fn manifest_matches_the_documented_example() {
    let component = github();
    assert_eq!(component.validate(), Ok(()));
    let expected = json!({
      "key": "github",
      "version": "1.2.0",
      "display": { "label": "GitHub", "description": "Issues and webhooks", "iconPath": "icon.png" },
      "actions": {
        "createIssue": {
          "display": { "label": "Create issue", "description": "..." },
          "inputs": { "type": "object", "properties": { "title": { "type": "string" } }, "required": ["title"] },
          "allowsBranching": false,
          "staticBranchNames": []
        }
      },
      "triggers": {
        "issueEvent": {
          "display": { "label": "Issue event", "description": "..." },
          "inputs": { "type": "object" },
          "synchronousResponse": "valid",
          "hasInstanceHooks": true
        }
      },
      "dataSources": {
        "repositories": {
          "display": { "label": "Repositories", "description": "..." },
          "inputs": { "type": "object" },
          "dataSourceType": "picklist"
        }
      },
      "connections": [
        { "key": "oauth", "kind": "oauth2", "display": { "label": "OAuth 2.0", "description": "" },
          "inputs": { "type": "object", "properties": { "clientId": { "type": "string" } }, "required": ["clientId"] } }
      ]
    });
    assert_eq!(component.manifest(), expected);
    // The export returns the same document as text.
    let text = export::manifest(&component);
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), expected);
}

#[test]
fn branching_and_validation() {
    let component = Component::new("bad key!", "")
        .action(Action::new("a", create_issue).branches(["yes", "yes"]))
        .action(Action::new("a", create_issue))
        .action(Action::new("s", |_: &mut Context, _: String| Ok(())));
    let problems = component.validate().unwrap_err();
    assert_eq!(problems.len(), 5, "{problems:#?}");
    let manifest = component.manifest();
    assert_eq!(manifest["actions"]["a"]["allowsBranching"], false);
    assert_eq!(manifest["display"]["label"], "bad key!");

    let ok = Component::new("c", "1")
        .action(Action::new("route", create_issue).branches(["left", "right"]));
    let manifest = ok.manifest();
    assert_eq!(manifest["actions"]["route"]["allowsBranching"], true);
    assert_eq!(
        manifest["actions"]["route"]["staticBranchNames"],
        json!(["left", "right"])
    );
}

fn raw_context() -> wit::ExecutionContext {
    wit::ExecutionContext {
        execution_id: "e".into(),
        tenant_id: "t".into(),
        customer_id: None,
        customer_external_id: None,
        integration_id: "i".into(),
        instance_id: "n".into(),
        flow_name: "f".into(),
        step: None,
        attempt: 1,
        started_at_ms: 0,
        webhook_urls: vec![],
    }
}

#[test]
fn dispatches_by_key_with_typed_inputs() {
    let component = github();
    let output =
        export::run_action(&component, raw_context(), "createIssue", r#"{"title":"t"}"#).unwrap();
    assert!(matches!(output.data, wit::Data::Json(ref t) if t == r#"{"title":"t"}"#));

    match export::run_action(&component, raw_context(), "createIssue", r#"{"title":5}"#) {
        Err(wit::Error::InvalidInput(m)) => {
            assert!(
                m.contains("input of action `createIssue`") && m.contains("`title`"),
                "{m}"
            )
        }
        other => panic!("unexpected {other:?}"),
    }
    match export::run_action(&component, raw_context(), "closeIssue", "{}") {
        Err(wit::Error::InvalidInput(m)) => {
            assert_eq!(m, "unknown action `closeIssue` (known: `createIssue`)")
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        export::run_action(
            &component,
            raw_context(),
            "createIssue",
            r#"{"title":"fail"}"#
        ),
        Err(wit::Error::Retryable(_))
    ));

    let request = wit::HttpRequest {
        method: "POST".into(),
        path: String::new(),
        query: vec![],
        headers: vec![],
        body: b"{}".to_vec(),
    };
    let outcome =
        export::run_trigger(&component, raw_context(), "issueEvent", request, "{}").unwrap();
    assert!(matches!(outcome, wit::TriggerOutcome::Accept(_)));

    let picklist = export::run_data_source(&component, raw_context(), "repositories", "").unwrap();
    assert_eq!(picklist, r#"[{"key":"sluice","label":"Sluice"}]"#);
    match export::run_data_source(&component, raw_context(), "nope", "{}") {
        Err(wit::Error::InvalidInput(m)) => assert!(m.contains("known: `repositories`"), "{m}"),
        other => panic!("unexpected {other:?}"),
    }

    // A trigger without a remove hook succeeds without doing anything.
    export::on_instance_hook(&component, raw_context(), "issueEvent", "{}", true).unwrap();
    export::on_instance_hook(&component, raw_context(), "issueEvent", "{}", false).unwrap();
    assert!(export::on_instance_hook(&component, raw_context(), "nope", "{}", true).is_err());
}

#[test]
fn flow_manifest_and_execution() {
    use sluice_sdk::code_flow::export as flow_export;

    #[derive(Deserialize)]
    struct Payload {
        n: u32,
    }
    let flow = || {
        Flow::new("github-zendesk-sync")
            .description("Sync")
            .trigger(FlowTrigger::schedule("0 * * * *", "Europe/Paris"))
            .on_execution(|_ctx: &mut FlowContext, p: Payload| Ok(json!({"double": p.n * 2})))
    };
    assert_eq!(
        flow().manifest(),
        json!({
            "name": "github-zendesk-sync",
            "description": "Sync",
            "trigger": {"type": "schedule", "cron": "0 * * * *", "timezone": "Europe/Paris"}
        })
    );
    assert_eq!(flow().validate(), Ok(()));
    assert_eq!(FlowTrigger::webhook(), FlowTrigger::webhook());
    let out = flow_export::on_execution(&flow(), raw_context(), r#"{"n":21}"#).unwrap();
    assert!(matches!(out.data, wit::Data::Json(ref t) if t == r#"{"double":42}"#));
    assert!(matches!(
        flow_export::on_execution(&flow(), raw_context(), "null"),
        Err(wit::Error::InvalidInput(_))
    ));
    let bare = Flow::new("x");
    assert!(bare.validate().is_err());
    assert!(matches!(
        flow_export::on_execution(&bare, raw_context(), "{}"),
        Err(wit::Error::Fatal(_))
    ));
}
