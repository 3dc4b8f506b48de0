//! A headless Chromium driven through the DevTools protocol over a pipe
//! (`--remote-debugging-pipe`: commands on its fd 3, answers on its fd 4, each a JSON object
//! ended by a NUL byte). A few dozen lines of std instead of a CDP crate: nothing to download
//! at build time, no websocket, no port to pick, and the browser dies with the test.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::DEADLINE;

/// How long a wait for the page's state lasts before the test fails: long enough for a loaded
/// machine, short enough that a failure says why within the suite's time.
const PAGE_DEADLINE: Duration = Duration::from_secs(120);

/// The page's size in CSS pixels.
pub const WIDTH: u32 = 1400;
pub const HEIGHT: u32 = 1000;

/// A running headless Chromium with one page attached.
pub struct Browser {
    child: Child,
    commands: File,
    answers: Receiver<Value>,
    /// Events that came while waiting for an answer (exceptions, requests).
    events: VecDeque<Value>,
    next_id: u64,
    session: String,
    _profile: tempfile::TempDir,
}

/// The Chromium binary: `SWEEP_CHROMIUM`, else the first of the usual names on the PATH.
pub fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SWEEP_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let names = ["chromium", "chromium-browser", "google-chrome", "chrome"];
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// Two pipes' ends: `(read, write)`, both close-on-exec.
fn pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    (fds[0], fds[1])
}

impl Browser {
    /// Starts Chromium ([`chromium`] found it: the page tests' `main` asks before any test
    /// runs).
    pub fn launch() -> Browser {
        let binary = chromium().expect("the page tests run only where chromium() finds one");
        let profile = tempfile::tempdir().unwrap();
        let (their_commands, our_commands) = pipe();
        let (our_answers, their_answers) = pipe();
        let mut command = Command::new(&binary);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--remote-debugging-pipe",
                &format!("--window-size={WIDTH},{HEIGHT}"),
                &format!("--user-data-dir={}", profile.path().display()),
                "about:blank",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: between fork and exec only async-signal-safe calls (fcntl, dup2) on
        // descriptors this process owns. They are first moved above 10 so that placing one
        // at 3 cannot overwrite the other.
        unsafe {
            command.pre_exec(move || {
                let high_in = libc::fcntl(their_commands, libc::F_DUPFD_CLOEXEC, 10);
                let high_out = libc::fcntl(their_answers, libc::F_DUPFD_CLOEXEC, 10);
                if high_in < 0
                    || high_out < 0
                    || libc::dup2(high_in, 3) < 0
                    || libc::dup2(high_out, 4) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        };
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        // SAFETY: each descriptor came from pipe2 above and is closed exactly once, here.
        let (commands, answers_file) = unsafe {
            libc::close(their_commands);
            libc::close(their_answers);
            (
                File::from_raw_fd(our_commands),
                File::from_raw_fd(our_answers),
            )
        };
        let (tx, answers) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(answers_file);
            loop {
                let mut message = Vec::new();
                match reader.read_until(0, &mut message) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                message.pop();
                let Ok(value) = serde_json::from_slice::<Value>(&message) else {
                    continue;
                };
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        let mut browser = Browser {
            child,
            commands,
            answers,
            events: VecDeque::new(),
            next_id: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = browser.call("Target.createTarget", json!({ "url": "about:blank" }));
        let target = target["targetId"]
            .as_str()
            .expect("a target id")
            .to_string();
        let attached = browser.call(
            "Target.attachToTarget",
            json!({ "targetId": target, "flatten": true }),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        browser.page("Page.enable", json!({}));
        browser.page("Runtime.enable", json!({}));
        browser.page("Network.enable", json!({}));
        browser.page(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": false }),
        );
        browser
    }

    fn send(&mut self, method: &str, params: Value, session: bool) -> Value {
        self.try_send(method, params, session)
            .unwrap_or_else(|error| panic!("{method}: {error}"))
    }

    /// Sends a command; its result, or the error chromium answered (a page between two
    /// documents has no context to evaluate in, say).
    fn try_send(&mut self, method: &str, params: Value, session: bool) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if session {
            message["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.commands
            .write_all(&bytes)
            .unwrap_or_else(|e| panic!("{method}: chromium is gone: {e}"));
        let started = Instant::now();
        loop {
            let left = DEADLINE.saturating_sub(started.elapsed());
            let answer = match self.answers.recv_timeout(left) {
                Ok(answer) => answer,
                Err(RecvTimeoutError::Timeout) => panic!("{method}: no answer from chromium"),
                Err(RecvTimeoutError::Disconnected) => panic!("{method}: chromium exited"),
            };
            if answer["id"] == json!(id) {
                if let Some(error) = answer.get("error") {
                    return Err(error.clone());
                }
                return Ok(answer["result"].clone());
            }
            if answer.get("method").is_some() {
                self.events.push_back(answer);
            }
        }
    }

    /// A command to the browser.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, false)
    }

    /// A command to the page.
    pub fn page(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, true)
    }

    /// Runs `script` before any of each new document's own scripts.
    pub fn before_each_document(&mut self, script: &str) {
        self.page(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": script }),
        );
    }

    /// Opens `url` and waits until its document has loaded and `ready` (an expression) is
    /// true.
    pub fn open(&mut self, url: &str, ready: &str) {
        self.page("Page.navigate", json!({ "url": url }));
        let check = format!(
            "document.readyState === 'complete' && location.href !== 'about:blank' && !!({ready})"
        );
        self.wait_for(&check);
    }

    /// The value of a JavaScript expression in the page (awaited if it is a promise).
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.page(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(details) = result.get("exceptionDetails") {
            panic!("{expression}: {details}");
        }
        result["result"]["value"].clone()
    }

    /// Waits until `expression` is true in the page, or panics after the deadline.
    pub fn wait_for(&mut self, expression: &str) {
        let started = Instant::now();
        loop {
            let ok = self.try_send(
                "Runtime.evaluate",
                json!({ "expression": format!("!!({expression})"), "returnByValue": true }),
                true,
            );
            if ok.is_ok_and(|ok| ok["result"]["value"] == json!(true)) {
                return;
            }
            if started.elapsed() > PAGE_DEADLINE {
                let seen = self.try_send(
                    "Runtime.evaluate",
                    json!({ "expression": "document.body.innerText.slice(0, 400)", "returnByValue": true }),
                    true,
                );
                panic!("timed out waiting for `{expression}` in the page, which shows: {seen:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Moves the mouse to `(x, y)` (CSS pixels of the viewport), as a person would.
    pub fn hover(&mut self, x: f64, y: f64) {
        self.page(
            "Input.dispatchMouseEvent",
            json!({ "type": "mouseMoved", "x": x, "y": y }),
        );
    }

    /// Clicks at `(x, y)` with the left button.
    pub fn click(&mut self, x: f64, y: f64) {
        self.hover(x, y);
        for kind in ["mousePressed", "mouseReleased"] {
            self.page(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            );
        }
    }

    /// Scrolls the element `selector` into view and clicks its centre.
    pub fn click_on(&mut self, selector: &str) {
        let (x, y) = self.centre_of(selector);
        self.click(x, y);
    }

    /// Scrolls the element `selector` into view; the viewport coordinates of its centre.
    pub fn centre_of(&mut self, selector: &str) -> (f64, f64) {
        let selector = serde_json::to_string(selector).unwrap();
        let at = self.eval(&format!(
            "(() => {{ const e = document.querySelector({selector});
                e.scrollIntoView({{ block: 'center', inline: 'center' }});
                const r = e.getBoundingClientRect();
                return [r.left + r.width / 2, r.top + r.height / 2]; }})()"
        ));
        (at[0].as_f64().unwrap(), at[1].as_f64().unwrap())
    }

    /// A PNG of the whole page (not only the viewport) at `path`.
    pub fn screenshot(&mut self, path: &Path) {
        let size = self
            .eval("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]");
        let shot = self.page(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": { "x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1 },
            }),
        );
        let data = shot["data"].as_str().expect("screenshot data");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, base64_decode(data)).unwrap();
    }

    /// A PNG of the element `selector` alone at `scale` times its size, at `path`: a close
    /// look at one plot.
    pub fn screenshot_of(&mut self, selector: &str, scale: f64, path: &Path) {
        let selector = serde_json::to_string(selector).unwrap();
        let r = self.eval(&format!(
            "(() => {{ const r = document.querySelector({selector}).getBoundingClientRect();
                return [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]; }})()"
        ));
        let shot = self.page(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": { "x": r[0], "y": r[1], "width": r[2], "height": r[3], "scale": scale },
            }),
        );
        let data = shot["data"].as_str().expect("screenshot data");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, base64_decode(data)).unwrap();
    }

    /// The events of `method` so far (an evaluation first flushes those that came before).
    fn events_of(&mut self, method: &str) -> Vec<Value> {
        self.eval("1");
        self.events
            .iter()
            .filter(|e| e["method"] == method)
            .cloned()
            .collect()
    }

    /// The exceptions the page threw (uncaught), as DevTools reports them.
    pub fn exceptions(&mut self) -> Vec<Value> {
        self.events_of("Runtime.exceptionThrown")
    }

    /// The URL of every request the page made.
    pub fn requests(&mut self) -> Vec<String> {
        self.events_of("Network.requestWillBeSent")
            .iter()
            .filter_map(|e| e["params"]["request"]["url"].as_str().map(str::to_string))
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard base64 (what DevTools sends screenshots in).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {}", c as char),
    };
    let bytes: Vec<u8> = text.bytes().filter(|&c| c != b'=').map(value).collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (18 - 6 * i));
        out.extend(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// The screenshots' decoder, checked by the page tests' harness (it needs no Chromium).
pub fn base64_decodes_with_and_without_padding() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGk="), b"hi");
    assert_eq!(base64_decode("YWJj"), b"abc");
}
