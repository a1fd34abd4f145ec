//! `sluice-fakes`: runs the fake OAuth 2.0 provider, the fake GitHub (which accepts the
//! provider's access tokens) and the fake Zendesk on loopback until Ctrl-C, and prints
//! where they listen and the OAuth client's credentials, to try customer activation
//! by hand.

use std::io;
use std::process::ExitCode;

use clap::Parser;
use serde_json::json;
use sluice_fakes::oauth::pkce_challenge;
use sluice_fakes::{FakeGithub, FakeOAuth, FakeZendesk, OAuthClient, TokenRegistry};

/// Runs a fake OAuth 2.0 provider, a fake GitHub and a fake Zendesk on loopback
/// (127.0.0.1) until Ctrl-C.
///
/// The provider has one registered client. Its consent page (GET /authorize) takes
/// the authorization code flow with PKCE (S256 only); POST /token takes the grant
/// types authorization_code, refresh_token (rotating: each refresh token works once)
/// and client_credentials, with the client authenticated by HTTP Basic or by
/// client_id and client_secret in the body; POST /revoke revokes a token and every
/// token of its grant. Token responses carry `instance_url`, the fake GitHub's URL.
///
/// The fake GitHub accepts the provider's access tokens until they expire or are
/// revoked (and `--github-token`, if given) and knows the repositories of `--repo`.
/// The fake Zendesk accepts `--zendesk-token` as a bearer token.
#[derive(Parser)]
#[command(name = "sluice-fakes", version)]
struct Args {
    /// Port of the OAuth provider (0: any free port).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    oauth_port: u16,
    /// Port of the fake GitHub API (0: any free port).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    github_port: u16,
    /// Port of the fake Zendesk API (0: any free port).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    zendesk_port: u16,
    /// Client id of the registered OAuth client.
    #[arg(long, value_name = "ID", default_value = "sluice-demo")]
    client_id: String,
    /// Client secret of the registered OAuth client.
    #[arg(long, value_name = "SECRET", default_value = "sluice-demo-secret")]
    client_secret: String,
    /// A redirect URI of the client, compared exactly (repeat for several).
    #[arg(
        long = "redirect-uri",
        value_name = "URI",
        default_value = "http://127.0.0.1:8080/oauth/callback"
    )]
    redirect_uris: Vec<String>,
    /// Lifetime of the access tokens the provider issues, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    token_lifetime: u64,
    /// A repository of the fake GitHub, visible to every valid token (repeat for
    /// several).
    #[arg(
        long = "repo",
        value_name = "OWNER/NAME",
        default_value = "acme/widgets"
    )]
    repos: Vec<String>,
    /// A static token the fake GitHub accepts besides the provider's access tokens,
    /// like a personal access token.
    #[arg(long, value_name = "TOKEN")]
    github_token: Option<String>,
    /// The bearer token the fake Zendesk accepts.
    #[arg(
        long,
        value_name = "TOKEN",
        default_value = "sluice-demo-zendesk-token"
    )]
    zendesk_token: String,
    /// Print the URLs and credentials as one line of JSON instead of text:
    /// {"oauth": {"url", "authorize_url", "token_url", "revoke_url", "client_id",
    /// "client_secret", "redirect_uris", "token_lifetime"}, "github": {"url", "repos"},
    /// "zendesk": {"url", "token"}}.
    #[arg(long)]
    json: bool,
}

/// A PKCE verifier for the example commands of the text output (not a secret: the
/// fakes are for trying things out).
const DEMO_VERIFIER: &str = "sluice-demo-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("sluice-fakes: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let tokens = TokenRegistry::new();
    if let Some(token) = &args.github_token {
        tokens.add_static(token);
    }
    let client = args.redirect_uris.iter().fold(
        OAuthClient::new(&args.client_id, &args.client_secret),
        |client, uri| client.redirect_uri(uri),
    );
    let oauth = FakeOAuth::start_on(args.oauth_port, &tokens, client)
        .await
        .map_err(cannot("OAuth provider", args.oauth_port))?;
    let github = FakeGithub::start_on(args.github_port, &tokens)
        .await
        .map_err(cannot("fake GitHub", args.github_port))?;
    let zendesk = FakeZendesk::start_on(args.zendesk_port, &args.zendesk_token)
        .await
        .map_err(cannot("fake Zendesk", args.zendesk_port))?;
    oauth.set_token_lifetime(args.token_lifetime);
    oauth.set_instance_url(&github.url());
    for repo in &args.repos {
        github.add_repo(repo);
    }

    if args.json {
        let description = json!({
            "oauth": {
                "url": oauth.url(),
                "authorize_url": oauth.authorize_url(),
                "token_url": oauth.token_url(),
                "revoke_url": oauth.revoke_url(),
                "client_id": args.client_id,
                "client_secret": args.client_secret,
                "redirect_uris": args.redirect_uris,
                "token_lifetime": args.token_lifetime,
            },
            "github": {"url": github.url(), "repos": args.repos},
            "zendesk": {"url": zendesk.url(), "token": args.zendesk_token},
        });
        println!("{description}");
    } else {
        print_text(&args, &oauth, &github, &zendesk);
    }

    tokio::signal::ctrl_c()
        .await
        .map_err(|err| format!("waiting for Ctrl-C: {err}"))
}

/// The message of a failed bind.
fn cannot(what: &'static str, port: u16) -> impl FnOnce(io::Error) -> String {
    move |err| format!("cannot listen on 127.0.0.1:{port} for the {what}: {err}")
}

fn print_text(args: &Args, oauth: &FakeOAuth, github: &FakeGithub, zendesk: &FakeZendesk) {
    // clap's default guarantees one.
    let redirect = args.redirect_uris.first().map_or("", String::as_str);
    let mut authorize = url::Url::parse(&oauth.authorize_url()).expect("a URL of the fake");
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &args.client_id)
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", "repo admin:repo_hook")
        .append_pair("state", "demo")
        .append_pair("code_challenge", &pkce_challenge(DEMO_VERIFIER))
        .append_pair("code_challenge_method", "S256");
    println!(
        "Fake services on loopback; Ctrl-C stops them.

OAuth 2.0 provider  {oauth_url}
  authorize         {authorize_url}
  token             {token_url}
  revoke            {revoke_url}
  client id         {client_id}
  client secret     {client_secret}
  redirect URIs     {redirects}
  access tokens     live {lifetime} s; token responses carry instance_url {github_url}
GitHub API          {github_url}
  accepts           the provider's valid access tokens{static_token}
  repositories      {repos}
Zendesk API         {zendesk_url}
  bearer token      {zendesk_token}

Try it: open this consent page in a browser and press Allow
  {authorize}
then exchange the code of the redirect (PKCE verifier {DEMO_VERIFIER}):
  curl -u '{client_id}:{client_secret}' -d grant_type=authorization_code \\
    --data-urlencode 'redirect_uri={redirect}' -d code_verifier={DEMO_VERIFIER} \\
    -d code=CODE {token_url}
and call GitHub with the access token:
  curl -H 'Authorization: Bearer ACCESS_TOKEN' {github_url}/user/repos",
        oauth_url = oauth.url(),
        authorize_url = oauth.authorize_url(),
        token_url = oauth.token_url(),
        revoke_url = oauth.revoke_url(),
        client_id = args.client_id,
        client_secret = args.client_secret,
        redirects = args.redirect_uris.join(" "),
        lifetime = args.token_lifetime,
        github_url = github.url(),
        static_token = args
            .github_token
            .as_ref()
            .map(|token| format!(" and {token}"))
            .unwrap_or_default(),
        repos = args.repos.join(" "),
        zendesk_url = zendesk.url(),
        zendesk_token = args.zendesk_token,
    );
}
