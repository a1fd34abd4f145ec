//! `sdk-demo`: an example connector written with the `sluice-sdk` declaration API, to
//! prove the SDK end to end. A typed action (`greet`, counting greetings in flow
//! state), one connection type (`api-key`) and an action that uses it through the HTTP
//! client (`postGreeting`), a GitHub-style webhook trigger that verifies
//! `x-hub-signature-256` against the `webhookSecret` config variable (with instance
//! hooks that remember the registered URL), and a picklist data source.

use sluice_sdk::hmac::verify_github_signature;
use sluice_sdk::prelude::*;

/// Who to greet, and how.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Greet {
    /// Name of the person to greet
    pub name: String,
    /// End the greeting with an exclamation mark
    #[serde(default)]
    pub excited: bool,
}

/// What `greet` returns.
#[derive(Debug, Serialize)]
pub struct Greeting {
    pub greeting: String,
    /// How many greetings this flow of this instance has made, this one included.
    pub count: u64,
}

/// The greeting itself: pure, so unit tests can check it natively.
pub fn greeting(input: &Greet) -> Result<String, Error> {
    let name = input.name.trim();
    if name.is_empty() {
        return Err(Error::invalid_input("`name` must not be empty"));
    }
    let mark = if input.excited { "!" } else { "." };
    Ok(format!("Hello, {name}{mark}"))
}

fn greet(ctx: &mut Context, input: Greet) -> Result<Greeting, Error> {
    let greeting = greeting(&input)?;
    // `update` is a compare-and-swap loop: concurrent executions never lose a count.
    let count = ctx
        .flow_state()
        .update("greetings", |n: Option<u64>| Some(n.unwrap_or(0) + 1))?
        .unwrap_or(1);
    info!(
        fields = json!({"name": input.name, "count": count}),
        "greeted {}", input.name
    );
    Ok(Greeting { greeting, count })
}

/// Fields a customer fills in for the `api-key` connection.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyFields {
    /// The API key, sent as a bearer token
    pub api_key: String,
    /// Base URL of the API, when not the public one
    #[serde(default)]
    pub base_url: Option<String>,
}

/// The connection `postGreeting` uses.
pub const CONNECTION: &str = "api-key";

/// What `postGreeting` sends.
#[derive(Debug, Serialize)]
struct GreetingPost<'a> {
    greeting: &'a str,
}

fn post_greeting(ctx: &mut Context, input: Greet) -> Result<Value, Error> {
    let greeting = greeting(&input)?;
    let connection = ctx.connection(CONNECTION)?;
    let fields: ApiKeyFields = connection.fields_as()?;
    let base_url = fields
        .base_url
        .as_deref()
        .unwrap_or("https://api.example.com");
    let response = Http::post(format!("{}/greetings", base_url.trim_end_matches('/')))
        .bearer(&fields.api_key)
        // A 401/403 from the API is then reported against this connection.
        .connection_key(CONNECTION)
        .timeout(std::time::Duration::from_secs(10))
        .json(&GreetingPost {
            greeting: &greeting,
        })
        .send()?
        .error_for_status()?;
    debug!(
        fields = json!({"status": response.status}),
        "posted a greeting"
    );
    response.json()
}

/// Inputs of the `github` trigger.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct WebhookInputs {
    /// GitHub events to run the flow for (all when empty)
    #[serde(default)]
    pub events: Vec<String>,
}

/// The config variable holding the webhook's shared secret.
pub const SECRET_CONFIG: &str = "webhookSecret";

/// Decides about a GitHub delivery once the secret is known: pure, so unit tests can
/// check it natively with signatures made by `sluice_sdk::hmac::sign_github`.
pub fn decide(
    secret: &str,
    request: &Request,
    inputs: &WebhookInputs,
) -> Result<TriggerResponse, Error> {
    let signature = request.header("x-hub-signature-256").unwrap_or_default();
    if !verify_github_signature(secret, &request.body, signature) {
        return Ok(TriggerResponse::reject(401, "invalid signature"));
    }
    let event = request.header("x-github-event").unwrap_or("unknown");
    // GitHub pings a hook when it is registered: answer, without running the flow.
    if event == "ping" {
        return Ok(TriggerResponse::respond(
            HttpResponse::new(200).text("pong"),
        ));
    }
    if !inputs.events.is_empty() && !inputs.events.iter().any(|e| e == event) {
        return Ok(TriggerResponse::reject(
            202,
            format!("event `{event}` ignored"),
        ));
    }
    let body: Value = request.json()?;
    Ok(
        TriggerResponse::accept_json(&json!({ "event": event, "body": body }))
            .branch(if event == "issues" { "issues" } else { "other" }),
    )
}

fn github_webhook(
    ctx: &mut Context,
    request: &Request,
    inputs: WebhookInputs,
) -> Result<TriggerResponse, Error> {
    let secret: String = ctx.require_config(SECRET_CONFIG)?;
    let response = decide(&secret, request, &inputs)?;
    if response.is_accepted() {
        debug!("accepted a GitHub delivery");
    } else {
        warn!("refused a GitHub delivery");
    }
    Ok(response)
}

/// Instance-state key remembering the webhook URL registered for the current flow.
fn webhook_key(ctx: &Context) -> String {
    format!("webhook:{}", ctx.flow_name())
}

fn on_deploy(ctx: &mut Context, _inputs: WebhookInputs) -> Result<(), Error> {
    // A real connector would register the URL with GitHub here. `set` overwrites, so
    // running the hook twice leaves the same state: hooks must be idempotent.
    let url = ctx.own_webhook_url()?.to_string();
    ctx.instance_state().set(&webhook_key(ctx), &url)?;
    info!("registered {url}");
    Ok(())
}

fn on_remove(ctx: &mut Context, _inputs: WebhookInputs) -> Result<(), Error> {
    ctx.instance_state().delete(&webhook_key(ctx))?;
    Ok(())
}

fn greeting_styles(_ctx: &mut Context, _input: NoInput) -> Result<Vec<PicklistItem>, Error> {
    Ok(vec![
        PicklistItem::new("plain", "Plain"),
        PicklistItem::new("excited", "Excited"),
    ])
}

/// The declaration: the component's one registration point.
pub fn component() -> Component {
    Component::new("sdk-demo", "0.1.0")
        .label("SDK demo")
        .description("Example connector written with the sluice-sdk declaration API.")
        .connection(
            ConnectionType::new("api-key", "api-key")
                .label("API key")
                .description("A static API key.")
                .inputs::<ApiKeyFields>(),
        )
        .action(
            Action::new("greet", greet)
                .label("Greet")
                .description("Greets someone and counts the greetings of this flow."),
        )
        .action(
            Action::new("postGreeting", post_greeting)
                .label("Post greeting")
                .description("Posts the greeting to the API of the `api-key` connection."),
        )
        .trigger(
            Trigger::new("github", github_webhook)
                .label("GitHub webhook")
                .description("Runs the flow for GitHub deliveries signed with the webhookSecret config variable.")
                .branches(["issues", "other"])
                .on_deploy(on_deploy)
                .on_remove(on_remove),
        )
        .data_source(
            DataSource::new("greetingStyles", greeting_styles)
                .label("Greeting styles")
                .description("The styles `greet` knows.")
                .kind(DataSourceType::Picklist),
        )
}

sluice_sdk::export_component!(component);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::hmac::sign_github;

    #[test]
    fn declaration_is_valid() {
        assert_eq!(component().validate(), Ok(()));
        let manifest = component().manifest();
        let greet = &manifest["actions"]["greet"]["inputs"];
        assert_eq!(greet["required"], json!(["name"]));
        assert_eq!(greet["properties"]["excited"]["default"], json!(false));
        assert_eq!(
            manifest["triggers"]["github"]["hasInstanceHooks"],
            json!(true)
        );
        assert_eq!(
            manifest["connections"][0]["inputs"]["required"],
            json!(["apiKey"])
        );
    }

    #[test]
    fn greetings() {
        let input = |name: &str, excited| Greet {
            name: name.into(),
            excited,
        };
        assert_eq!(greeting(&input("Ada", false)).unwrap(), "Hello, Ada.");
        assert_eq!(greeting(&input(" Ada ", true)).unwrap(), "Hello, Ada!");
        assert_eq!(
            greeting(&input("  ", true)).unwrap_err().kind(),
            "invalid-input"
        );
    }

    #[test]
    fn webhook_decisions() {
        let body = br#"{"action":"opened"}"#;
        let signed = |event: &str, secret: &str| {
            Request::new("POST", body.to_vec())
                .with_header("x-github-event", event)
                .with_header("x-hub-signature-256", sign_github(secret, body))
        };
        let all = WebhookInputs::default();
        assert!(
            decide("s3cret", &signed("issues", "s3cret"), &all)
                .unwrap()
                .is_accepted()
        );
        assert!(
            !decide("s3cret", &signed("issues", "wrong"), &all)
                .unwrap()
                .is_accepted()
        );
        assert!(
            !decide("s3cret", &Request::new("POST", body.to_vec()), &all)
                .unwrap()
                .is_accepted()
        );
        assert!(
            !decide("s3cret", &signed("ping", "s3cret"), &all)
                .unwrap()
                .is_accepted()
        );
        let issues_only = WebhookInputs {
            events: vec!["issues".into()],
        };
        assert!(
            !decide("s3cret", &signed("push", "s3cret"), &issues_only)
                .unwrap()
                .is_accepted()
        );
    }
}
