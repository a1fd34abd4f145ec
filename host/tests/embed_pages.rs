//! The embedded pages against a real `sluice serve`: chromium opening a vendor page that
//! frames them from another origin, and over plain HTTP every rejected token, customers,
//! tenants and sessions kept apart, the headers, and the two embedding APIs.

#[path = "support/browser.rs"]
mod browser;
#[path = "support/embed.rs"]
mod embed;
mod support;

use std::time::{Duration, Instant};

use base64::Engine as _;
use browser::Browser;
use embed::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::{Client, Server, deliver, execution_id_of, webhook_url};

/// The customer with `external_id`, if the tenant has one.
async fn customer_by_external_id(client: &Client, external_id: &str) -> Option<Value> {
    let reply = client
        .get(&format!("/v1/customers?externalId={external_id}"))
        .await
        .expect(200);
    reply.body["customers"].as_array()?.first().cloned()
}

/// Deploys `hello-relay` for `customer` and runs its webhook once; returns the instance.
async fn deploy_and_run(client: &Client, customer: &str, name: &str) -> Value {
    let instance = client
        .deploy_instance(customer, "hello-relay", json!({"name": name}))
        .await;
    let reply = deliver(
        &webhook_url(&instance, "greet"),
        &[("content-type".into(), "application/json".into())],
        b"{}".to_vec(),
    )
    .await;
    let execution = execution_id_of(&reply).unwrap_or_else(|| panic!("{}", reply.text));
    let finished = client.finished_execution(&execution).await;
    assert_eq!(finished["status"], "succeeded", "{finished}");
    instance
}

async fn get_page(server: &Server, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let answer = browserless()
        .get(format!("{}{path}", server.url))
        .send()
        .await
        .expect("GET");
    let status = answer.status().as_u16();
    let headers = answer.headers().clone();
    (status, headers, answer.text().await.unwrap_or_default())
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customers_user_sees_the_marketplace_and_their_integrations_in_the_vendors_iframe() {
    let server = Server::start();
    let (client, tenant) = server.tenant_with_id("Vendor");
    publish_hello(&client).await;
    register_key(&client, A_PUBLIC).await;
    let token = sign(&claims(&tenant, "acme-1", "user-7"), A_PRIVATE, None);
    let src = format!("{}/embed?jwt={token}", server.url);
    let vendor = VendorApp::start(src.clone()).await;
    allow_frames(&client, &[&vendor.origin]).await;

    let browser = Browser::start("embed_pages").await;
    browser.goto(&format!("{}/", vendor.origin)).await;
    browser.wait_for_text("h1", "Vendor app").await;
    browser.enter_iframe("iframe#sluice").await;
    browser.wait_for_text("h1", "Marketplace").await;
    let card = browser.wait_for_text(".card", "Hello relay").await;
    let text = card.text().await.expect("the card's text");
    assert!(text.contains("Tells who it runs for"), "{text}");
    assert!(text.contains("Version 1"), "{text}");
    browser.wait_for_text(".who", "Customer acme-1").await;
    browser.leave_iframe().await;
    browser.screenshot("1-marketplace").await;

    // The token created the customer; the tenant deploys an instance for it, which
    // runs once.
    let customer = customer_by_external_id(&client, "acme-1")
        .await
        .expect("the customer the token named");
    assert_eq!(customer["name"], "Customer acme-1");
    deploy_and_run(&client, customer["id"].as_str().unwrap(), "Acme greeter").await;

    browser.enter_iframe("iframe#sluice").await;
    browser
        .wait_for_text("nav a", "My integrations")
        .await
        .click()
        .await
        .expect("a click on My integrations");
    browser.wait_for_text("h1", "My integrations").await;
    let row = browser
        .wait_for_text("table.instances tr", "Acme greeter")
        .await;
    let text = row.text().await.expect("the row's text");
    assert!(
        text.contains("Hello relay") && text.contains("deployed"),
        "{text}"
    );
    browser.leave_iframe().await;
    browser.screenshot("2-my-integrations").await;

    browser.enter_iframe("iframe#sluice").await;
    browser
        .wait_for_text("table.instances a", "Acme greeter")
        .await
        .click()
        .await
        .expect("a click on the instance");
    browser.wait_for_text("h1", "Acme greeter").await;
    let row = browser
        .wait_for_text("table.executions tr", "succeeded")
        .await;
    let text = row.text().await.expect("the execution's row");
    assert!(text.contains("greet"), "{text}");
    browser.leave_iframe().await;
    browser.screenshot("3-instance").await;

    browser.enter_iframe("iframe#sluice").await;
    browser
        .wait_for_text("nav a", "Marketplace")
        .await
        .click()
        .await
        .expect("a click on Marketplace");
    let card = browser.wait_for_text(".card", "Acme greeter").await;
    let text = card.text().await.expect("the card's text");
    assert!(text.contains("deployed"), "{text}");
    browser.leave_iframe().await;
    browser.screenshot("4-marketplace-deployed").await;

    // The same iframe on an origin the tenant did not allow: the browser refuses to
    // show the page in it, and shows its own error document instead.
    let stranger = VendorApp::start(src).await;
    browser.goto(&format!("{}/", stranger.origin)).await;
    browser.wait_for_text("h1", "Vendor app").await;
    browser.enter_iframe("iframe#sluice").await;
    let deadline = Instant::now() + browser::WAIT;
    loop {
        let url = browser
            .client
            .execute("return document.URL", vec![])
            .await
            .ok()
            .and_then(|url| url.as_str().map(str::to_string))
            .unwrap_or_default();
        let text = browser.body_text().await;
        assert!(
            !text.contains("Marketplace"),
            "a page framed by an origin not in frameAncestors was shown: {text}"
        );
        if url.starts_with("chrome-error:") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the refused iframe never showed the browser's error document (at {url:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.leave_iframe().await;
    browser.screenshot("5-refused-origin").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_tokens_get_the_401_page_and_store_nothing() {
    let server = Server::start();
    let (client, tenant) = server.tenant_with_id("A");
    let (other, tenant_b) = server.tenant_with_id("B");
    let key_a = register_key(&client, A_PUBLIC).await;
    let key_b = register_key(&other, B_PUBLIC).await;
    let good = claims(&tenant, "acme-1", "user-1");
    let now = now_secs();
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = good.clone();
        change(&mut claims);
        claims
    };
    let forged = {
        let token = sign(&good, A_PRIVATE, None);
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(with(&|c| c["customer"] = json!("someone-else")).to_string());
        parts.join(".")
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            sign(
                &with(&|c| {
                    c["iat"] = json!(now - 900);
                    c["exp"] = json!(now - 300);
                }),
                A_PRIVATE,
                None,
            ),
            "expired",
        ),
        ("forged signature", forged, "signature"),
        (
            "other tenant's key",
            sign(&good, B_PRIVATE, None),
            "signature",
        ),
        (
            "other tenant's key, by its kid",
            sign(&good, B_PRIVATE, key_b["id"].as_str()),
            "no active signing key",
        ),
        (
            "A's key id, B's signature",
            sign(&good, B_PRIVATE, key_a["id"].as_str()),
            "signature",
        ),
        ("alg none", unsigned(&good), "only RS256"),
        (
            "HS256 with the public key",
            sign_hs256(&good, A_PUBLIC.as_bytes()),
            "only RS256",
        ),
        (
            "lifetime over an hour",
            sign(
                &with(&|c| c["exp"] = json!(now + 2 * 3600)),
                A_PRIVATE,
                None,
            ),
            "at most 3600",
        ),
        (
            "issued in the future",
            sign(
                &with(&|c| {
                    c["iat"] = json!(now + 600);
                    c["exp"] = json!(now + 900);
                }),
                A_PRIVATE,
                None,
            ),
            "future",
        ),
        (
            "unknown tenant",
            sign(
                &with(&|c| c["organization"] = json!("no-such-tenant")),
                A_PRIVATE,
                None,
            ),
            "names no tenant",
        ),
        ("malformed", "not-a-jwt".into(), "malformed"),
    ];
    let mut cases = cases;
    for claim in ["sub", "organization", "customer", "iat", "exp"] {
        let token = sign(
            &with(&|c| {
                c.as_object_mut().unwrap().remove(claim);
            }),
            A_PRIVATE,
            None,
        );
        cases.push(("missing claim", token, claim));
    }
    for (case, token, expected) in &cases {
        let answer = enter(&server.url, token).await;
        let status = answer.status().as_u16();
        let content_type = header(answer.headers(), "content-type").to_string();
        let body = answer.text().await.unwrap_or_default();
        assert_eq!(status, 401, "{case}: {body}");
        assert!(
            content_type.starts_with("text/html"),
            "{case}: {content_type}"
        );
        assert!(
            body.contains(expected),
            "{case}: expected {expected:?} in {body}"
        );
        assert!(body.contains("Error 401"), "{case}: {body}");
    }
    // Without the parameter at all.
    let (status, _, body) = get_page(&server, "/embed").await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("?jwt="), "{body}");

    // A deactivated key verifies nothing any more, with or without its kid.
    client
        .delete(&format!(
            "/v1/signing-keys/{}",
            key_a["id"].as_str().unwrap()
        ))
        .await
        .expect(200);
    for kid in [None, key_a["id"].as_str()] {
        let answer = enter(&server.url, &sign(&good, A_PRIVATE, kid)).await;
        assert_eq!(answer.status().as_u16(), 401);
        let body = answer.text().await.unwrap_or_default();
        assert!(body.contains("no active signing key"), "{body}");
    }
    // An unregistered key (registered nowhere for this tenant, with one active key).
    register_key(&client, B_PUBLIC).await;
    let answer = enter(&server.url, &sign(&good, A_PRIVATE, None)).await;
    assert_eq!(answer.status().as_u16(), 401);

    // Nothing was stored for any of them: no customer in either tenant.
    for tenant in [&client, &other] {
        let customers = tenant.get("/v1/customers").await.expect(200).body;
        assert_eq!(customers["customers"], json!([]), "{customers}");
    }
    let _ = tenant_b;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_valid_token_creates_the_customer_and_the_next_reuses_it() {
    let server = Server::start();
    let (client, tenant) = server.tenant_with_id("A");
    register_key(&client, A_PUBLIC).await;
    let first = open_session(
        &server.url,
        &sign(&claims(&tenant, "acme-1", "user-1"), A_PRIVATE, None),
    )
    .await;
    let customers = client.get("/v1/customers").await.expect(200).body;
    let list = customers["customers"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{customers}");
    assert_eq!(list[0]["externalId"], "acme-1");
    assert_eq!(list[0]["name"], "Customer acme-1");

    // Another user, another name: the same customer, named as before.
    let mut second_claims = claims(&tenant, "acme-1", "user-2");
    second_claims["customer_name"] = json!("Renamed Inc");
    let second = open_session(&server.url, &sign(&second_claims, A_PRIVATE, None)).await;
    assert_ne!(first, second, "each token opens its own session");
    let customers = client.get("/v1/customers").await.expect(200).body;
    assert_eq!(customers["customers"].as_array().unwrap().len(), 1);
    assert_eq!(customers["customers"][0]["name"], "Customer acme-1");

    // No customer_name: the external id names the new customer.
    let mut bare = claims(&tenant, "globex", "user-3");
    bare.as_object_mut().unwrap().remove("customer_name");
    open_session(&server.url, &sign(&bare, A_PRIVATE, None)).await;
    let globex = customer_by_external_id(&client, "globex").await.unwrap();
    assert_eq!(globex["name"], "globex");

    let (status, _, body) = get_page(&server, &format!("{first}/")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<h1>Marketplace</h1>"), "{body}");
    assert!(body.contains("Customer acme-1"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_sees_nothing_of_another_customers_instances() {
    let server = Server::start();
    let (client, tenant) = server.tenant_with_id("A");
    let (other, tenant_b) = server.tenant_with_id("B");
    publish_hello(&client).await;
    register_key(&client, A_PUBLIC).await;
    register_key(&other, B_PUBLIC).await;
    let x = open_session(
        &server.url,
        &sign(&claims(&tenant, "x", "ux"), A_PRIVATE, None),
    )
    .await;
    let y = open_session(
        &server.url,
        &sign(&claims(&tenant, "y", "uy"), A_PRIVATE, None),
    )
    .await;
    let b = open_session(
        &server.url,
        &sign(&claims(&tenant_b, "x", "ub"), B_PRIVATE, None),
    )
    .await;
    let y_customer = customer_by_external_id(&client, "y").await.unwrap();
    let instance = deploy_and_run(&client, y_customer["id"].as_str().unwrap(), "Y's relay").await;
    let id = instance["id"].as_str().unwrap();

    let (status, _, body) = get_page(&server, &format!("{y}/instances/{id}")).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("Y&#39;s relay") || body.contains("Y&#x27;s relay"),
        "{body}"
    );
    assert!(body.contains("succeeded"), "{body}");

    let (unknown_status, _, unknown) =
        get_page(&server, &format!("{x}/instances/no-such-id")).await;
    assert_eq!(unknown_status, 404, "{unknown}");
    for session in [&x, &b] {
        let (status, _, body) = get_page(&server, &format!("{session}/instances/{id}")).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(
            body, unknown,
            "another's instance reads exactly like an unknown one"
        );
        // Nor can its wizard be opened, connected, changed or removed.
        for page in ["configure", "connections/github/connect"] {
            let (status, _, body) =
                get_page(&server, &format!("{session}/instances/{id}/{page}")).await;
            assert_eq!(status, 404, "{page}: {body}");
        }
        for (page, form) in [
            ("configure", vec![("action", "deploy")]),
            ("lifecycle", vec![("action", "remove")]),
        ] {
            let reply = browserless()
                .post(format!("{}{session}/instances/{id}/{page}", server.url))
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(reply.status(), 404, "{page}");
        }
        let (status, _, list) = get_page(&server, &format!("{session}/instances")).await;
        assert_eq!(status, 200, "{list}");
        assert!(!list.contains(id) && !list.contains("relay</a>"), "{list}");
        let (_, _, market) = get_page(&server, &format!("{session}/")).await;
        assert!(!market.contains(id), "{market}");
    }
    // Y's instance is still there, as it was.
    client.get(&format!("/v1/instances/{id}")).await.expect(200);
    // Tenant B has no integrations at all: its marketplace is empty.
    let (_, _, market) = get_page(&server, &format!("{b}/")).await;
    assert!(
        market.contains("No integrations are available yet"),
        "{market}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_need_a_live_session() {
    let server = Server::start();
    let (client, tenant) = server.tenant_with_id("A");
    register_key(&client, A_PUBLIC).await;
    for path in [
        "/embed/s/nope/".to_string(),
        format!("/embed/s/{}/", "ab".repeat(32)),
        format!("/embed/s/{}/instances", "ab".repeat(32)),
    ] {
        let (status, headers, body) = get_page(&server, &path).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert!(body.contains("not known"), "{body}");
        assert!(header(&headers, "content-security-policy").ends_with("frame-ancestors 'none'"));
    }
    // A session ends at its token's `exp`.
    let mut short = claims(&tenant, "acme-1", "user-1");
    short["exp"] = json!(now_secs() + 2);
    let session = open_session(&server.url, &sign(&short, A_PRIVATE, None)).await;
    let (status, _, _) = get_page(&server, &format!("{session}/")).await;
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _, body) = get_page(&server, &format!("{session}/instances")).await;
        if status == 401 {
            assert!(body.contains("expired"), "{body}");
            break;
        }
        assert_eq!(status, 200, "{body}");
        assert!(Instant::now() < deadline, "the session never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embed_responses_carry_the_security_headers() {
    let server = Server::start();
    let (client, tenant) = server.tenant_with_id("A");
    register_key(&client, A_PUBLIC).await;
    let token = sign(&claims(&tenant, "acme-1", "user-1"), A_PRIVATE, None);
    let session = open_session(&server.url, &token).await;

    let (status, headers, body) = get_page(&server, &format!("{session}/")).await;
    assert_eq!(status, 200, "{body}");
    let csp = header(&headers, "content-security-policy");
    assert_eq!(
        csp,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    );
    assert_eq!(header(&headers, "referrer-policy"), "no-referrer");
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
    assert_eq!(header(&headers, "cache-control"), "no-store");
    assert!(header(&headers, "content-type").starts_with("text/html"));
    // No inline script or style: everything the CSP allows comes from /embed/assets.
    assert!(
        !body.contains("style=") && !body.contains("<style"),
        "{body}"
    );
    assert!(!body.contains("<script>"), "{body}");
    assert!(body.contains("<html lang=\"en\">") && body.contains("href=\"#main\""));

    allow_frames(
        &client,
        &["https://App.Vendor.com:443", "http://localhost:3000"],
    )
    .await;
    let (_, headers, _) = get_page(&server, &format!("{session}/instances")).await;
    assert!(
        header(&headers, "content-security-policy")
            .ends_with("; frame-ancestors https://app.vendor.com http://localhost:3000"),
        "{headers:?}"
    );
    // The tenant's origins frame its 404 and 401 pages too (the user sees them in the
    // iframe), and its entry redirect.
    let (status, headers, _) = get_page(&server, &format!("{session}/integrations/hello")).await;
    assert_eq!(status, 404);
    assert!(header(&headers, "content-security-policy").contains("https://app.vendor.com"));
    let mut expired = claims(&tenant, "acme-1", "user-1");
    expired["exp"] = json!(now_secs() - 3600);
    expired["iat"] = json!(now_secs() - 3700);
    let answer = enter(&server.url, &sign(&expired, A_PRIVATE, None)).await;
    assert_eq!(answer.status().as_u16(), 401);
    assert!(header(answer.headers(), "content-security-policy").contains("http://localhost:3000"));
    assert_eq!(header(answer.headers(), "referrer-policy"), "no-referrer");
    let answer = enter(&server.url, &token).await;
    assert_eq!(answer.status().as_u16(), 303);
    assert!(header(answer.headers(), "content-security-policy").contains("http://localhost:3000"));

    for (path, content_type) in [
        ("/embed/assets/htmx.min.js", "text/javascript"),
        ("/embed/assets/embed.css", "text/css"),
    ] {
        let (status, headers, body) = get_page(&server, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(header(&headers, "content-type").starts_with(content_type));
        assert_eq!(
            header(&headers, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        assert!(!body.is_empty());
    }
    let (status, headers, body) = get_page(&server, "/embed/nothing/here").await;
    assert_eq!(status, 404);
    assert!(
        header(&headers, "content-type").starts_with("text/html"),
        "{body}"
    );
    assert!(header(&headers, "content-security-policy").ends_with("frame-ancestors 'none'"));
}

/// sha256 hex of the DER inside a PEM.
fn fingerprint(pem: &str) -> String {
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM base64");
    hex::encode(Sha256::digest(der))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signing_keys_api_validates_and_keeps_tenants_apart() {
    let server = Server::start();
    let client = server.tenant("A");
    let other = server.tenant("B");
    for (pem, expected) in [
        ("hello", "not a PEM"),
        (A_PUBLIC_PKCS1, "PKCS#1"),
        (A_PRIVATE, "private key"),
        (EC_PUBLIC, "not an RSA key"),
        (SMALL_PUBLIC, "1024 bits"),
    ] {
        let reply = client
            .post("/v1/signing-keys", &json!({"publicKeyPem": pem}))
            .await
            .expect(400);
        let message = reply.body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(expected), "{expected}: {message}");
        assert!(!message.contains("MII"), "the key is not echoed: {message}");
    }
    client
        .post("/v1/signing-keys", &json!({"label": "no key"}))
        .await
        .expect(400);
    client
        .post(
            "/v1/signing-keys",
            &json!({"publicKeyPem": A_PUBLIC, "extra": 1}),
        )
        .await
        .expect(400);

    let key = client
        .post(
            "/v1/signing-keys",
            &json!({"publicKeyPem": A_PUBLIC, "label": " production "}),
        )
        .await
        .expect(201);
    assert_eq!(
        key.headers.get("location").and_then(|v| v.to_str().ok()),
        Some(format!("/v1/signing-keys/{}", key.body["id"].as_str().unwrap()).as_str())
    );
    let key = key.body;
    assert_eq!(key["label"], "production");
    assert_eq!(key["active"], true);
    assert_eq!(key["fingerprint"], fingerprint(A_PUBLIC));
    assert!(key["createdMs"].as_i64().unwrap() > 0);
    assert!(key.get("publicKeyPem").is_none(), "{key}");
    let id = key["id"].as_str().unwrap();
    // The same key twice: refused while it is active.
    client
        .post("/v1/signing-keys", &json!({"publicKeyPem": A_PUBLIC}))
        .await
        .expect(409);
    // Several keys per tenant.
    client
        .post("/v1/signing-keys", &json!({"publicKeyPem": B_PUBLIC}))
        .await
        .expect(201);
    let list = client.get("/v1/signing-keys").await.expect(200).body;
    assert_eq!(list["signingKeys"].as_array().unwrap().len(), 2, "{list}");

    // Tenant B sees none of them and cannot deactivate them.
    assert_eq!(
        other.get("/v1/signing-keys").await.expect(200).body,
        json!({"signingKeys": []})
    );
    other
        .delete(&format!("/v1/signing-keys/{id}"))
        .await
        .expect(404);
    // The same public key registered by B is B's own, apart from A's.
    other
        .post("/v1/signing-keys", &json!({"publicKeyPem": A_PUBLIC}))
        .await
        .expect(201);

    let deactivated = client
        .delete(&format!("/v1/signing-keys/{id}"))
        .await
        .expect(200)
        .body;
    assert_eq!(deactivated["active"], false);
    assert!(deactivated["deactivatedMs"].as_i64().is_some());
    let list = client.get("/v1/signing-keys").await.expect(200).body;
    let kept = list["signingKeys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["id"] == id)
        .expect("a deactivated key is kept");
    assert_eq!(kept["active"], false);
    client
        .delete("/v1/signing-keys/no-such-key")
        .await
        .expect(404);
    // Once deactivated, the key may be registered again (as a new key).
    client
        .post("/v1/signing-keys", &json!({"publicKeyPem": A_PUBLIC}))
        .await
        .expect(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embed_settings_api_validates_and_keeps_tenants_apart() {
    let server = Server::start();
    let client = server.tenant("A");
    let other = server.tenant("B");
    let defaults = json!({
        "frameAncestors": [], "oauthSuccessRedirect": null,
        "oauthFailureRedirect": null, "updatedMs": null,
    });
    assert_eq!(
        client.get("/v1/embed-settings").await.expect(200).body,
        defaults
    );

    let reply = client
        .put(
            "/v1/embed-settings",
            &json!({
                "frameAncestors": ["https://ok.com", "https://a.com/path", "https://*.a.com",
                                   "ftp://a.com", "https://user:pw@a.com", "*"],
                "oauthSuccessRedirect": "not a url",
            }),
        )
        .await
        .expect(400);
    let paths: Vec<&str> = reply.body["error"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|detail| detail["path"].as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "frameAncestors[1]",
            "frameAncestors[2]",
            "frameAncestors[3]",
            "frameAncestors[4]",
            "frameAncestors[5]",
            "oauthSuccessRedirect"
        ],
        "{}",
        reply.text
    );
    client
        .put("/v1/embed-settings", &json!({"frameAncestors": [], "x": 1}))
        .await
        .expect(400);
    client
        .put(
            "/v1/embed-settings",
            &json!({"oauthSuccessRedirect": "https://a.com"}),
        )
        .await
        .expect(400);
    let many: Vec<String> = (0..21).map(|n| format!("https://a{n}.com")).collect();
    client
        .put("/v1/embed-settings", &json!({"frameAncestors": many}))
        .await
        .expect(400);

    let stored = client
        .put(
            "/v1/embed-settings",
            &json!({
                "frameAncestors": ["https://App.Vendor.com:443", "http://localhost:8080",
                                   "https://app.vendor.com"],
                "oauthSuccessRedirect": "https://app.vendor.com/integrations?ok=1",
                "oauthFailureRedirect": "https://app.vendor.com/integrations?ok=0",
            }),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(
        stored["frameAncestors"],
        json!(["https://app.vendor.com", "http://localhost:8080"])
    );
    assert_eq!(
        stored["oauthSuccessRedirect"],
        "https://app.vendor.com/integrations?ok=1"
    );
    assert!(stored["updatedMs"].as_i64().is_some());
    assert_eq!(
        client.get("/v1/embed-settings").await.expect(200).body,
        stored
    );
    // B's settings are its own.
    assert_eq!(
        other.get("/v1/embed-settings").await.expect(200).body,
        defaults
    );
    // PUT replaces the whole: absent redirects are removed.
    let replaced = client
        .put("/v1/embed-settings", &json!({"frameAncestors": []}))
        .await
        .expect(200)
        .body;
    assert_eq!(replaced["frameAncestors"], json!([]));
    assert_eq!(replaced["oauthSuccessRedirect"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instances_executions_are_shown_newest_first_fifty_a_page() {
    let server = Server::start();
    let (client, tenant) = server.tenant_with_id("A");
    publish_hello(&client).await;
    register_key(&client, A_PUBLIC).await;
    let session = open_session(
        &server.url,
        &sign(&claims(&tenant, "x", "u"), A_PRIVATE, None),
    )
    .await;
    let customer = customer_by_external_id(&client, "x").await.unwrap();
    let instance = deploy_and_run(&client, customer["id"].as_str().unwrap(), "Busy").await;
    let url = webhook_url(&instance, "greet");
    for _ in 0..54 {
        let reply = deliver(
            &url,
            &[("content-type".into(), "application/json".into())],
            b"{}".to_vec(),
        )
        .await;
        assert_eq!(reply.status, 202, "{}", reply.text);
    }
    client.wait_until_idle(Duration::from_secs(60)).await;
    let page = format!("{session}/instances/{}", instance["id"].as_str().unwrap());
    let rows = |body: &str| body.matches("<td><span class=\"status").count();

    let (status, _, first) = get_page(&server, &page).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(rows(&first), 50, "{first}");
    assert!(!first.contains(">Newest</a>"));
    let older = first
        .split("rel=\"next\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link to older executions");
    let (status, _, second) = get_page(&server, &format!("{page}{older}")).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(rows(&second), 5, "{second}");
    assert!(second.contains(">Newest</a>") && !second.contains("rel=\"next\""));

    // Newest first, in the API's order (newest created first).
    let starts: Vec<&str> = first
        .split("<time datetime=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    let api = client
        .all_executions(&format!("instanceId={}", instance["id"].as_str().unwrap()))
        .await;
    let expected: Vec<&str> = api
        .iter()
        .take(50)
        .filter_map(|execution| execution["startedAt"].as_str())
        .collect();
    assert_eq!(starts, expected);

    let (status, _, body) = get_page(&server, &format!("{page}?before=garbage!")).await;
    assert_eq!(status, 400, "{body}");
}
