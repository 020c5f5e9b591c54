//! Lambda Runtime API double (version 2018-06-01) and a runner for the built bootstrap binary.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path as FsPath, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};

use super::server::BackgroundServer;

pub const FUNCTION_NAME: &str = "review-relay";
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:review-relay";

/// How long [`RuntimeApi::invoke`] waits beyond the invocation's own timeout.
pub const INVOKE_GRACE: Duration = Duration::from_secs(10);

/// What the function answered.
#[derive(Clone, Debug, PartialEq)]
pub enum Invocation {
    /// Body posted to `/response` (JSON, or a JSON string if it was not JSON).
    Ok(Value),
    /// Body posted to `/error` (`{errorType, errorMessage, ...}`), or the init error if the
    /// runtime reported one while the invocation was pending (as Lambda would answer).
    Err(Value),
}

struct Event {
    id: String,
    body: Value,
    deadline_ms: i64,
}

struct Shared {
    events: mpsc::UnboundedSender<Event>,
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Event>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Invocation>>>,
    init_error: watch::Sender<Option<Value>>,
    next_calls: AtomicU64,
    first_next_at: OnceLock<Instant>,
    /// Asynchronous invocations through the Invoke API: (event, what the function answered).
    async_answers: Mutex<Vec<(Value, Invocation)>>,
    /// Invoke API calls refused, with why.
    invokes_refused: Mutex<Vec<String>>,
}

/// A running Runtime API double; dropping it stops the server.
pub struct RuntimeApi {
    shared: Arc<Shared>,
    server: BackgroundServer,
}

impl RuntimeApi {
    pub fn start() -> RuntimeApi {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            events: tx,
            queue: tokio::sync::Mutex::new(rx),
            pending: Mutex::new(HashMap::new()),
            init_error: watch::Sender::new(None),
            next_calls: AtomicU64::new(0),
            first_next_at: OnceLock::new(),
            async_answers: Mutex::new(Vec::new()),
            invokes_refused: Mutex::new(Vec::new()),
        });
        let state = Arc::clone(&shared);
        let server = BackgroundServer::spawn("runtime-api", |_| {
            Router::new()
                .route("/2018-06-01/runtime/invocation/next", get(next))
                .route(
                    "/2018-06-01/runtime/invocation/{id}/response",
                    post(response),
                )
                .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
                .route("/2018-06-01/runtime/init/error", post(init_error))
                .route("/2015-03-31/functions/{name}/invocations", post(invoke_api))
                .with_state(state)
        });
        RuntimeApi { shared, server }
    }

    /// `127.0.0.1:<port>`, the value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.server.addr().to_string()
    }

    /// Queues `event` with a deadline of now + `timeout` and waits for the function's answer.
    /// Panics if none arrives within `timeout` + [`INVOKE_GRACE`].
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Invocation {
        let deadline_ms = now_ms() + i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX / 2);
        self.invoke_with_deadline_header(event, deadline_ms, timeout + INVOKE_GRACE)
            .await
    }

    /// Queues `event` with `deadline_ms` as its `Lambda-Runtime-Deadline-Ms`, whatever it means
    /// (local emulators have sent a duration, 0, or the moment of the invoke), and waits up to
    /// `wait` for the function's answer.
    pub async fn invoke_with_deadline_header(
        &self,
        event: Value,
        deadline_ms: i64,
        wait: Duration,
    ) -> Invocation {
        let id = request_id();
        let (tx, rx) = oneshot::channel();
        self.shared.pending.lock().unwrap().insert(id.clone(), tx);
        self.shared
            .events
            .send(Event {
                id: id.clone(),
                body: event,
                deadline_ms,
            })
            .expect("runtime API queue is open while the double lives");

        let mut init_error = self.shared.init_error.subscribe();
        tokio::select! {
            answer = rx => answer.expect("pending invocations are only dropped after answering"),
            Ok(init) = init_error.wait_for(Option::is_some) => {
                self.shared.pending.lock().unwrap().remove(&id);
                Invocation::Err(init.clone().unwrap_or(Value::Null))
            }
            _ = tokio::time::sleep(wait) => {
                self.shared.pending.lock().unwrap().remove(&id);
                panic!(
                    "runtime API: invocation {id} got no response or error within {wait:?} \
                     (the function polled /next {} times)",
                    self.next_calls()
                );
            }
        }
    }

    /// The value for `AWS_ENDPOINT_URL_LAMBDA`: this double also plays Lambda's Invoke API,
    /// queueing an asynchronous invocation (`X-Amz-Invocation-Type: Event`) signed with SigV4 as
    /// Lambda checks it (moto would need Docker to run the function).
    pub fn invoke_endpoint(&self) -> String {
        self.server.base_url()
    }

    /// Asynchronous invocations answered so far: (event, answer).
    pub fn async_answers(&self) -> Vec<(Value, Invocation)> {
        self.shared.async_answers.lock().unwrap().clone()
    }

    pub fn invokes_refused(&self) -> Vec<String> {
        self.shared.invokes_refused.lock().unwrap().clone()
    }

    /// Waits until `n` asynchronous invocations have been answered; panics after `timeout`.
    pub async fn wait_async(&self, n: usize, timeout: Duration) -> Vec<(Value, Invocation)> {
        let until = Instant::now() + timeout;
        loop {
            let answers = self.async_answers();
            if answers.len() >= n {
                return answers;
            }
            assert!(
                Instant::now() < until,
                "runtime API: {} asynchronous invocations answered within {timeout:?}, not {n} (refused: {:?})",
                answers.len(),
                self.invokes_refused()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The body posted to `/runtime/init/error`, if any.
    pub fn init_error(&self) -> Option<Value> {
        self.shared.init_error.borrow().clone()
    }

    /// Waits for an init error; panics if none is reported within `timeout`.
    pub async fn wait_init_error(&self, timeout: Duration) -> Value {
        let mut rx = self.shared.init_error.subscribe();
        match tokio::time::timeout(timeout, rx.wait_for(Option::is_some)).await {
            Ok(Ok(value)) => value.clone().unwrap_or(Value::Null),
            _ => panic!("runtime API: no init error reported within {timeout:?}"),
        }
    }

    /// How many times `/invocation/next` was called (including the poll still waiting).
    pub fn next_calls(&self) -> u64 {
        self.shared.next_calls.load(Ordering::Relaxed)
    }

    /// When the first `/invocation/next` arrived (the function finished its init), if one has.
    pub fn first_next_at(&self) -> Option<Instant> {
        self.shared.first_next_at.get().copied()
    }
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn counter() -> u64 {
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

fn request_id() -> String {
    let n = counter();
    let ms = now_ms() as u64;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        ms & 0xffff_ffff,
        (ms >> 32) & 0xffff,
        (n >> 12) & 0xfff,
        n & 0xfff,
        u64::from(std::process::id()) << 16 | (n & 0xffff)
    )
}

fn trace_id() -> String {
    let n = counter();
    let secs = now_ms() / 1000;
    format!("Root=1-{secs:08x}-{n:024x};Parent={n:016x};Sampled=0")
}

fn json_response(status: StatusCode, body: Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("valid response parts")
}

/// Long-polls until an event is queued, like the real API.
async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let _ = shared.first_next_at.set(Instant::now());
    shared.next_calls.fetch_add(1, Ordering::Relaxed);
    let event = shared.queue.lock().await.recv().await;
    let Some(event) = event else {
        return json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"errorType": "Shutdown"}),
        );
    };
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", &event.id)
        .header("lambda-runtime-deadline-ms", event.deadline_ms.to_string())
        .header("lambda-runtime-invoked-function-arn", FUNCTION_ARN)
        .header("lambda-runtime-trace-id", trace_id())
        .body(Body::from(event.body.to_string()))
        .expect("valid response parts")
}

fn body_value(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

fn answer(shared: &Shared, id: &str, result: Invocation) -> Response {
    match shared.pending.lock().unwrap().remove(id) {
        Some(tx) => {
            // The invoker may have given up already; nothing to do then.
            let _ = tx.send(result);
            json_response(StatusCode::ACCEPTED, json!({"status": "OK"}))
        }
        None => json_response(
            StatusCode::BAD_REQUEST,
            json!({"errorType": "InvalidRequestID", "errorMessage": format!("unknown or already answered request id {id}")}),
        ),
    }
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    answer(&shared, &id, Invocation::Ok(body_value(&body)))
}

async fn error(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Response {
    answer(&shared, &id, Invocation::Err(body_value(&body)))
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    shared.init_error.send_replace(Some(body_value(&body)));
    json_response(StatusCode::ACCEPTED, json!({"status": "OK"}))
}

/// The credentials the tests give the function (`aws_env`).
const ACCESS_KEY: &str = "testing";
const SECRET_KEY: &str = "testing";

/// Lambda's Invoke API, asynchronous invocations only: the SigV4 signature is computed again
/// over the request as received, with the test credentials, and must match.
async fn invoke_api(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
    body: Bytes,
) -> Response {
    let refuse = |status: StatusCode, kind: &str, why: String| {
        shared
            .invokes_refused
            .lock()
            .unwrap()
            .push(format!("{kind}: {why}"));
        json_response(
            status,
            json!({"Type": "User", "message": why, "__type": kind}),
        )
    };
    if name != FUNCTION_NAME && name != FUNCTION_ARN {
        return refuse(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            format!("Function not found: {name}"),
        );
    }
    if let Err(why) = check_sigv4(&headers, &uri, &body) {
        return refuse(StatusCode::FORBIDDEN, "InvalidSignatureException", why);
    }
    let invocation_type = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok());
    if invocation_type != Some("Event") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            format!("this double takes asynchronous invocations only, not {invocation_type:?}"),
        );
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            "Could not parse request body into json".into(),
        );
    };
    let id = request_id();
    let (tx, rx) = oneshot::channel();
    shared.pending.lock().unwrap().insert(id.clone(), tx);
    let _ = shared.events.send(Event {
        id,
        body: event.clone(),
        deadline_ms: now_ms() + 30_000,
    });
    let answers = Arc::clone(&shared);
    tokio::spawn(async move {
        if let Ok(answer) = rx.await {
            answers.async_answers.lock().unwrap().push((event, answer));
        }
    });
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .body(Body::empty())
        .expect("valid response parts")
}

/// Recomputes the request's SigV4 signature for Lambda with the test credentials, at the
/// request's own `X-Amz-Date`, over the headers it says it signed.
fn check_sigv4(
    headers: &axum::http::HeaderMap,
    uri: &axum::http::Uri,
    body: &[u8],
) -> Result<(), String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let authorization = header("authorization").ok_or("no Authorization header")?;
    let date = header("x-amz-date").ok_or("no X-Amz-Date header")?;
    let signed_names: Vec<&str> = authorization
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .ok_or("no SignedHeaders")?
        .split(';')
        .collect();
    let scope = authorization
        .split("Credential=")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .ok_or("no Credential")?;
    let parts: Vec<&str> = scope.split('/').collect();
    if parts.len() != 5
        || parts[0] != ACCESS_KEY
        || parts[3] != "lambda"
        || parts[4] != "aws4_request"
    {
        return Err(format!(
            "the credential scope is not for Lambda with the test key: {scope}"
        ));
    }
    let region = parts[2];
    let time = time::PrimitiveDateTime::parse(
        date,
        time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"),
    )
    .map_err(|e| format!("X-Amz-Date: {e}"))?
    .assume_utc();
    let skew = (time::OffsetDateTime::now_utc() - time)
        .whole_seconds()
        .abs();
    if skew > 300 {
        return Err(format!("X-Amz-Date is {skew} s off"));
    }
    let host = header("host").ok_or("no Host header")?;
    let url = format!("http://{host}{}", uri.path());
    let signed: Vec<(String, String)> = signed_names
        .iter()
        .filter(|name| !matches!(**name, "host" | "x-amz-date" | "x-amz-security-token"))
        .map(|name| {
            (
                name.to_string(),
                header(name).unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let identity =
        aws_credential_types::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "double").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("lambda")
        .time(time.into())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let request = SignableRequest::new(
        "POST",
        url,
        signed.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(request, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    let expected = instructions
        .headers()
        .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        .map(|(_, value)| value.to_owned())
        .ok_or("no signature computed")?;
    if expected == authorization {
        Ok(())
    } else {
        Err("The request signature we calculated does not match the signature you provided".into())
    }
}

/// The function binary running against a [`RuntimeApi`]; dropping it kills the process.
pub struct LambdaProcess {
    child: Child,
    output: Arc<Mutex<String>>,
    spawned_at: Instant,
}

impl LambdaProcess {
    /// The binary cargo built for this test (`<target dir>/release/review-relay` under
    /// `--release`), wherever `CARGO_TARGET_DIR` put it.
    pub fn binary_path() -> PathBuf {
        // Cargo sets CARGO_BIN_EXE_* for integration tests only; an example is built beside
        // the binary, in `<profile dir>/examples/`.
        match option_env!("CARGO_BIN_EXE_review-relay") {
            Some(path) => PathBuf::from(path),
            None => profile_dir().join("review-relay"),
        }
    }

    /// Starts the binary with the environment Lambda gives a custom runtime, pointed at
    /// `runtime_api` (see [`RuntimeApi::address`]), plus `extra_env` (which wins on conflicts).
    /// The inherited environment is cleared (PATH, RUST_LOG and RUST_BACKTRACE are kept) so
    /// the developer's AWS settings cannot leak in.
    pub fn spawn(runtime_api: &str, extra_env: &[(String, String)]) -> LambdaProcess {
        Self::spawn_binary(&Self::binary_path(), runtime_api, extra_env)
    }

    /// [`spawn`](Self::spawn) for another Lambda binary (a custom runtime built elsewhere).
    pub fn spawn_binary(
        binary: &FsPath,
        runtime_api: &str,
        extra_env: &[(String, String)],
    ) -> LambdaProcess {
        if !binary.exists() {
            panic!(
                "{} does not exist: build it with cargo build --release",
                binary.display()
            );
        }
        let mut command = Command::new(binary);
        command.env_clear();
        for name in ["PATH", "RUST_LOG", "RUST_BACKTRACE"] {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/11/26/[$LATEST]00000000000000000000000000000000",
            )
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/review-relay")
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .env("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")
            .env("_HANDLER", "bootstrap")
            .env("LANG", "en_US.UTF-8")
            .env("TZ", ":UTC")
            .envs(extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let spawned_at = Instant::now();
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));

        let output = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        collect_lines(stdout, Arc::clone(&output));
        collect_lines(stderr, Arc::clone(&output));
        LambdaProcess {
            child,
            output,
            spawned_at,
        }
    }

    /// When the process was started (just before the `spawn` system call).
    pub fn spawned_at(&self) -> Instant {
        self.spawned_at
    }

    /// Everything the process wrote to stdout and stderr so far (interleaved by line).
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits until the output contains `needle`; panics with the output after `timeout`.
    pub async fn wait_for_output(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.output().contains(needle) {
            if Instant::now() >= deadline {
                panic!(
                    "lambda output did not contain {needle:?} within {timeout:?}; output:\n{}",
                    self.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The exit status if the process exits within `timeout`, else `None` (still running).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for LambdaProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The directory cargo put this build's binaries in (`<target dir>/release`), found from the
/// running executable: an integration test lives in `<profile dir>/deps/`, an example in
/// `<profile dir>/examples/`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the running executable's path");
    exe.parent()
        .and_then(FsPath::parent)
        .map(FsPath::to_path_buf)
        .expect("the executable lives two levels under the target directory")
}

/// The target directory itself (`CARGO_TARGET_DIR`, or `target/`).
pub fn target_dir() -> PathBuf {
    let profile = profile_dir();
    profile
        .parent()
        .map_or(profile.clone(), FsPath::to_path_buf)
}

fn collect_lines(stream: impl Read + Send + 'static, sink: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        // Bytes, not String lines: one invalid UTF-8 byte must not stop the capture.
        while let Ok(n) = reader.read_until(b'\n', &mut line) {
            if n == 0 {
                break;
            }
            let mut out = sink.lock().unwrap();
            out.push_str(&String::from_utf8_lossy(&line));
            if !line.ends_with(b"\n") {
                out.push('\n');
            }
            line.clear();
        }
    });
}
