//! `github-zendesk-sync`: the code-native flow of seed 000. From the trigger results of a
//! GitHub or Zendesk delivery it decides what to mirror (the pure [`plan`]: loop guard,
//! `gh-<number>` external ids) and does it through the two components with `invoke`.

use sluice_sdk::prelude::*;

/// Prefix of comments the sync copies from GitHub to Zendesk (the seed's loop guard).
pub const FROM_GITHUB: &str = "[Comment Created in GitHub]";
/// Prefix of comments the sync copies from Zendesk to GitHub.
pub const FROM_ZENDESK: &str = "[Comment Created in Zendesk]";
/// Prefix of the description of a ticket the sync opens for an issue. Zendesk may
/// announce that first comment as `comment_added` too, so the loop guard knows it;
/// it differs from [`FROM_GITHUB`] so the ticket's description is not mistaken for a
/// mirrored issue comment.
pub const ISSUE_FROM_GITHUB: &str = "[Issue Created in GitHub]";
/// Config variable naming the synced repository (`owner/name`).
pub const REPOSITORY_CONFIG: &str = "githubRepository";
/// Branch names of the `github` component's `issueEvent` trigger...
pub const ISSUE_OPENED: &str = "Issue Opened";
pub const ISSUE_COMMENTED: &str = "Issue Commented";
pub const ISSUE_CLOSED: &str = "Issue Closed";
/// ...and of the `zendesk` component's `ticketEvent` trigger.
pub const COMMENT_ADDED: &str = "Comment Added";
const COMMENT_ADDED_EVENT: &str = "zen:event-type:ticket.comment_added";

/// The payload: the trigger's results object (the request as the trigger saw it, with
/// the payload it accepted as `body` and the branch it chose).
#[derive(Debug, Default, Deserialize)]
pub struct TriggerResults {
    /// Lower-case header names to values (an array of `[name, value]` pairs works too).
    #[serde(default)]
    pub headers: Value,
    /// The trigger's accepted JSON payload: the service's event.
    #[serde(default)]
    pub body: Value,
    /// The trigger's branch, when it chose one.
    #[serde(default)]
    pub branch: Option<String>,
}

impl TriggerResults {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        match &self.headers {
            Value::Object(map) => map
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .and_then(|(_, value)| value.as_str()),
            Value::Array(pairs) => {
                pairs
                    .iter()
                    .find_map(|pair| match pair.as_array()?.as_slice() {
                        [key, value] if key.as_str()?.eq_ignore_ascii_case(name) => value.as_str(),
                        _ => None,
                    })
            }
            _ => None,
        }
    }
}

/// What the flow does about one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Open a ticket for a new issue (unless one has this external id already).
    CreateTicket {
        external_id: String,
        subject: String,
        description: String,
    },
    /// Copy an issue comment to the issue's ticket.
    CommentOnTicket { external_id: String, body: String },
    /// Close the issue's ticket.
    CloseTicket { external_id: String },
    /// Copy a ticket comment to its issue.
    CommentOnIssue {
        repo: String,
        number: u64,
        body: String,
    },
    /// Nothing to do, and why.
    Skip {
        reason: &'static str,
        source: &'static str,
    },
}

/// The external id of the ticket of issue `number`: `gh-<number>`.
pub fn external_id(number: u64) -> String {
    format!("gh-{number}")
}

/// The issue number in an external id `gh-<number>`.
pub fn issue_number(external_id: &str) -> Option<u64> {
    external_id
        .strip_prefix("gh-")?
        .parse()
        .ok()
        .filter(|number| *number > 0)
}

/// Whether the sync wrote `text` itself (the loop guard).
pub fn is_mirrored(text: &str) -> bool {
    let text = text.trim_start();
    [FROM_GITHUB, FROM_ZENDESK, ISSUE_FROM_GITHUB]
        .iter()
        .any(|prefix| text.starts_with(prefix))
}

#[derive(Debug, Deserialize)]
struct IssueEvent {
    #[serde(default)]
    action: String,
    issue: Issue,
    #[serde(default)]
    comment: Option<IssueComment>,
    #[serde(default)]
    repository: Option<Repository>,
    #[serde(default)]
    sender: Option<User>,
}

#[derive(Debug, Deserialize)]
struct Issue {
    number: u64,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    user: Option<User>,
}

#[derive(Debug, Deserialize)]
struct IssueComment {
    #[serde(default)]
    body: String,
    #[serde(default)]
    user: Option<User>,
}

#[derive(Debug, Deserialize)]
struct User {
    login: String,
}

#[derive(Debug, Deserialize)]
struct Repository {
    full_name: String,
}

#[derive(Debug, Default, Deserialize)]
struct TicketEvent {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    detail: TicketDetail,
    #[serde(default)]
    event: TicketEventBody,
}

#[derive(Debug, Default, Deserialize)]
struct TicketDetail {
    #[serde(default)]
    external_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct TicketEventBody {
    #[serde(default)]
    comment: Option<TicketComment>,
}

#[derive(Debug, Deserialize)]
struct TicketComment {
    #[serde(default)]
    body: String,
    #[serde(default)]
    is_public: Option<bool>,
    #[serde(default)]
    author: Option<Author>,
}

#[derive(Debug, Deserialize)]
struct Author {
    #[serde(default)]
    name: Option<String>,
}

fn login(user: Option<&User>) -> &str {
    user.map_or("someone", |user| user.login.as_str())
}

/// Decides what to do about a delivery; pure, so unit tests check it natively.
/// `repo` is the `githubRepository` config variable.
pub fn plan(results: &TriggerResults, repo: Option<&str>) -> Result<Plan, Error> {
    if let Some(event) = results.header("x-github-event") {
        plan_github(results, event, repo)
    } else if results.header("x-zendesk-webhook-id").is_some() {
        plan_zendesk(results, repo)
    } else {
        Err(Error::invalid_input(
            "the payload is neither a GitHub delivery (x-github-event) nor a Zendesk one (x-zendesk-webhook-id)",
        ))
    }
}

fn plan_github(results: &TriggerResults, event: &str, repo: Option<&str>) -> Result<Plan, Error> {
    let skip = |reason| {
        Ok(Plan::Skip {
            reason,
            source: "github",
        })
    };
    let Ok(payload) = IssueEvent::deserialize(&results.body) else {
        return skip("not an issue event");
    };
    // Issue numbers only mean something within the configured repository.
    if let (Some(configured), Some(repository)) = (repo, &payload.repository)
        && !configured.eq_ignore_ascii_case(&repository.full_name)
    {
        return skip("another repository");
    }
    let branch = results
        .branch
        .as_deref()
        .unwrap_or(match (event, payload.action.as_str()) {
            ("issues", "opened") => ISSUE_OPENED,
            ("issue_comment", "created") => ISSUE_COMMENTED,
            ("issues", "closed") => ISSUE_CLOSED,
            _ => "Other",
        });
    let issue = &payload.issue;
    let external_id = external_id(issue.number);
    match branch {
        ISSUE_OPENED => {
            let subject = if issue.title.trim().is_empty() {
                format!("GitHub issue #{}", issue.number)
            } else {
                issue.title.clone()
            };
            let place = payload
                .repository
                .as_ref()
                .map_or(format!("#{}", issue.number), |r| {
                    format!("{}#{}", r.full_name, issue.number)
                });
            let text = issue
                .body
                .as_deref()
                .filter(|body| !body.trim().is_empty())
                .unwrap_or("(no description)");
            Ok(Plan::CreateTicket {
                external_id,
                subject,
                description: format!(
                    "{ISSUE_FROM_GITHUB} {} opened {place}:\n\n{text}",
                    login(issue.user.as_ref().or(payload.sender.as_ref()))
                ),
            })
        }
        ISSUE_COMMENTED => {
            let Some(comment) = &payload.comment else {
                return skip("no comment");
            };
            if is_mirrored(&comment.body) {
                return skip("loop guard");
            }
            Ok(Plan::CommentOnTicket {
                external_id,
                body: format!(
                    "{FROM_GITHUB} {}: {}",
                    login(comment.user.as_ref().or(payload.sender.as_ref())),
                    comment.body
                ),
            })
        }
        ISSUE_CLOSED => Ok(Plan::CloseTicket { external_id }),
        _ => skip("event not handled"),
    }
}

fn plan_zendesk(results: &TriggerResults, repo: Option<&str>) -> Result<Plan, Error> {
    let skip = |reason| {
        Ok(Plan::Skip {
            reason,
            source: "zendesk",
        })
    };
    let payload = TicketEvent::deserialize(&results.body).unwrap_or_default();
    let branch = results
        .branch
        .as_deref()
        .unwrap_or(if payload.kind == COMMENT_ADDED_EVENT {
            COMMENT_ADDED
        } else {
            "Other"
        });
    if branch != COMMENT_ADDED {
        return skip("event not handled");
    }
    let Some(comment) = &payload.event.comment else {
        return skip("no comment");
    };
    if is_mirrored(&comment.body) {
        return skip("loop guard");
    }
    // Internal notes stay in Zendesk: the issue may be public.
    if comment.is_public == Some(false) {
        return skip("private comment");
    }
    let Some(number) = payload.detail.external_id.as_deref().and_then(issue_number) else {
        return skip("ticket not linked to an issue");
    };
    let repo = repo.ok_or_else(|| {
        Error::invalid_input(format!(
            "config variable `{REPOSITORY_CONFIG}` is not set on this instance"
        ))
    })?;
    let author = comment
        .author
        .as_ref()
        .and_then(|author| author.name.as_deref())
        .unwrap_or("a Zendesk agent");
    Ok(Plan::CommentOnIssue {
        repo: repo.to_string(),
        number,
        body: format!("{FROM_ZENDESK} {author}: {}", comment.body),
    })
}

/// What the `zendesk` component says about a ticket, as far as the flow cares.
#[derive(Debug, Deserialize)]
struct Ticket {
    id: u64,
}

fn find_ticket(ctx: &mut FlowContext, external_id: &str) -> Result<Option<Ticket>, Error> {
    ctx.invoke_json(
        "zendesk",
        "findTicketByExternalId",
        &json!({ "externalId": external_id }),
    )
}

/// Carries out a plan; returns the execution's summary.
fn execute(ctx: &mut FlowContext, plan: Plan) -> Result<Value, Error> {
    match plan {
        Plan::Skip { reason, source } => Ok(json!({ "skipped": reason, "source": source })),
        Plan::CreateTicket {
            external_id,
            subject,
            description,
        } => {
            // Webhooks are delivered at least once: a redelivery must not open a second ticket.
            if let Some(ticket) = find_ticket(ctx, &external_id)? {
                return Ok(
                    json!({"skipped": "ticket exists", "source": "github", "ticketId": ticket.id, "externalId": external_id}),
                );
            }
            let ticket: Ticket = ctx.invoke_json(
                "zendesk",
                "createTicket",
                &json!({"subject": subject, "body": description, "externalId": external_id}),
            )?;
            Ok(
                json!({"action": "created-ticket", "ticketId": ticket.id, "externalId": external_id}),
            )
        }
        Plan::CommentOnTicket { external_id, body } => {
            let Some(ticket) = find_ticket(ctx, &external_id)? else {
                return Ok(
                    json!({"skipped": "no ticket", "source": "github", "externalId": external_id}),
                );
            };
            ctx.invoke(
                "zendesk",
                "addComment",
                &json!({"ticketId": ticket.id, "body": body, "public": true}),
            )?;
            Ok(
                json!({"action": "added-ticket-comment", "ticketId": ticket.id, "externalId": external_id}),
            )
        }
        Plan::CloseTicket { external_id } => {
            let Some(ticket) = find_ticket(ctx, &external_id)? else {
                return Ok(
                    json!({"skipped": "no ticket", "source": "github", "externalId": external_id}),
                );
            };
            ctx.invoke("zendesk", "closeTicket", &json!({ "ticketId": ticket.id }))?;
            Ok(json!({"action": "closed-ticket", "ticketId": ticket.id, "externalId": external_id}))
        }
        Plan::CommentOnIssue { repo, number, body } => {
            let comment: Value = ctx.invoke_json(
                "github",
                "createComment",
                &json!({"repo": repo, "number": number, "body": body}),
            )?;
            Ok(
                json!({"action": "created-issue-comment", "repo": repo, "issue": number, "commentId": comment["id"]}),
            )
        }
    }
}

fn sync(ctx: &mut FlowContext, results: TriggerResults) -> Result<Value, Error> {
    let repo = ctx.config_str(REPOSITORY_CONFIG)?;
    let plan = plan(&results, repo.as_deref())?;
    let summary = execute(ctx, plan)?;
    let decision = summary
        .get("action")
        .or_else(|| summary.get("skipped"))
        .and_then(Value::as_str)
        .unwrap_or("done");
    info!(fields = summary, "sync: {decision}");
    Ok(summary)
}

/// The declaration: the flow's one registration point.
pub fn flow() -> Flow {
    Flow::new("github-zendesk-sync")
        .description("Mirrors GitHub issues (opened, commented, closed) to Zendesk tickets, and Zendesk ticket comments back to the issues.")
        .trigger(FlowTrigger::webhook())
        .on_execution(sync)
}

sluice_sdk::export_flow!(flow);

#[cfg(test)]
mod tests {
    use super::*;

    const REPO: &str = "acme/widgets";

    fn github(event: &str, body: Value, branch: Option<&str>) -> TriggerResults {
        TriggerResults {
            headers: json!({"x-github-event": event, "content-type": "application/json"}),
            body,
            branch: branch.map(str::to_string),
        }
    }

    fn zendesk(body: Value) -> TriggerResults {
        TriggerResults {
            headers: json!([
                ["x-zendesk-webhook-id", "01W"],
                ["content-type", "application/json"]
            ]),
            body,
            branch: Some(COMMENT_ADDED.into()),
        }
    }

    fn issue(action: &str) -> Value {
        json!({
            "action": action,
            "issue": {"number": 13, "title": "Widget explodes", "body": "When dropped.", "user": {"login": "octocat"}},
            "repository": {"full_name": REPO},
            "sender": {"login": "octocat"},
        })
    }

    fn commented(body: &str) -> Value {
        let mut event = issue("created");
        event["comment"] = json!({"id": 1, "body": body, "user": {"login": "hubot"}});
        event
    }

    fn ticket_comment(body: &str, public: bool, external_id: Value) -> Value {
        json!({
            "type": COMMENT_ADDED_EVENT,
            "detail": {"id": "101", "external_id": external_id},
            "event": {"comment": {"body": body, "is_public": public, "author": {"name": "Sam Agent"}}},
        })
    }

    #[test]
    fn declaration_is_valid() {
        assert_eq!(flow().validate(), Ok(()));
        assert_eq!(flow().manifest()["trigger"], json!({"type": "webhook"}));
    }

    #[test]
    fn github_events() {
        assert_eq!(
            plan(
                &github("issues", issue("opened"), Some(ISSUE_OPENED)),
                Some(REPO)
            )
            .unwrap(),
            Plan::CreateTicket {
                external_id: "gh-13".into(),
                subject: "Widget explodes".into(),
                description:
                    "[Issue Created in GitHub] octocat opened acme/widgets#13:\n\nWhen dropped."
                        .into(),
            }
        );
        // Without a branch (a results object from elsewhere), the flow classifies itself.
        assert!(matches!(
            plan(&github("issues", issue("closed"), None), Some(REPO)).unwrap(),
            Plan::CloseTicket { external_id } if external_id == "gh-13"
        ));
        assert_eq!(
            plan(
                &github("issue_comment", commented("Me too"), Some(ISSUE_COMMENTED)),
                Some(REPO)
            )
            .unwrap(),
            Plan::CommentOnTicket {
                external_id: "gh-13".into(),
                body: "[Comment Created in GitHub] hubot: Me too".into(),
            }
        );
        for echo in [
            "[Comment Created in Zendesk] Sam: hi",
            "  [Comment Created in GitHub] x: y",
            "[Issue Created in GitHub] z",
        ] {
            assert_eq!(
                plan(
                    &github("issue_comment", commented(echo), Some(ISSUE_COMMENTED)),
                    Some(REPO)
                )
                .unwrap(),
                Plan::Skip {
                    reason: "loop guard",
                    source: "github"
                },
                "{echo}"
            );
        }
        let skipped = |results: TriggerResults, repo| match plan(&results, repo).unwrap() {
            Plan::Skip { reason, .. } => reason,
            other => panic!("expected a skip, got {other:?}"),
        };
        assert_eq!(
            skipped(
                github("issues", issue("reopened"), Some("Other")),
                Some(REPO)
            ),
            "event not handled"
        );
        assert_eq!(
            skipped(github("issues", issue("opened"), None), Some("acme/other")),
            "another repository"
        );
        assert_eq!(
            skipped(
                github("push", json!({"ref": "main"}), Some("Other")),
                Some(REPO)
            ),
            "not an issue event"
        );
        // No configured repository: GitHub events still work (the hook names it).
        assert!(matches!(
            plan(&github("issues", issue("opened"), None), None).unwrap(),
            Plan::CreateTicket { .. }
        ));
    }

    #[test]
    fn zendesk_events() {
        assert_eq!(
            plan(
                &zendesk(ticket_comment("We are on it.", true, json!("gh-13"))),
                Some(REPO)
            )
            .unwrap(),
            Plan::CommentOnIssue {
                repo: REPO.into(),
                number: 13,
                body: "[Comment Created in Zendesk] Sam Agent: We are on it.".into(),
            }
        );
        let skipped = |body: Value| match plan(&zendesk(body), Some(REPO)).unwrap() {
            Plan::Skip { reason, source } => {
                assert_eq!(source, "zendesk");
                reason
            }
            other => panic!("expected a skip, got {other:?}"),
        };
        assert_eq!(
            skipped(ticket_comment(
                "[Comment Created in GitHub] x: y",
                true,
                json!("gh-13")
            )),
            "loop guard"
        );
        assert_eq!(
            skipped(ticket_comment(
                "[Issue Created in GitHub] x",
                true,
                json!("gh-13")
            )),
            "loop guard"
        );
        assert_eq!(
            skipped(ticket_comment("Internal", false, json!("gh-13"))),
            "private comment"
        );
        assert_eq!(
            skipped(ticket_comment("Hi", true, Value::Null)),
            "ticket not linked to an issue"
        );
        assert_eq!(
            skipped(ticket_comment("Hi", true, json!("jira-13"))),
            "ticket not linked to an issue"
        );
        let mut status = zendesk(json!({"type": "zen:event-type:ticket.status_changed"}));
        status.branch = Some("Other".into());
        assert!(matches!(
            plan(&status, Some(REPO)).unwrap(),
            Plan::Skip {
                reason: "event not handled",
                ..
            }
        ));
        let error = plan(&zendesk(ticket_comment("Hi", true, json!("gh-1"))), None).unwrap_err();
        assert_eq!(error.kind(), "invalid-input");
    }

    #[test]
    fn unknown_sources_are_invalid_input() {
        let results = TriggerResults {
            headers: json!({"content-type": "application/json"}),
            ..TriggerResults::default()
        };
        assert_eq!(
            plan(&results, Some(REPO)).unwrap_err().kind(),
            "invalid-input"
        );
    }

    #[test]
    fn external_ids() {
        assert_eq!(external_id(13), "gh-13");
        assert_eq!(issue_number("gh-13"), Some(13));
        for bad in ["gh-", "gh-0", "gh--1", "gh-1x", "13", "GH-13"] {
            assert_eq!(issue_number(bad), None, "{bad}");
        }
    }
}
