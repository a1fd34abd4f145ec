//! A real browser for tests: Debian's headless chromium under chromedriver (fantoccini,
//! loopback HTTP). Include it with `#[path = "support/browser.rs"] mod browser;` (not in
//! `support/mod.rs`, so other test binaries do not build it).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long the helpers wait for an element or a text by default.
pub const WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(100);

/// A headless chromium under chromedriver, with helpers to enter iframes, wait for an
/// element or a text (polling, never a fixed sleep) and save screenshots under
/// `target/test-artifacts/<test>/<step>.png`. Everything it starts dies with it:
/// chromedriver runs in a process group of its own, killed on drop (test failures
/// included), and so is any chromium left running with the browser's profile directory.
pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: tempfile::TempDir,
    artifacts: PathBuf,
}

/// Fails the test (never skips it) when chromium or chromedriver is missing.
fn require_binaries() {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|path| !Path::new(path).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "the browser tests need Debian's chromium and chromium-driver ({} missing): \
         run `sudo DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver` \
         (`.ci/run` does it on a clean machine)",
        missing.join(", ")
    );
}

/// A free loopback port (bound, then released for the child to bind).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// The workspace's target directory: `CARGO_TARGET_DIR` when set, else the one this
/// test executable was built into (`<target>/debug/deps/<test>`).
pub fn target_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the host crate is inside the workspace")
        .to_path_buf();
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return workspace.join(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| workspace.join("target"))
}

impl Browser {
    /// Starts chromedriver and a chromium session for the test named `test` (the
    /// directory its screenshots go to).
    pub async fn start(test: &str) -> Browser {
        require_binaries();
        let profile = tempfile::tempdir().expect("a profile directory");
        let port = free_port();
        let driver = {
            use std::os::unix::process::CommandExt as _;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group, so that drop kills chromium with it.
                .process_group(0)
                .spawn()
                .expect("chromedriver starts")
        };
        let artifacts = target_dir().join("test-artifacts").join(test);
        // From here on, a failure kills what was started: `Browser` owns it.
        let mut browser = Browser {
            client: connect(port, profile.path()).await,
            driver,
            profile,
            artifacts,
        };
        browser
            .client
            .set_window_size(1280, 900)
            .await
            .expect("the window is resized");
        std::fs::create_dir_all(&browser.artifacts).expect("the artifacts directory");
        browser.artifacts = browser
            .artifacts
            .canonicalize()
            .unwrap_or(browser.artifacts.clone());
        browser
    }

    /// Goes to `url` (top-level), waiting for it to load.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigation");
    }

    /// Saves a PNG of the viewport as `<artifacts>/<step>.png`; returns its path.
    pub async fn screenshot(&self, step: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let path = self.artifacts.join(format!("{step}.png"));
        std::fs::write(&path, png).expect("the screenshot is written");
        path
    }

    /// Waits for the iframe matching `css` and makes it the current browsing context.
    pub async fn enter_iframe(&self, css: &str) {
        let frame = self.wait_for(css).await;
        frame.enter_frame().await.expect("entering the iframe");
    }

    /// Back to the parent document (the top one from a first-level iframe).
    pub async fn leave_iframe(&self) {
        self.client
            .enter_parent_frame()
            .await
            .expect("back to the parent document");
    }

    /// Waits for an element matching `css`.
    pub async fn wait_for(&self, css: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                return element;
            }
            if Instant::now() > deadline {
                panic!(
                    "no element `{css}` after {WAIT:?}; the page says: {}",
                    self.body_text().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits for an element matching `css` whose text contains `text`.
    pub async fn wait_for_text(&self, css: &str, text: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(elements) = self.client.find_all(Locator::Css(css)).await {
                for element in elements {
                    if element.text().await.is_ok_and(|found| found.contains(text)) {
                        return element;
                    }
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "no `{css}` containing {text:?} after {WAIT:?}; the page says: {}",
                    self.body_text().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The current document's visible text (empty when it cannot be read).
    pub async fn body_text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Ends the WebDriver session (chromium exits); drop then stops chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

async fn connect(port: u16, profile: &Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let url = format!("http://127.0.0.1:{port}");
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    // chromedriver takes a moment to listen: retry the session until it does.
    let deadline = Instant::now() + WAIT;
    loop {
        match ClientBuilder::new(connector.clone())
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
        {
            Ok(client) => return client,
            Err(err) if Instant::now() > deadline => {
                panic!("no WebDriver session from chromedriver on port {port}: {err}")
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = rustix::process::Pid::from_child(&self.driver);
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = self.driver.wait();
        kill_profile_processes(self.profile.path());
    }
}

/// Kills any process still running with `profile` as its `--user-data-dir` (a
/// chromium that left chromedriver's process group): the processes of this browser
/// only, found by the profile directory no other browser uses.
fn kill_profile_processes(profile: &Path) {
    let marker = format!("--user-data-dir={}", profile.display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let ours = cmdline
            .split(|byte| *byte == 0)
            .any(|arg| arg == marker.as_bytes());
        if let (true, Some(pid)) = (ours, rustix::process::Pid::from_raw(pid)) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}
