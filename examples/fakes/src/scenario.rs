//! The GitHub-to-Zendesk sync scenario of seed 000, written once and run against every
//! implementation of the sync (the code-native flow and the declarative flow): each
//! implementation supplies a [`SyncDriver`] that delivers webhooks to it, and the
//! scenario asserts the effects on the fake services.

use std::future::Future;

use crate::{FakeGithub, FakeZendesk, WebhookEvent};

/// The repository the scenario syncs.
pub const REPO: &str = "acme/widgets";
/// The GitHub webhook secret (a config variable of the instance).
pub const GITHUB_SECRET: &str = "github-hook-secret";
/// Prefixes the integration puts on mirrored comments (the seed's loop guard).
pub const FROM_GITHUB: &str = "[Comment Created in GitHub]";
pub const FROM_ZENDESK: &str = "[Comment Created in Zendesk]";

/// Delivers events to one implementation of the sync. Each method returns once the
/// implementation has finished handling the delivery (or failed, as an error text).
pub trait SyncDriver {
    /// Runs what happens when the instance is deployed (webhook creation).
    fn deploy(&self) -> impl Future<Output = Result<(), String>>;
    /// Delivers a GitHub webhook.
    fn github(&self, event: WebhookEvent) -> impl Future<Output = Result<(), String>>;
    /// Delivers a Zendesk webhook.
    fn zendesk(&self, event: WebhookEvent) -> impl Future<Output = Result<(), String>>;
    /// Runs what happens when the instance is removed (webhook deletion).
    fn remove(&self) -> impl Future<Output = Result<(), String>>;
}

/// Plays the whole scenario and panics, naming the step, on the first wrong effect.
///
/// `github` must know [`REPO`] (see [`FakeGithub::add_repo`]); both fakes must be
/// fresh.
pub async fn run_sync_scenario<D: SyncDriver>(
    driver: &D,
    github: &FakeGithub,
    zendesk: &FakeZendesk,
) {
    // Deploy: one webhook in each service.
    driver
        .deploy()
        .await
        .unwrap_or_else(|err| panic!("deploy: {err}"));
    assert_eq!(
        github.hooks().len(),
        1,
        "deploy creates one GitHub webhook: {:?}",
        github.hooks()
    );
    assert_eq!(github.hooks()[0].repo, REPO);
    assert_eq!(
        zendesk.webhooks().len(),
        1,
        "deploy creates one Zendesk webhook: {:?}",
        zendesk.webhooks()
    );

    // A forged delivery is rejected and changes nothing.
    let forged = github.open_issue(REPO, 12, "Forged", "nope", "mallory", "wrong-secret");
    let _ = driver.github(forged).await;
    assert!(
        zendesk.tickets().is_empty(),
        "a forged webhook created a ticket"
    );

    // An issue opened before the integration was installed has no ticket: a comment on
    // it and its closing are skipped (not errors, which a retry policy would repeat),
    // and neither opens a ticket.
    let old_comment = github.comment_on_issue(REPO, 5, "Any news?", "octocat", GITHUB_SECRET);
    driver
        .github(old_comment)
        .await
        .unwrap_or_else(|err| panic!("comment on an issue without a ticket: {err}"));
    let old_closed = github.close_issue(REPO, 5, "octocat", GITHUB_SECRET);
    driver
        .github(old_closed)
        .await
        .unwrap_or_else(|err| panic!("closing an issue without a ticket: {err}"));
    assert!(
        zendesk.tickets().is_empty(),
        "an issue without a ticket got one: {:?}",
        zendesk.tickets()
    );

    // Issue opened on GitHub: a ticket with external id gh-13.
    let opened = github.open_issue(
        REPO,
        13,
        "Widget explodes",
        "It explodes when dropped.",
        "octocat",
        GITHUB_SECRET,
    );
    driver
        .github(opened)
        .await
        .unwrap_or_else(|err| panic!("issue opened: {err}"));
    let ticket = zendesk.ticket_by_external_id("gh-13").unwrap_or_else(|| {
        panic!(
            "issue opened: no ticket with external id gh-13 in {:?}",
            zendesk.tickets()
        )
    });
    assert_eq!(ticket.subject, "Widget explodes");
    assert_eq!(zendesk.tickets().len(), 1);

    // Comment on GitHub: mirrored to the ticket, with the GitHub prefix.
    let commented =
        github.comment_on_issue(REPO, 13, "Still exploding on v2.", "octocat", GITHUB_SECRET);
    driver
        .github(commented)
        .await
        .unwrap_or_else(|err| panic!("GitHub comment: {err}"));
    let comments = zendesk.comments(ticket.id);
    let mirrored = comments
        .iter()
        .find(|comment| comment.body.starts_with(FROM_GITHUB))
        .unwrap_or_else(|| panic!("GitHub comment: not mirrored to Zendesk: {comments:?}"));
    assert!(
        mirrored.body.contains("Still exploding on v2."),
        "{mirrored:?}"
    );

    // Zendesk echoes that comment back as an event: the loop guard drops it.
    let echo = zendesk
        .comment_event(mirrored)
        .expect("a Zendesk webhook exists");
    driver
        .zendesk(echo)
        .await
        .unwrap_or_else(|err| panic!("Zendesk echo: {err}"));
    assert_eq!(
        github.comments(REPO, 13).len(),
        1,
        "the echo of a mirrored comment went back to GitHub"
    );

    // An agent comments in Zendesk: mirrored to the issue, with the Zendesk prefix.
    let agent = zendesk
        .agent_comments(ticket.id, "We are on it.", "Sam Agent")
        .expect("a Zendesk webhook exists");
    driver
        .zendesk(agent)
        .await
        .unwrap_or_else(|err| panic!("Zendesk comment: {err}"));
    let issue_comments = github.comments(REPO, 13);
    let back = issue_comments
        .iter()
        .find(|comment| comment.body.starts_with(FROM_ZENDESK))
        .unwrap_or_else(|| panic!("Zendesk comment: not mirrored to GitHub: {issue_comments:?}"));
    assert!(back.body.contains("We are on it."), "{back:?}");

    // GitHub echoes that comment back: the loop guard drops it.
    let echo = github.redeliver_comment(back, GITHUB_SECRET);
    let before = zendesk.comments(ticket.id).len();
    driver
        .github(echo)
        .await
        .unwrap_or_else(|err| panic!("GitHub echo: {err}"));
    assert_eq!(
        zendesk.comments(ticket.id).len(),
        before,
        "the echo of a mirrored comment went back to Zendesk"
    );

    // Issue closed on GitHub: the ticket is closed.
    let closed = github.close_issue(REPO, 13, "octocat", GITHUB_SECRET);
    driver
        .github(closed)
        .await
        .unwrap_or_else(|err| panic!("issue closed: {err}"));
    let ticket = zendesk
        .ticket_by_external_id("gh-13")
        .expect("the ticket still exists");
    assert_eq!(ticket.status, "closed", "issue closed: ticket {ticket:?}");

    // Remove: both webhooks are gone.
    driver
        .remove()
        .await
        .unwrap_or_else(|err| panic!("remove: {err}"));
    assert!(
        github.hooks().is_empty(),
        "remove leaves GitHub webhooks: {:?}",
        github.hooks()
    );
    assert!(
        zendesk.webhooks().is_empty(),
        "remove leaves Zendesk webhooks: {:?}",
        zendesk.webhooks()
    );
}
