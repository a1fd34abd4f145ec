//! The fake OAuth 2.0 provider over real HTTP: the authorization code grant with PKCE,
//! refresh rotation, client credentials, client authentication spellings, revocation,
//! the failure knobs, and the fake GitHub accepting only the tokens it issued; plus the
//! `sluice-fakes` binary.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use sluice_fakes::oauth::pkce_challenge;
use sluice_fakes::{FakeGithub, FakeOAuth, OAuthClient, TokenRegistry};
use url::Url;

const CLIENT_ID: &str = "demo-app";
const SECRET: &str = "demo-secret";
const REDIRECT: &str = "http://127.0.0.1:9/oauth/callback";
const VERIFIER: &str = "a-verifier-of-forty-three-or-more-characters_0123456789~";
const SCOPE: &str = "repo admin:repo_hook";
const REPO: &str = "acme/widgets";

/// A provider and a GitHub sharing one token registry, and a client that does not
/// follow redirects (the test reads them, as a browser would follow them).
struct Fixture {
    oauth: FakeOAuth,
    github: FakeGithub,
    http: reqwest::Client,
}

impl Fixture {
    async fn start() -> Self {
        let tokens = TokenRegistry::new();
        let oauth = FakeOAuth::start(
            &tokens,
            OAuthClient::new(CLIENT_ID, SECRET).redirect_uri(REDIRECT),
        )
        .await;
        let github = FakeGithub::start_with_registry(&tokens).await;
        github.add_repo(REPO);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client");
        Fixture {
            oauth,
            github,
            http,
        }
    }

    /// The parameters of an authorization request with PKCE.
    fn authorization(&self) -> Vec<(&'static str, String)> {
        vec![
            ("response_type", "code".into()),
            ("client_id", CLIENT_ID.into()),
            ("redirect_uri", REDIRECT.into()),
            ("scope", SCOPE.into()),
            ("state", "st4te".into()),
            ("code_challenge", pkce_challenge(VERIFIER)),
            ("code_challenge_method", "S256".into()),
        ]
    }

    /// Submits the consent form with `decision`, as the page's buttons do.
    async fn decide(
        &self,
        mut form: Vec<(&'static str, String)>,
        decision: &str,
    ) -> reqwest::Response {
        form.push(("decision", decision.into()));
        self.http
            .post(self.oauth.authorize_url())
            .form(&form)
            .send()
            .await
            .expect("POST /authorize")
    }

    /// A fresh authorization code, as the redirect after "Allow" carries it.
    async fn code(&self) -> String {
        let response = self.decide(self.authorization(), "allow").await;
        assert_eq!(response.status(), StatusCode::FOUND);
        let query = redirect_query(&response);
        assert_eq!(query.get("state").map(String::as_str), Some("st4te"));
        query.get("code").expect("a code").clone()
    }

    /// A token request with the client in the body, as a form.
    async fn token(&self, params: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut form = vec![("client_id", CLIENT_ID), ("client_secret", SECRET)];
        form.extend_from_slice(params);
        let response = self
            .http
            .post(self.oauth.token_url())
            .form(&form)
            .send()
            .await
            .expect("POST /token");
        read_json(response).await
    }

    /// Redeems `code` with the right verifier and redirect URI.
    async fn exchange(&self, code: &str) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .await
    }

    async fn refresh(&self, refresh_token: &str) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    /// `GET /user/repos` of the fake GitHub with `token`.
    async fn repos(&self, token: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}/user/repos", self.github.url()))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET /user/repos");
        read_json(response).await
    }
}

async fn read_json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("a body");
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("not JSON ({err}), status {status}: {text}"));
    (status, value)
}

/// The query parameters of a redirect's `Location`.
fn redirect_query(response: &reqwest::Response) -> std::collections::HashMap<String, String> {
    let location = response
        .headers()
        .get(LOCATION)
        .expect("a Location header")
        .to_str()
        .expect("an ASCII Location");
    let url = Url::parse(location).expect("an absolute Location");
    assert_eq!(
        format!("{}://{}{}", url.scheme(), url.authority(), url.path()),
        REDIRECT
    );
    url.query_pairs().into_owned().collect()
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

#[tokio::test]
async fn authorization_code_with_pkce_gets_tokens_github_accepts() {
    let fixture = Fixture::start().await;

    // The consent page: plain HTML with the client, the scopes and two submit buttons.
    let page = fixture
        .http
        .get(fixture.oauth.authorize_url())
        .query(&fixture.authorization())
        .send()
        .await
        .expect("GET /authorize");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    for expected in [
        "<h1>Authorize demo-app</h1>",
        "<li><code>repo</code></li>",
        "<li><code>admin:repo_hook</code></li>",
        "<form method=\"post\" action=\"/authorize\">",
        "<button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>",
        "<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>",
        "name=\"state\" value=\"st4te\"",
    ] {
        assert!(html.contains(expected), "{expected} not in {html}");
    }
    assert!(!html.contains("<script"), "the page needs no JavaScript");

    // Allow: back to the redirect URI with a code and the state.
    let code = fixture.code().await;
    assert_eq!(fixture.oauth.approvals(), 1);

    let (status, body) = fixture.exchange(&code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], SCOPE);
    assert_eq!(body["instance_url"], fixture.oauth.url());
    let access = body["access_token"].as_str().expect("an access token");
    let refresh = body["refresh_token"].as_str().expect("a refresh token");
    assert!(fixture.oauth.refresh_token_active(refresh));
    assert_eq!(fixture.oauth.issued_access_tokens(), [access]);
    assert_eq!(fixture.oauth.valid_access_tokens(), [access]);
    assert_eq!(fixture.oauth.token_requests("authorization_code"), 1);
    assert!(fixture.oauth.registry().is_valid(access));

    // The fake GitHub takes it, and lists the repositories it can see.
    let (status, repos) = fixture.repos(access).await;
    assert_eq!(status, StatusCode::OK, "{repos}");
    assert_eq!(repos[0]["full_name"], REPO);
    // But no other token.
    let (status, body) = fixture.repos("fake-at-made-up").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "Bad credentials");
}

#[tokio::test]
async fn the_token_response_is_not_cacheable() {
    let fixture = Fixture::start().await;
    let code = fixture.code().await;
    let response = fixture
        .http
        .post(fixture.oauth.token_url())
        .basic_auth(CLIENT_ID, Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn the_consent_page_escapes_what_the_client_sent() {
    let fixture = Fixture::start().await;
    let mut params = fixture.authorization();
    params.retain(|(name, _)| !matches!(*name, "state" | "scope"));
    params.push(("state", "\"><script>alert(1)</script>".into()));
    params.push(("scope", "<b>repo</b>".into()));
    let html = fixture
        .http
        .get(fixture.oauth.authorize_url())
        .query(&params)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !html.contains("<script>") && !html.contains("<b>"),
        "{html}"
    );
    assert!(html.contains("value=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\""));
    // The escaped state comes back intact through the form.
    let response = fixture.decide(params, "allow").await;
    assert_eq!(
        redirect_query(&response)["state"],
        "\"><script>alert(1)</script>"
    );
}

#[tokio::test]
async fn deny_goes_back_with_access_denied() {
    let fixture = Fixture::start().await;
    let response = fixture.decide(fixture.authorization(), "deny").await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let query = redirect_query(&response);
    assert_eq!(query["error"], "access_denied");
    assert_eq!(query["state"], "st4te");
    assert!(!query.contains_key("code"));
    assert_eq!(fixture.oauth.denials(), 1);
}

#[tokio::test]
async fn an_untrusted_client_or_redirect_uri_gets_a_page_never_a_redirect() {
    let fixture = Fixture::start().await;
    let with = |name: &'static str, value: &str| {
        let mut params = fixture.authorization();
        params.retain(|(key, _)| *key != name);
        params.push((name, value.into()));
        params
    };
    for params in [
        with("client_id", "someone-else"),
        with("redirect_uri", "https://evil.example/callback"),
        with("redirect_uri", "http://127.0.0.1:9/oauth/callback/extra"),
        with("redirect_uri", ""),
    ] {
        let page = fixture
            .http
            .get(fixture.oauth.authorize_url())
            .query(&params)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::BAD_REQUEST, "{params:?}");
        assert!(page.headers().get(LOCATION).is_none());
        assert!(
            page.text()
                .await
                .unwrap()
                .contains("<h1>Authorization error</h1>")
        );
        // The form's submission is checked again.
        let decided = fixture.decide(params.clone(), "allow").await;
        assert_eq!(decided.status(), StatusCode::BAD_REQUEST, "{params:?}");
        assert!(decided.headers().get(LOCATION).is_none());
    }

    // A parameter given twice is refused too.
    let mut twice = fixture.authorization();
    twice.push(("redirect_uri", "https://evil.example/callback".into()));
    let page = fixture
        .http
        .get(fixture.oauth.authorize_url())
        .query(&twice)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);

    // With a trusted client and redirect URI, other mistakes go back to the client.
    for (params, error) in [
        (with("code_challenge", ""), "invalid_request"),
        (with("code_challenge_method", "plain"), "invalid_request"),
        (with("code_challenge", "too-short"), "invalid_request"),
        (with("response_type", "token"), "unsupported_response_type"),
    ] {
        let page = fixture
            .http
            .get(fixture.oauth.authorize_url())
            .query(&params)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::FOUND, "{params:?}");
        let query = redirect_query(&page);
        assert_eq!(query["error"], error, "{params:?}");
        assert_eq!(query["state"], "st4te");
    }

    // A decision that is neither allow nor deny.
    let odd = fixture.decide(fixture.authorization(), "maybe").await;
    assert_eq!(odd.status(), StatusCode::BAD_REQUEST);
    assert_eq!(fixture.oauth.approvals() + fixture.oauth.denials(), 0);
}

#[tokio::test]
async fn a_wrong_or_missing_verifier_or_redirect_uri_is_invalid_grant() {
    let fixture = Fixture::start().await;
    let wrong_verifier = "another-verifier-of-forty-three-or-more-characters_0123";
    for params in [
        vec![
            ("code_verifier", wrong_verifier),
            ("redirect_uri", REDIRECT),
        ],
        vec![("redirect_uri", REDIRECT)],
        vec![("code_verifier", "short"), ("redirect_uri", REDIRECT)],
        vec![("code_verifier", VERIFIER)],
        vec![
            ("code_verifier", VERIFIER),
            ("redirect_uri", "http://127.0.0.1:9/other"),
        ],
    ] {
        let code = fixture.code().await;
        let mut request = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
        ];
        request.extend(params.iter().copied());
        let (status, body) = fixture.token(&request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{params:?}: {body}");
        assert_eq!(body["error"], "invalid_grant", "{params:?}");
        assert!(body["error_description"].is_string());
    }
    let (status, body) = fixture.exchange("not-a-code").await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_grant"))
    );
    assert!(fixture.oauth.issued_access_tokens().is_empty());
}

#[tokio::test]
async fn a_code_works_once_and_its_reuse_revokes_what_it_granted() {
    let fixture = Fixture::start().await;
    let code = fixture.code().await;
    let (status, first) = fixture.exchange(&code).await;
    assert_eq!(status, StatusCode::OK);
    let access = first["access_token"].as_str().unwrap();
    let refresh = first["refresh_token"].as_str().unwrap();

    let (status, again) = fixture.exchange(&code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(again["error"], "invalid_grant");
    assert_eq!(fixture.repos(access).await.0, StatusCode::UNAUTHORIZED);
    assert!(!fixture.oauth.refresh_token_active(refresh));
    assert_eq!(fixture.refresh(refresh).await.1["error"], "invalid_grant");
}

#[tokio::test]
async fn refresh_rotates_and_reusing_an_old_token_revokes_the_grant() {
    let fixture = Fixture::start().await;
    let code = fixture.code().await;
    let (_, first) = fixture.exchange(&code).await;
    let refresh1 = first["refresh_token"].as_str().unwrap();

    let (status, second) = fixture.refresh(refresh1).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let access2 = second["access_token"].as_str().unwrap();
    let refresh2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(
        refresh1, refresh2,
        "each refresh issues a new refresh token"
    );
    assert_ne!(first["access_token"], second["access_token"]);
    assert_eq!(second["scope"], SCOPE);
    assert!(!fixture.oauth.refresh_token_active(refresh1));
    assert!(fixture.oauth.refresh_token_active(refresh2));
    // The access tokens of before stay good until they expire.
    assert_eq!(fixture.oauth.valid_access_tokens().len(), 2);
    assert_eq!(fixture.repos(access2).await.0, StatusCode::OK);

    // A narrower scope may be asked for, a wider one not.
    let (status, narrower) = fixture
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh2),
            ("scope", "repo"),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{narrower}");
    assert_eq!(narrower["scope"], "repo");
    let refresh3 = narrower["refresh_token"].as_str().unwrap();
    let (status, wider) = fixture
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh3),
            ("scope", "repo delete_repo"),
        ])
        .await;
    assert_eq!(
        (status, &wider["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_scope"))
    );

    // The old refresh token comes back: refused, and the whole grant is revoked.
    let (status, reused) = fixture.refresh(refresh1).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reused["error"], "invalid_grant");
    assert_eq!(fixture.refresh(refresh3).await.1["error"], "invalid_grant");
    assert!(fixture.oauth.valid_access_tokens().is_empty());
    assert_eq!(fixture.repos(access2).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(fixture.oauth.refresh_requests(), 5);
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_overlap_and_one_loses() {
    let fixture = Fixture::start().await;
    let code = fixture.code().await;
    let (_, first) = fixture.exchange(&code).await;
    let refresh = first["refresh_token"].as_str().unwrap();
    fixture.oauth.set_token_delay(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let (a, b) = tokio::join!(fixture.refresh(refresh), fixture.refresh(refresh));
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Whichever is handled second presents a rotated token.
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::BAD_REQUEST]);
    assert_eq!(fixture.oauth.refresh_requests(), 2);
    // The loser's reuse revoked the winner's tokens too.
    assert!(fixture.oauth.valid_access_tokens().is_empty());
}

#[tokio::test]
async fn client_credentials_issues_an_access_token_only() {
    let fixture = Fixture::start().await;
    let (status, body) = fixture
        .token(&[("grant_type", "client_credentials"), ("scope", "repo")])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "repo");
    assert!(body.get("refresh_token").is_none());
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(fixture.repos(access).await.0, StatusCode::OK);
    assert_eq!(fixture.oauth.token_requests("client_credentials"), 1);

    let (status, body) = fixture.token(&[("grant_type", "password")]).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("unsupported_grant_type"))
    );
    let (status, body) = fixture.token(&[]).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_request"))
    );
}

#[tokio::test]
async fn the_client_authenticates_by_basic_or_in_the_body_as_a_form_or_json() {
    let fixture = Fixture::start().await;
    // A secret with characters that form-encoding changes.
    let (id, secret) = ("odd app", "s3cret:+/&=%");
    fixture
        .oauth
        .add_client(OAuthClient::new(id, secret).redirect_uri(REDIRECT));
    let encoded =
        |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let grant = [("grant_type", "client_credentials")];
    let post = || fixture.http.post(fixture.oauth.token_url());

    let attempts = [
        ("Basic, form-encoded first (RFC 6749)", post().header(AUTHORIZATION, basic(&encoded(id), &encoded(secret))).form(&grant)),
        ("Basic, raw", post().header(AUTHORIZATION, basic(id, secret)).form(&grant)),
        ("body, form", post().form(&[("grant_type", "client_credentials"), ("client_id", id), ("client_secret", secret)])),
        ("body, JSON", post().json(&json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret}))),
        ("Basic, JSON body", post().header(AUTHORIZATION, basic(id, secret)).json(&json!({"grant_type": "client_credentials"}))),
    ];
    for (what, request) in attempts {
        let (status, body) = read_json(request.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{what}: {body}");
        assert!(body["access_token"].is_string(), "{what}");
    }

    // Refusals: a wrong secret, none at all, or two methods at once.
    let wrong = post()
        .header(AUTHORIZATION, basic(id, "wrong"))
        .form(&grant)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().contains_key(WWW_AUTHENTICATE));
    assert_eq!(read_json(wrong).await.1["error"], "invalid_client");
    let (status, body) = read_json(post().form(&grant).send().await.unwrap()).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::UNAUTHORIZED, &json!("invalid_client"))
    );
    let (status, body) = read_json(
        post()
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT_ID),
                ("client_secret", "wrong"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::UNAUTHORIZED, &json!("invalid_client"))
    );
    let (status, body) = read_json(
        post()
            .header(AUTHORIZATION, basic(CLIENT_ID, SECRET))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_secret", SECRET),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_request"))
    );

    // A body that is not a form or a JSON object is a 400, not a crash.
    for (content_type, body) in [
        ("application/json", "{not json"),
        ("application/json", "[1, 2]"),
        ("text/plain", "grant_type=client_credentials"),
    ] {
        let (status, answer) = read_json(
            post()
                .basic_auth(CLIENT_ID, Some(SECRET))
                .header(CONTENT_TYPE, content_type)
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, &answer["error"]),
            (StatusCode::BAD_REQUEST, &json!("invalid_request")),
            "{body}"
        );
    }
    let (status, _) = read_json(
        post()
            .header(AUTHORIZATION, "Basic !!!not-base64")
            .form(&grant)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_knobs_fail_token_requests_the_ways_providers_do() {
    let fixture = Fixture::start().await;
    let code = fixture.code().await;
    let (_, first) = fixture.exchange(&code).await;
    let refresh = first["refresh_token"].as_str().unwrap().to_string();
    let send = || {
        fixture
            .http
            .post(fixture.oauth.token_url())
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.as_str()),
                ("client_id", CLIENT_ID),
                ("client_secret", SECRET),
            ])
            .send()
    };

    // An outage: the next two requests answer 500, then it is over.
    fixture.oauth.fail_next_token_requests(2);
    for _ in 0..2 {
        assert_eq!(
            send().await.unwrap().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
    assert!(
        fixture.oauth.refresh_token_active(&refresh),
        "a 500 changes nothing"
    );

    // A login wall: 200 with HTML.
    fixture.oauth.set_token_html(true);
    let html = send().await.unwrap();
    assert_eq!(html.status(), StatusCode::OK);
    assert!(
        html.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(html.text().await.unwrap().starts_with("<!doctype html>"));
    fixture.oauth.set_token_html(false);

    // A revoked grant: every refresh is invalid_grant, until turned off.
    fixture.oauth.set_refresh_invalid_grant(true);
    let (status, body) = read_json(send().await.unwrap()).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_grant"))
    );
    fixture.oauth.set_refresh_invalid_grant(false);

    let (status, body) = read_json(send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        fixture.oauth.refresh_requests(),
        5,
        "failed requests count too"
    );
    assert_eq!(fixture.oauth.token_requests("authorization_code"), 1);
}

#[tokio::test]
async fn an_expired_token_gets_githubs_401_and_a_refresh_fixes_it() {
    let fixture = Fixture::start().await;
    fixture.oauth.set_token_lifetime(2);
    let code = fixture.code().await;
    let (_, body) = fixture.exchange(&code).await;
    assert_eq!(body["expires_in"], 2);
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(fixture.repos(access).await.0, StatusCode::OK);

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, refused) = fixture.repos(access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused["message"], "Bad credentials");
    assert!(refused["documentation_url"].is_string());
    assert!(fixture.oauth.valid_access_tokens().is_empty());

    fixture.oauth.set_token_lifetime(3600);
    let (_, refreshed) = fixture
        .refresh(body["refresh_token"].as_str().unwrap())
        .await;
    let fresh = refreshed["access_token"].as_str().unwrap();
    assert_eq!(fixture.repos(fresh).await.0, StatusCode::OK);

    // Without a token at all GitHub says so differently.
    let anonymous = fixture
        .http
        .get(format!("{}/user/repos", fixture.github.url()))
        .send()
        .await
        .unwrap();
    let (status, body) = read_json(anonymous).await;
    assert_eq!(
        (status, &body["message"]),
        (StatusCode::UNAUTHORIZED, &json!("Requires authentication"))
    );
}

#[tokio::test]
async fn revoking_a_token_revokes_its_grant() {
    let fixture = Fixture::start().await;
    let code = fixture.code().await;
    let (_, body) = fixture.exchange(&code).await;
    let access = body["access_token"].as_str().unwrap();
    let refresh = body["refresh_token"].as_str().unwrap();
    let (_, other) = fixture.token(&[("grant_type", "client_credentials")]).await;
    let other = other["access_token"].as_str().unwrap();
    let revoke = |token: &str, auth: bool| {
        let request = fixture
            .http
            .post(fixture.oauth.revoke_url())
            .form(&[("token", token), ("token_type_hint", "access_token")]);
        let request = if auth {
            request.basic_auth(CLIENT_ID, Some(SECRET))
        } else {
            request
        };
        request.send()
    };

    assert_eq!(revoke(access, true).await.unwrap().status(), StatusCode::OK);
    assert_eq!(fixture.repos(access).await.0, StatusCode::UNAUTHORIZED);
    assert!(!fixture.oauth.refresh_token_active(refresh));
    assert_eq!(fixture.refresh(refresh).await.1["error"], "invalid_grant");
    // Another grant's token is untouched.
    assert_eq!(fixture.repos(other).await.0, StatusCode::OK);

    // Unknown tokens are fine (RFC 7009); an unauthenticated client is not.
    assert_eq!(
        revoke("unknown", true).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        revoke(other, false).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(fixture.repos(other).await.0, StatusCode::OK);
    assert_eq!(fixture.oauth.revoke_calls(), 3);

    // The user removes the app at the provider: nothing works any more.
    fixture.oauth.revoke_all();
    assert_eq!(fixture.repos(other).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn github_pages_the_repositories_a_token_sees() {
    let tokens = TokenRegistry::with_static("pat");
    let github = FakeGithub::start_with_registry(&tokens).await;
    for repo in ["acme/a", "acme/b", "acme/c"] {
        github.add_repo(repo);
    }
    let http = reqwest::Client::new();
    let page = |number: u32| {
        http.get(format!(
            "{}/user/repos?per_page=2&page={number}",
            github.url()
        ))
        .bearer_auth("pat")
        .send()
    };
    let first = page(1).await.unwrap();
    let link = first.headers()["link"].to_str().unwrap().to_string();
    assert_eq!(
        link,
        format!(
            "<{}/user/repos?per_page=2&page=2>; rel=\"next\"",
            github.url()
        )
    );
    let (_, repos) = read_json(first).await;
    assert_eq!(repos.as_array().unwrap().len(), 2);
    let second = page(2).await.unwrap();
    assert!(second.headers().get("link").is_none());
    let (_, repos) = read_json(second).await;
    assert_eq!(repos, json!([repos[0].clone()]));
    assert_eq!(repos[0]["full_name"], "acme/c");

    // A revoked static token is refused like any other.
    tokens.revoke("pat");
    assert_eq!(page(1).await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

/// Kills the binary when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_prints_where_the_fakes_listen_and_serves_them() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice-fakes"))
        .args([
            "--json",
            "--client-id",
            "cli-app",
            "--client-secret",
            "cli-secret",
            "--redirect-uri",
            REDIRECT,
            "--repo",
            "acme/gadgets",
            "--zendesk-token",
            "zd-token",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting sluice-fakes");
    let stdout = child.stdout.take().expect("piped stdout");
    let running = Running(child);
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .unwrap()
    .expect("a line of JSON");
    let printed: Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(printed["oauth"]["client_id"], "cli-app");
    assert_eq!(printed["oauth"]["client_secret"], "cli-secret");
    assert_eq!(printed["oauth"]["redirect_uris"], json!([REDIRECT]));
    let url = |path: &str| {
        printed
            .pointer(path)
            .and_then(Value::as_str)
            .expect(path)
            .to_string()
    };

    // The provider answers with the printed credentials, and GitHub takes its token.
    let http = reqwest::Client::new();
    let (status, token) = read_json(
        http.post(url("/oauth/token_url"))
            .basic_auth("cli-app", Some("cli-secret"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{token}");
    assert_eq!(token["instance_url"], url("/github/url"));
    let (status, repos) = read_json(
        http.get(format!("{}/user/repos", url("/github/url")))
            .bearer_auth(token["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(repos[0]["full_name"], "acme/gadgets");
    let consent = http
        .get(url("/oauth/authorize_url"))
        .query(&[
            ("response_type", "code"),
            ("client_id", "cli-app"),
            ("redirect_uri", REDIRECT),
            ("code_challenge", &pkce_challenge(VERIFIER)),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), StatusCode::OK);
    let tickets = http
        .get(format!("{}/api/v2/tickets", url("/zendesk/url")))
        .bearer_auth("zd-token")
        .send()
        .await
        .unwrap();
    assert_eq!(tickets.status(), StatusCode::OK);
    drop(running);
}
