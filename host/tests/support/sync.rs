//! The shared sync scenario (`sluice_fakes::scenario`) driven over HTTP against a real
//! `sluice serve`: deploy and remove through the API, deliveries to the instance's
//! webhook URLs, each followed until its execution has ended.

use std::sync::Mutex;

use serde_json::Value;
use sluice_fakes::WebhookEvent;
use sluice_fakes::scenario::SyncDriver;

use super::{Client, deliver, execution_id_of, webhook_url};

/// Polls an execution until it has ended, or failed once (with a retry pending, it is
/// queued again as attempt 2): the end state, or the failed one.
pub async fn ended_or_failed(client: &Client, id: &str) -> Value {
    for _ in 0..600 {
        let execution = client
            .get(&format!("/v1/executions/{id}"))
            .await
            .expect(200)
            .body;
        let status = execution["status"].as_str().unwrap_or("");
        let ended = !matches!(status, "queued" | "waiting" | "running");
        if ended || execution["attempt"].as_i64().unwrap_or(0) > 1 {
            return execution;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("execution {id} did not end");
}

/// Drives the deployed instance through HTTP only: the API to deploy and remove, the
/// webhook URLs as GitHub and Zendesk call them (asynchronously: the GitHub flow is a
/// FIFO queue, which cannot be synchronous), each delivery followed until its
/// execution has ended.
pub struct HttpDriver<'a> {
    pub client: &'a Client,
    pub deploy: Value,
    pub instance: Mutex<Option<Value>>,
}

impl HttpDriver<'_> {
    pub fn instance(&self) -> Value {
        self.instance.lock().unwrap().clone().expect("deployed")
    }

    pub async fn send(&self, flow: &str, event: WebhookEvent) -> Result<(), String> {
        let reply = deliver(
            &webhook_url(&self.instance(), flow),
            &event.headers,
            event.body,
        )
        .await;
        let Some(id) = execution_id_of(&reply).filter(|_| reply.status == 202) else {
            return Err(format!("not queued: {} {}", reply.status, reply.text));
        };
        let execution = ended_or_failed(self.client, &id).await;
        if execution["status"] != "succeeded" {
            return Err(format!("execution {id}: {execution}"));
        }
        Ok(())
    }
}

impl SyncDriver for HttpDriver<'_> {
    async fn deploy(&self) -> Result<(), String> {
        let reply = self.client.post("/v1/instances", &self.deploy).await;
        if reply.status != 201 || reply.body["status"] != "deployed" {
            return Err(format!("{}: {}", reply.status, reply.text));
        }
        *self.instance.lock().unwrap() = Some(reply.body);
        Ok(())
    }

    async fn github(&self, event: WebhookEvent) -> Result<(), String> {
        self.send("githubEvents", event).await
    }

    async fn zendesk(&self, event: WebhookEvent) -> Result<(), String> {
        self.send("zendeskEvents", event).await
    }

    async fn remove(&self) -> Result<(), String> {
        let id = self.instance()["id"].as_str().unwrap().to_string();
        let reply = self.client.delete(&format!("/v1/instances/{id}")).await;
        if reply.status != 200 {
            return Err(format!("{}: {}", reply.status, reply.text));
        }
        Ok(())
    }
}
