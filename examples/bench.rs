//! `make bench`: review-relay's release binary run as a Lambda (through the Runtime API double)
//! against the App Store Connect double, the Google Play double, moto and a webhook receiver, all
//! on 127.0.0.1. Measures cold start, idle runs, a 10,000-review App Store backlog (and the same
//! requests replayed by a plain client, the floor), a 2,000-review Google Play backlog, 500 idle
//! apps and the binary's size, derives Apple's and Google's request budgets, prints a table and
//! writes the generated part of BENCHMARKS.md.
//!
//! A benchmark, not a test: nothing here asserts a time. Figures are medians over repeated runs.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use support::asc::{AscConfig, AscDouble, encode_cursor, review};
use support::keys;
use support::moto::{Moto, aws_env, sdk_config, unique_name};
use support::play::{PlayConfig, PlayDouble, play_review, real_now_secs};
use support::receiver::Receiver;
use support::runtime_api::{Invocation, LambdaProcess, RuntimeApi};
use support::template::{create_table_from_template, put_secret};

/// Spawns per binary for the cold start (after one discarded warm-up spawn each).
const COLD_RUNS: usize = 25;
/// Fresh processes for the 5-app idle run; each serves a first and a second invocation.
const IDLE_RUNS: usize = 7;
const IDLE_APPS: usize = 5;
/// About ten reviews a day for three days: what the 72-hour overlap re-reads on an idle run.
const IDLE_REVIEWS_PER_APP: usize = 30;
const MANY_APPS: usize = 500;
/// Fresh processes for the 500-app idle run, one invocation each.
const MANY_APPS_RUNS: usize = 3;
const BACKLOG_APPS: usize = 5;
const BACKLOG_REVIEWS_PER_APP: usize = 2_000;
/// One review every 5 s per app: 2,000 reviews span 2.8 hours.
const BACKLOG_SPACING_SECS: i64 = 5;
const BACKLOG_BACKFILL_HOURS: u32 = 4;
/// Runs of the relay and of the floor each; `BENCH_BACKLOG_RUNS` overrides it.
const BACKLOG_RUNS: usize = 3;
/// Apple's largest page, which the relay asks for.
const PAGE_LIMIT: usize = 200;
/// The relay reads this many apps at a time (src/relay/mod.rs); the floor does the same.
const APP_CONCURRENCY: usize = 4;
/// One Google Play app's backlog, read in pages of [`PLAY_PAGE_LIMIT`].
const PLAY_BACKLOG_REVIEWS: usize = 2_000;
/// Google's largest `reviews.list` page, which the relay asks for.
const PLAY_PAGE_LIMIT: usize = 100;
/// Google allows 200 GET requests an hour per app (reviews.list and reviews.get together).
const PLAY_GETS_PER_HOUR: f64 = 200.0;
/// The Lambda deadline the Runtime API double hands out: Lambda's longest.
const LAMBDA_TIMEOUT: Duration = Duration::from_secs(15 * 60);

// What the project aims for, and Apple's documented per-key allowance.
const COLD_START_RATIO_TARGET: f64 = 1.5;
const COLD_START_EXTRA_MS_TARGET: f64 = 5.0;
const IDLE_CPU_TARGET_MS: f64 = 10.0;
const BACKLOG_RSS_TARGET_MB: f64 = 40.0;
const FLOOR_RATIO_TARGET: f64 = 1.3;
const SCHEDULE_MINUTES: f64 = 15.0;
const OVERLAP_HOURS: f64 = 72.0;
const APPLE_REQUESTS_PER_HOUR: f64 = 3_500.0;

/// /proc/<pid>/stat counts CPU time in USER_HZ ticks, 100 a second on every Linux architecture.
const USER_HZ: f64 = 100.0;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let started = Instant::now();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let relay_binary = LambdaProcess::binary_path();
    let hello_binary = support::runtime_api::profile_dir().join("examples/hello");
    for binary in [&relay_binary, &hello_binary] {
        if !binary.exists() {
            return Err(format!(
                "{} is missing: build with `cargo build --release --bins --examples` (make bench does)",
                binary.display()
            ));
        }
    }

    progress(
        "starting moto, the App Store Connect and Google Play doubles, the receiver and a counting proxy",
    );
    let services = Services::start(&root).await;

    if let Ok(only) = std::env::var("BENCH_ONLY") {
        return partial(&services, &relay_binary, &hello_binary, &only).await;
    }

    let sizes = Sizes::measure(&root, &relay_binary, &hello_binary);

    progress(&format!(
        "cold start: {COLD_RUNS} spawns each of review-relay and hello"
    ));
    let cold = cold_start(&services, &relay_binary, &hello_binary).await?;

    progress(&format!(
        "idle: {IDLE_APPS} apps, {IDLE_RUNS} fresh processes × 2 invocations"
    ));
    let idle = idle_runs(
        &services,
        &relay_binary,
        IDLE_APPS,
        IDLE_RUNS,
        1_000_000_000,
    )
    .await?;

    progress(&format!(
        "idle: {MANY_APPS} apps, {MANY_APPS_RUNS} fresh processes × 1 invocation"
    ));
    let many = idle_runs(
        &services,
        &relay_binary,
        MANY_APPS,
        MANY_APPS_RUNS,
        2_000_000_000,
    )
    .await?;

    progress(&format!(
        "backlog: {} reviews over {BACKLOG_APPS} apps, relay and floor runs alternating",
        BACKLOG_APPS * BACKLOG_REVIEWS_PER_APP
    ));
    let backlog = backlog_runs(&services, &relay_binary).await?;

    progress(&format!(
        "Google Play backlog: {PLAY_BACKLOG_REVIEWS} reviews of one app, then a warm run"
    ));
    let play = play_backlog_runs(&services, &relay_binary).await?;

    let budget = AppleBudget::from_measurements(&idle, &backlog);
    let report = Report {
        machine: Machine::describe(),
        sizes,
        cold,
        idle,
        many,
        backlog,
        play,
        budget,
        total: started.elapsed(),
    };
    println!("{}", report.table());
    let path = root.join("BENCHMARKS.md");
    write_benchmarks_md(&path, &report.markdown())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    progress(&format!(
        "wrote {} ({:.0} s in all)",
        path.display(),
        report.total.as_secs_f64()
    ));
    Ok(())
}

/// `BENCH_ONLY=cold,idle` (any of `cold`, `idle`, `many`, `backlog`, `play`): runs just those parts and
/// prints their medians, for checking one change quickly. BENCHMARKS.md is left as it is.
async fn partial(
    services: &Services,
    relay_binary: &Path,
    hello_binary: &Path,
    only: &str,
) -> Result<(), String> {
    let parts: Vec<&str> = only.split(',').map(str::trim).collect();
    if let Some(unknown) = parts
        .iter()
        .find(|p| !["cold", "idle", "many", "backlog", "play"].contains(p))
    {
        return Err(format!(
            "BENCH_ONLY: unknown part `{unknown}` (cold, idle, many, backlog, play)"
        ));
    }
    if parts.contains(&"cold") {
        let cold = cold_start(services, relay_binary, hello_binary).await?;
        let (relay, hello) = (median(&cold.relay_ms), median(&cold.hello_ms));
        println!(
            "cold start: relay {relay:.1} ms, hello {hello:.1} ms ({:.2}×, +{:.1} ms)",
            relay / hello,
            relay - hello
        );
    }
    if parts.contains(&"idle") {
        let idle = idle_runs(services, relay_binary, IDLE_APPS, IDLE_RUNS, 1_000_000_000).await?;
        println!(
            "idle {IDLE_APPS} apps: CPU first {:.1} ms, warm {:.1} ms; wall first {:.1} ms, warm {:.1} ms",
            median(&ms(&idle.first, |r| r.cpu)),
            median(&ms(&idle.second, |r| r.cpu)),
            median(&ms(&idle.first, |r| r.wall)),
            median(&ms(&idle.second, |r| r.wall)),
        );
    }
    if parts.contains(&"many") {
        let many = idle_runs(
            services,
            relay_binary,
            MANY_APPS,
            MANY_APPS_RUNS,
            2_000_000_000,
        )
        .await?;
        println!(
            "idle {MANY_APPS} apps: wall {:.2} s, CPU {:.2} ms per app",
            median(&ms(&many.first, |r| r.wall)) / 1e3,
            median(&ms(&many.first, |r| r.cpu)) / MANY_APPS as f64,
        );
    }
    if parts.contains(&"backlog") {
        let backlog = backlog_runs(services, relay_binary).await?;
        let relay = median(&ms(&backlog.relay, |r| r.wall)) / 1e3;
        let floor = median(
            &backlog
                .floor_wall
                .iter()
                .map(Duration::as_secs_f64)
                .collect::<Vec<_>>(),
        );
        println!(
            "backlog {} reviews: relay {relay:.1} s, floor {floor:.1} s ({:.2}×), CPU {:.0} ms per 1,000",
            backlog.reviews,
            relay / floor,
            median(&ms(&backlog.relay, |r| r.cpu)) / (backlog.reviews as f64 / 1e3),
        );
    }
    if parts.contains(&"play") {
        let play = play_backlog_runs(services, relay_binary).await?;
        println!(
            "Google Play backlog {} reviews: relay {:.1} s, CPU {:.0} ms per 1,000, peak RSS {:.1} MB, \
             {} GETs; warm run {} GETs",
            play.reviews,
            median(&ms(&play.relay, |r| r.wall)) / 1e3,
            median(&ms(&play.relay, |r| r.cpu)) / (play.reviews as f64 / 1e3),
            mb(median(
                &play
                    .relay
                    .iter()
                    .map(|r| r.peak_rss_kb as f64)
                    .collect::<Vec<_>>()
            )),
            play.relay[0].calls.play_gets,
            play.warm[0].calls.play_gets,
        );
    }
    Ok(())
}

fn progress(message: &str) {
    eprintln!("bench: {message}");
}

// ---------------------------------------------------------------------------------------------
// The services, and counting what reaches them

struct Services {
    /// Kept alive: dropping it stops moto.
    _moto: Moto,
    /// The relay (and the floor) reach moto only through this proxy, which counts the calls.
    proxy: CountingProxy,
    asc: AscDouble,
    play: PlayDouble,
    receiver: Receiver,
    /// Straight to moto, for set-up (not counted).
    admin: SdkConfig,
}

/// Requests each service had seen at one moment.
#[derive(Clone, Default)]
struct Counts {
    asc: usize,
    /// Google Play double: `reviews.list` GETs, and token exchanges (`POST /token`).
    play_gets: usize,
    play_tokens: usize,
    webhook: usize,
    /// By `X-Amz-Target` (`DynamoDB_20120810.PutItem`, `secretsmanager.GetSecretValue`).
    aws: BTreeMap<String, u64>,
    /// Time moto took to answer, summed by `X-Amz-Target`.
    aws_time: BTreeMap<String, Duration>,
}

/// Requests between two [`Counts`].
#[derive(Clone, Default, Debug)]
struct Calls {
    asc: usize,
    play_gets: usize,
    play_tokens: usize,
    webhook: usize,
    aws: BTreeMap<String, u64>,
    aws_time: BTreeMap<String, Duration>,
}

impl Calls {
    fn between(before: &Counts, after: &Counts) -> Calls {
        let aws = after
            .aws
            .iter()
            .filter_map(|(op, n)| {
                let delta = n - before.aws.get(op).copied().unwrap_or(0);
                (delta > 0).then(|| (op.clone(), delta))
            })
            .collect();
        let aws_time = after
            .aws_time
            .iter()
            .filter_map(|(op, t)| {
                let delta = t.saturating_sub(before.aws_time.get(op).copied().unwrap_or_default());
                (!delta.is_zero()).then(|| (op.clone(), delta))
            })
            .collect();
        Calls {
            asc: after.asc - before.asc,
            play_gets: after.play_gets - before.play_gets,
            play_tokens: after.play_tokens - before.play_tokens,
            webhook: after.webhook - before.webhook,
            aws,
            aws_time,
        }
    }

    /// Time moto spent answering DynamoDB and Secrets Manager, all operations.
    fn moto_time(&self) -> Duration {
        self.aws_time.values().sum()
    }

    /// `TransactWriteItems 10000 × 4.1 ms, …`: each operation's count and mean time at moto.
    fn moto_ops(&self) -> String {
        self.aws
            .iter()
            .map(|(op, n)| {
                let total = self.aws_time.get(op).copied().unwrap_or_default();
                let short = op.rsplit('.').next().unwrap_or(op);
                format!(
                    "{short} {n} × {:.1} ms",
                    total.as_secs_f64() * 1e3 / *n as f64
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn dynamodb(&self) -> u64 {
        self.sum("DynamoDB_")
    }

    fn secrets(&self) -> u64 {
        self.sum("secretsmanager.")
    }

    fn sum(&self, prefix: &str) -> u64 {
        self.aws
            .iter()
            .filter(|(op, _)| op.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }

    /// `PutItem 10, Query 5, …` for the DynamoDB operations.
    fn dynamodb_ops(&self) -> String {
        self.aws
            .iter()
            .filter_map(|(op, n)| op.strip_prefix("DynamoDB_20120810.").map(|o| (o, n)))
            .map(|(op, n)| format!("{op} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Same number of requests per service and per operation.
    fn same_shape(&self, other: &Calls) -> bool {
        self.asc == other.asc
            && self.play_gets == other.play_gets
            && self.play_tokens == other.play_tokens
            && self.webhook == other.webhook
            && self.aws == other.aws
    }
}

impl Services {
    async fn start(root: &Path) -> Services {
        let moto = Moto::start_script(&root.join("tests/support/moto_server_bench.py"));
        let admin = sdk_config(&moto.endpoint()).await;
        Services {
            proxy: CountingProxy::start(moto.endpoint()),
            _moto: moto,
            asc: AscDouble::start(AscConfig::team()),
            play: PlayDouble::start(PlayConfig::fixture()),
            receiver: Receiver::start(),
            admin,
        }
    }

    fn counts(&self) -> Counts {
        let play = self.play.requests();
        let play_gets = play.iter().filter(|r| r.method == "GET").count();
        Counts {
            asc: self.asc.requests().len(),
            play_gets,
            play_tokens: play.len() - play_gets,
            webhook: self.receiver.received().len(),
            aws: self.proxy.counts(),
            aws_time: self.proxy.times(),
        }
    }

    fn webhook_url(&self) -> String {
        self.receiver.url("bench/hook")
    }

    /// A new table (shaped like template.yaml's) and a secret pointing at the receiver.
    async fn fresh_state(&self, label: &str) -> (String, String) {
        let table = unique_name(&format!("bench-{label}"));
        let secret = unique_name(&format!("bench-{label}-secret"));
        create_table_from_template(&self.admin, &table).await;
        let value = json!({
            "issuer_id": keys::ISSUER_ID,
            "key_id": keys::KEY_ID,
            "private_key": keys::PRIVATE_KEY_P8,
            "webhook_url": self.webhook_url(),
        });
        put_secret(&self.admin, &secret, &value.to_string()).await;
        (table, secret)
    }

    /// A new table and a Google Play-only secret: the service account's key file and the receiver.
    async fn fresh_play_state(&self, label: &str) -> (String, String) {
        let table = unique_name(&format!("bench-{label}"));
        let secret = unique_name(&format!("bench-{label}-secret"));
        create_table_from_template(&self.admin, &table).await;
        let value = json!({
            "google_service_account": self.play.service_account_json(),
            "webhook_url": self.webhook_url(),
        });
        put_secret(&self.admin, &secret, &value.to_string()).await;
        (table, secret)
    }

    /// Frees moto's memory once a run is measured.
    async fn drop_table(&self, table: &str) {
        let _ = aws_sdk_dynamodb::Client::new(&self.admin)
            .delete_table()
            .table_name(table)
            .send()
            .await;
    }

    /// The function's environment: as deployed (INFO, JSON logs), pointed at the local services.
    fn lambda_env(
        &self,
        table: &str,
        secret: &str,
        apps: &[String],
        backfill_hours: u32,
    ) -> Vec<(String, String)> {
        let mut env = aws_env(&self.proxy.url());
        env.extend(
            [
                ("APP_IDS", apps.join(",")),
                ("SECRET_ID", secret.to_owned()),
                ("TABLE_NAME", table.to_owned()),
                ("ASC_BASE_URL", self.asc.base_url()),
                ("BACKFILL_HOURS", backfill_hours.to_string()),
                ("AWS_LAMBDA_LOG_LEVEL", "INFO".to_owned()),
                ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        env
    }
}

impl Services {
    /// The function's environment for Google Play apps only (`APP_IDS` unset).
    fn play_env(
        &self,
        table: &str,
        secret: &str,
        packages: &[String],
        backfill_hours: u32,
    ) -> Vec<(String, String)> {
        let mut env = aws_env(&self.proxy.url());
        env.extend(
            [
                ("PLAY_PACKAGES", packages.join(",")),
                ("PLAY_BASE_URL", self.play.base_url()),
                ("SECRET_ID", secret.to_owned()),
                ("TABLE_NAME", table.to_owned()),
                ("BACKFILL_HOURS", backfill_hours.to_string()),
                ("AWS_LAMBDA_LOG_LEVEL", "INFO".to_owned()),
                ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        env
    }
}

/// Requests by `X-Amz-Target`, and the time moto took to answer them.
type Tally = Arc<Mutex<BTreeMap<String, (u64, Duration)>>>;

/// A reverse proxy in front of moto that counts requests by `X-Amz-Target` and times moto's answers.
struct CountingProxy {
    url: String,
    tally: Tally,
}

struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    tally: Tally,
}

impl CountingProxy {
    fn start(upstream: String) -> CountingProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("listener address");
        let tally = Tally::default();
        let state = Arc::new(ProxyState {
            upstream,
            client: reqwest::Client::new(),
            tally: Arc::clone(&tally),
        });
        // Lives as long as the bench process.
        std::thread::Builder::new()
            .name("bench-aws-proxy".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("proxy runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("adopt listener");
                    let router = Router::new().fallback(forward).with_state(state);
                    if let Err(e) = axum::serve(listener, router).await {
                        eprintln!("bench: counting proxy stopped: {e}");
                    }
                });
            })
            .expect("spawn the proxy thread");
        CountingProxy {
            url: format!("http://{addr}"),
            tally,
        }
    }

    fn url(&self) -> String {
        self.url.clone()
    }

    fn counts(&self) -> BTreeMap<String, u64> {
        let tally = self.tally.lock().expect("proxy tally");
        tally.iter().map(|(op, (n, _))| (op.clone(), *n)).collect()
    }

    fn times(&self) -> BTreeMap<String, Duration> {
        let tally = self.tally.lock().expect("proxy tally");
        tally.iter().map(|(op, (_, t))| (op.clone(), *t)).collect()
    }
}

fn without_hop_headers(mut headers: HeaderMap) -> HeaderMap {
    for name in [
        header::HOST,
        header::CONTENT_LENGTH,
        header::CONNECTION,
        header::TRANSFER_ENCODING,
    ] {
        headers.remove(name);
    }
    headers
}

async fn forward(
    State(state): State<Arc<ProxyState>>,
    request: axum::extract::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map_or_else(
            || format!("{} {}", parts.method, parts.uri.path()),
            str::to_owned,
        );
    let failed = |e: String| {
        let mut response = Response::new(Body::from(e));
        *response.status_mut() = StatusCode::BAD_GATEWAY;
        response
    };
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(e) => return failed(e.to_string()),
    };
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let started = Instant::now();
    let sent = state
        .client
        .request(parts.method, format!("{}{path}", state.upstream))
        .headers(without_hop_headers(parts.headers))
        .body(body)
        .send()
        .await;
    let upstream = match sent {
        Ok(upstream) => upstream,
        Err(e) => return failed(e.to_string()),
    };
    let status = upstream.status();
    let headers = without_hop_headers(upstream.headers().clone());
    let read = upstream.bytes().await;
    {
        let mut tally = state.tally.lock().expect("proxy tally");
        let entry = tally.entry(target).or_default();
        entry.0 += 1;
        entry.1 += started.elapsed();
    }
    match read {
        Ok(bytes) => {
            let mut response = Response::new(Body::from(bytes));
            *response.status_mut() = status;
            *response.headers_mut() = headers;
            response
        }
        Err(e) => failed(e.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// The function under the Runtime API double, and what one invocation costs

/// A Lambda binary running against its own Runtime API double.
struct Lambda {
    // Dropped first: the process dies before its Runtime API does.
    process: LambdaProcess,
    api: RuntimeApi,
}

/// One measured invocation.
#[derive(Clone, Debug)]
struct Run {
    wall: Duration,
    /// From the process's CPU clock (every thread, nanoseconds).
    cpu: Duration,
    /// utime + stime from /proc/<pid>/stat (10 ms ticks).
    ticks_cpu: Duration,
    calls: Calls,
    summary: Value,
    /// VmHWM after the invocation, in kB.
    peak_rss_kb: u64,
}

impl Lambda {
    fn spawn(binary: &Path, env: &[(String, String)]) -> Lambda {
        let api = RuntimeApi::start();
        let process = LambdaProcess::spawn_binary(binary, &api.address(), env);
        Lambda { process, api }
    }

    /// Waits for the function's first `GET /runtime/invocation/next`; returns the time since spawn.
    async fn ready(&mut self) -> Result<Duration, String> {
        let give_up = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(at) = self.api.first_next_at() {
                return Ok(at.duration_since(self.process.spawned_at()));
            }
            if let Some(error) = self.api.init_error() {
                return Err(format!("the function reported an init error: {error}"));
            }
            if let Some(status) = self.process.wait_exit(Duration::ZERO).await {
                return Err(format!(
                    "the function exited ({status}) before asking for an event:\n{}",
                    self.process.output()
                ));
            }
            if Instant::now() > give_up {
                return Err("the function did not ask for an event within 60 s".into());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// One invocation of `{}` (a manual run of every app), measured from the moment the function
    /// waits for it to the moment it waits for the next one.
    async fn invoke(&self, services: &Services) -> Result<Run, String> {
        let pid = self.pid();
        let polls = self.api.next_calls();
        let counts_before = services.counts();
        let cpu_before = process_cpu(pid)?;
        let ticks_before = stat_cpu_ticks(pid)?;
        let started = Instant::now();
        let answer = self.api.invoke(json!({}), LAMBDA_TIMEOUT).await;
        let wall = started.elapsed();
        // What the runtime does after answering (reading the 202, asking for the next event)
        // belongs to this invocation.
        let give_up = Instant::now() + Duration::from_secs(10);
        while self.api.next_calls() <= polls && Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let cpu = process_cpu(pid)?.saturating_sub(cpu_before);
        let ticks = stat_cpu_ticks(pid)?.saturating_sub(ticks_before);
        let calls = Calls::between(&counts_before, &services.counts());
        let summary = match answer {
            Invocation::Ok(summary) => summary,
            Invocation::Err(error) => {
                return Err(format!(
                    "the invocation failed: {error}\n{}",
                    self.process.output()
                ));
            }
        };
        Ok(Run {
            wall,
            cpu,
            ticks_cpu: Duration::from_secs_f64(ticks as f64 / USER_HZ),
            calls,
            summary,
            peak_rss_kb: status_kb(pid, "VmHWM:")?,
        })
    }
}

/// Apps in the summary, by status.
fn statuses(summary: &Value) -> BTreeMap<String, usize> {
    let mut statuses = BTreeMap::new();
    for app in summary["apps"].as_array().into_iter().flatten() {
        let status = app["status"].as_str().unwrap_or("?").to_owned();
        *statuses.entry(status).or_default() += 1;
    }
    statuses
}

fn summary_total(summary: &Value, field: &str) -> u64 {
    summary["apps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|app| app[field].as_u64().unwrap_or(0))
        .sum()
}

fn expect_all_ok(summary: &Value, apps: usize, what: &str) -> Result<(), String> {
    let statuses = statuses(summary);
    if statuses.get("ok") == Some(&apps) {
        Ok(())
    } else {
        Err(format!("{what}: expected {apps} apps ok, got {statuses:?}"))
    }
}

// ---------------------------------------------------------------------------------------------
// /proc

/// utime + stime of the whole process (exited threads included), in ticks.
fn stat_cpu_ticks(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // Fields after the command name, which is in parentheses and may hold spaces: state is
    // field 3, utime 14, stime 15.
    let rest = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| format!("{path}: unexpected format"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Result<u64, String> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("{path}: field {n} missing"))
    };
    Ok(field(14)? + field(15)?)
}

/// A `kB` line of /proc/<pid>/status, e.g. `VmHWM:`.
fn status_kb(pid: u32, name: &str) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("{path}: no {name}"))
}

/// The process's CPU time with nanosecond resolution; falls back to /proc/<pid>/stat ticks.
fn process_cpu(pid: u32) -> Result<Duration, String> {
    match cpu_clock::of_process(pid) {
        Some(cpu) => Ok(cpu),
        None => Ok(Duration::from_secs_f64(
            stat_cpu_ticks(pid)? as f64 / USER_HZ,
        )),
    }
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod cpu_clock {
    use std::time::Duration;

    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }

    unsafe extern "C" {
        fn clock_gettime(clock_id: i32, tp: *mut Timespec) -> i32;
    }

    /// Reads another process's CPU-time clock: `MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)` in
    /// the kernel's terms, the scheduler's nanosecond sum over all its threads, exited ones too.
    pub fn of_process(pid: u32) -> Option<Duration> {
        let pid = i32::try_from(pid).ok()?;
        let clock = ((!pid) << 3) | 2;
        let mut ts = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the whole call.
        let rc = unsafe { clock_gettime(clock, &mut ts) };
        if rc != 0 {
            return None;
        }
        Some(Duration::new(
            u64::try_from(ts.tv_sec).ok()?,
            u32::try_from(ts.tv_nsec).ok()?,
        ))
    }
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
mod cpu_clock {
    pub fn of_process(_pid: u32) -> Option<std::time::Duration> {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Review feeds

/// `seconds_ago` before now at UTC offset `offset_hours`, as Apple writes `createdDate`.
fn created(seconds_ago: i64, offset_hours: i8) -> String {
    let offset = UtcOffset::from_hms(offset_hours, 0, 0).unwrap_or(UtcOffset::UTC);
    let at = OffsetDateTime::now_utc() - time::Duration::seconds(seconds_ago);
    at.to_offset(offset)
        .replace_nanosecond(0)
        .unwrap_or(at)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// `count` reviews for `app`, the newest `newest_secs_ago` old, one every `spacing_secs` before it.
fn feed(app: &str, count: usize, newest_secs_ago: i64, spacing_secs: i64) -> Vec<Value> {
    const BODY: &str = "Does what it says and syncs quickly. Would love a widget for the home \
        screen and a darker dark mode; otherwise five stars from me, honestly.";
    (0..count)
        .map(|i| {
            let age = newest_secs_ago + (count - 1 - i) as i64 * spacing_secs;
            review(
                &format!("{app}-{i:05}"),
                &created(age, [-8, 0, 9, 2][i % 4]),
                (i % 5 + 1) as u8,
                Some("Useful, one wish"),
                Some(BODY),
                Some("reviewer"),
                Some(["USA", "GBR", "JPN", "DEU"][i % 4]),
            )
        })
        .collect()
}

fn app_ids(count: usize, first: u64) -> Vec<String> {
    (1..=count as u64)
        .map(|n| (first + n).to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Cold start

struct ColdStart {
    relay_ms: Vec<f64>,
    hello_ms: Vec<f64>,
    relay_rss_kb: Vec<f64>,
    hello_rss_kb: Vec<f64>,
}

async fn cold_start(
    services: &Services,
    relay_binary: &Path,
    hello_binary: &Path,
) -> Result<ColdStart, String> {
    // The relay must find a valid configuration, or it stops before asking for an event.
    let apps = app_ids(IDLE_APPS, 9_000_000_000);
    let env = services.lambda_env("bench-cold", "bench-cold-secret", &apps, 24);
    let mut cold = ColdStart {
        relay_ms: Vec::new(),
        hello_ms: Vec::new(),
        relay_rss_kb: Vec::new(),
        hello_rss_kb: Vec::new(),
    };
    // One discarded spawn each first (page cache, dynamic loader caches).
    for round in 0..=COLD_RUNS {
        // Alternate which goes first, so neither always follows the other.
        let order = if round.is_multiple_of(2) {
            [true, false]
        } else {
            [false, true]
        };
        for is_relay in order {
            let binary = if is_relay { relay_binary } else { hello_binary };
            let mut lambda = Lambda::spawn(binary, &env);
            let init = lambda.ready().await?;
            let rss = status_kb(lambda.pid(), "VmHWM:")? as f64;
            drop(lambda);
            if round == 0 {
                continue;
            }
            let (times, sizes) = if is_relay {
                (&mut cold.relay_ms, &mut cold.relay_rss_kb)
            } else {
                (&mut cold.hello_ms, &mut cold.hello_rss_kb)
            };
            times.push(init.as_secs_f64() * 1e3);
            sizes.push(rss);
        }
    }
    Ok(cold)
}

// ---------------------------------------------------------------------------------------------
// Idle runs

struct Idle {
    apps: usize,
    /// The invocation that set up the state (it delivers what the feed holds).
    setup: Run,
    /// The first invocation of a fresh process (reads the secret, signs a token).
    first: Vec<Run>,
    /// The second invocation of the same process.
    second: Vec<Run>,
}

async fn idle_runs(
    services: &Services,
    relay_binary: &Path,
    app_count: usize,
    runs: usize,
    first_app: u64,
) -> Result<Idle, String> {
    let apps = app_ids(app_count, first_app);
    // Few apps: 30 reviews each over the last 70 hours, and a warm second invocation per
    // process. Many apps: one review each from an hour ago, first invocations only (each takes
    // long against moto).
    let (per_app, newest, spacing, backfill, warm_too) = if app_count <= IDLE_APPS {
        (IDLE_REVIEWS_PER_APP, 2 * 3_600, 8_400, 72, true)
    } else {
        (1, 3_600, 3_600, 24, false)
    };
    for app in &apps {
        services
            .asc
            .set_reviews(app, feed(app, per_app, newest, spacing));
    }
    let (table, secret) = services.fresh_state(&format!("idle{app_count}")).await;
    let env = services.lambda_env(&table, &secret, &apps, backfill);

    let mut lambda = Lambda::spawn(relay_binary, &env);
    lambda.ready().await?;
    let setup = lambda.invoke(services).await?;
    expect_all_ok(&setup.summary, app_count, "idle set-up run")?;
    let delivered = summary_total(&setup.summary, "delivered");
    if delivered != (app_count * per_app) as u64 {
        return Err(format!(
            "idle set-up run delivered {delivered}, expected {}",
            app_count * per_app
        ));
    }
    drop(lambda);

    let mut idle = Idle {
        apps: app_count,
        setup,
        first: Vec::new(),
        second: Vec::new(),
    };
    for _ in 0..runs {
        let mut lambda = Lambda::spawn(relay_binary, &env);
        lambda.ready().await?;
        let slots = if warm_too {
            vec![&mut idle.first, &mut idle.second]
        } else {
            vec![&mut idle.first]
        };
        for slot in slots {
            let run = lambda.invoke(services).await?;
            expect_all_ok(&run.summary, app_count, "idle run")?;
            if summary_total(&run.summary, "delivered") != 0 || run.calls.webhook != 0 {
                return Err("an idle run delivered something".into());
            }
            slot.push(run);
        }
    }
    services.drop_table(&table).await;
    Ok(idle)
}

// ---------------------------------------------------------------------------------------------
// Backlog, and its floor

struct Backlog {
    relay: Vec<Run>,
    floor_wall: Vec<Duration>,
    floor_calls: Vec<Calls>,
    reviews: usize,
}

async fn backlog_runs(services: &Services, relay_binary: &Path) -> Result<Backlog, String> {
    let apps = app_ids(BACKLOG_APPS, 3_000_000_000);
    let mut plans = Vec::new();
    for app in &apps {
        let reviews = feed(app, BACKLOG_REVIEWS_PER_APP, 60, BACKLOG_SPACING_SECS);
        plans.push(FloorApp::plan(services, app, &reviews)?);
        services.asc.set_reviews(app, reviews);
        services.asc.set_app_name(app, &format!("Bench App {app}"));
    }
    let reviews = BACKLOG_APPS * BACKLOG_REVIEWS_PER_APP;
    let mut backlog = Backlog {
        relay: Vec::new(),
        floor_wall: Vec::new(),
        floor_calls: Vec::new(),
        reviews,
    };
    let runs = std::env::var("BENCH_BACKLOG_RUNS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(BACKLOG_RUNS);
    for round in 1..=runs {
        // The relay.
        let (table, secret) = services.fresh_state("backlog").await;
        services.receiver.reset();
        let env = services.lambda_env(&table, &secret, &apps, BACKLOG_BACKFILL_HOURS);
        let mut lambda = Lambda::spawn(relay_binary, &env);
        lambda.ready().await?;
        let run = lambda.invoke(services).await?;
        drop(lambda);
        expect_all_ok(&run.summary, BACKLOG_APPS, "backlog run")?;
        check_delivered(services, reviews, "the relay")?;
        progress(&format!(
            "backlog {round}/{runs}: relay {:.1} s",
            run.wall.as_secs_f64()
        ));
        backlog.relay.push(run);
        services.drop_table(&table).await;

        // The floor: the same requests from a plain client.
        let (table, secret) = services.fresh_state("floor").await;
        services.receiver.reset();
        let before = services.counts();
        let wall = floor_run(services, &plans, &table, &secret).await?;
        backlog
            .floor_calls
            .push(Calls::between(&before, &services.counts()));
        check_delivered(services, reviews, "the floor")?;
        progress(&format!(
            "backlog {round}/{runs}: floor {:.1} s",
            wall.as_secs_f64()
        ));
        backlog.floor_wall.push(wall);
        services.drop_table(&table).await;
    }
    services.receiver.reset();
    Ok(backlog)
}

/// Every review reached the receiver exactly once.
fn check_delivered(services: &Services, expected: usize, who: &str) -> Result<(), String> {
    let received = services.receiver.received();
    let keys: HashSet<&str> = received
        .iter()
        .filter(|r| r.accepted)
        .filter_map(|r| r.header("idempotency-key"))
        .collect();
    if received.len() != expected || keys.len() != expected {
        return Err(format!(
            "{who}: the receiver got {} posts ({} distinct reviews), expected {expected}",
            received.len(),
            keys.len()
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Google Play backlog

struct PlayBacklog {
    /// The first invocation of a fresh process: reads and delivers the backlog.
    relay: Vec<Run>,
    /// A second invocation of the same process: nothing new, the overlap window re-read.
    warm: Vec<Run>,
    reviews: usize,
}

/// `count` Google Play reviews, the newest `newest_secs_ago` old (by `lastModified`), one every
/// `spacing_secs` before it; each text is a title and a body joined by a tab, as Google sends it.
fn play_feed(count: usize, newest_secs_ago: i64, spacing_secs: i64) -> Vec<Value> {
    const TEXT: &str = "Useful, one wish\tDoes what it says and syncs quickly. Would love a \
        widget for the home screen and a darker dark mode; otherwise five stars from me, honestly.";
    let now = real_now_secs();
    (0..count)
        .map(|i| {
            let age = newest_secs_ago + (count - 1 - i) as i64 * spacing_secs;
            play_review(
                &format!("gp:bench{i:05}"),
                "reviewer",
                TEXT,
                (i % 5 + 1) as u8,
                now - age,
                ["en-US", "en-GB", "ja-JP", "de-DE"][i % 4],
            )
        })
        .collect()
}

/// One Google Play app with [`PLAY_BACKLOG_REVIEWS`] reviews: a fresh process delivers them all,
/// then serves a second invocation with nothing new. Each round has its own package (the double
/// counts Google's hourly quota per package).
async fn play_backlog_runs(
    services: &Services,
    relay_binary: &Path,
) -> Result<PlayBacklog, String> {
    let mut play = PlayBacklog {
        relay: Vec::new(),
        warm: Vec::new(),
        reviews: PLAY_BACKLOG_REVIEWS,
    };
    let runs = std::env::var("BENCH_BACKLOG_RUNS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(BACKLOG_RUNS);
    for round in 1..=runs {
        let package = format!("com.example.bench.p{}r{round}", std::process::id());
        services.play.set_reviews(
            &package,
            play_feed(PLAY_BACKLOG_REVIEWS, 60, BACKLOG_SPACING_SECS),
        );
        let (table, secret) = services.fresh_play_state("play").await;
        services.receiver.reset();
        let env = services.play_env(
            &table,
            &secret,
            std::slice::from_ref(&package),
            BACKLOG_BACKFILL_HOURS,
        );
        let mut lambda = Lambda::spawn(relay_binary, &env);
        lambda.ready().await?;
        let run = lambda.invoke(services).await?;
        expect_all_ok(&run.summary, 1, "Google Play backlog run")?;
        check_delivered(services, PLAY_BACKLOG_REVIEWS, "the relay (Google Play)")?;
        let warm = lambda.invoke(services).await?;
        expect_all_ok(&warm.summary, 1, "Google Play warm run")?;
        if summary_total(&warm.summary, "delivered") != 0 || warm.calls.webhook != 0 {
            return Err("the Google Play warm run delivered something".into());
        }
        drop(lambda);
        progress(&format!(
            "Google Play backlog {round}/{runs}: {:.1} s, warm run {:.2} s",
            run.wall.as_secs_f64(),
            warm.wall.as_secs_f64()
        ));
        play.relay.push(run);
        play.warm.push(warm);
        services.drop_table(&table).await;
        services.play.set_reviews(&package, Vec::new());
    }
    services.receiver.reset();
    Ok(play)
}

/// One app's requests, prepared before the clock starts: page URLs as the double links them,
/// message bodies as the relay's `json` format writes them, the state items it records.
struct FloorApp {
    pk: String,
    /// `GET /v1/apps/{id}?fields[apps]=name`: the relay reads the app's name before delivering.
    name: String,
    pages: Vec<String>,
    deliveries: Vec<FloorDelivery>,
}

struct FloorDelivery {
    id: String,
    body: Vec<u8>,
    sort_key: String,
    watermark: String,
    created_date: String,
}

impl FloorApp {
    fn plan(services: &Services, app: &str, reviews: &[Value]) -> Result<FloorApp, String> {
        let base = format!("{}/v1/apps/{app}/customerReviews", services.asc.base_url());
        // As the relay asks (src/adapters/appstore), then as the double links the next pages:
        // its own parameters sorted by name, with `cursor` and `limit` set.
        let first = [
            ("sort", "-createdDate".to_owned()),
            ("limit", PAGE_LIMIT.to_string()),
            ("include", "response".to_owned()),
            (
                "fields[customerReviewResponses]",
                "responseBody,lastModifiedDate,state".to_owned(),
            ),
        ];
        let query = |pairs: &[(&str, String)]| {
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish()
        };
        let mut pages = vec![format!("{base}?{}", query(&first))];
        for offset in (PAGE_LIMIT..reviews.len()).step_by(PAGE_LIMIT) {
            let mut pairs: Vec<(&str, String)> = first
                .iter()
                .filter(|(k, _)| *k != "limit")
                .cloned()
                .collect();
            pairs.push(("cursor", encode_cursor(offset)));
            pairs.push(("limit", PAGE_LIMIT.to_string()));
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            pages.push(format!("{base}?{}", query(&pairs)));
        }
        let mut deliveries = Vec::new();
        for review in reviews {
            let id = review["id"].as_str().unwrap_or_default().to_owned();
            let attributes = &review["attributes"];
            let created_date = attributes["createdDate"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let nanos = OffsetDateTime::parse(&created_date, &Rfc3339)
                .map_err(|e| format!("feed date {created_date}: {e}"))?
                .unix_timestamp_nanos();
            let watermark = format!("{nanos:021}#{id}");
            let body = json!({
                "reviews": [{
                    "id": id,
                    "app_id": app,
                    "rating": attributes["rating"],
                    "title": attributes["title"],
                    "body": attributes["body"],
                    "reviewer_nickname": attributes["reviewerNickname"],
                    "territory": attributes["territory"],
                    "created_date": created_date,
                }]
            });
            deliveries.push((
                nanos,
                FloorDelivery {
                    body: serde_json::to_vec(&body).map_err(|e| e.to_string())?,
                    sort_key: format!("delivered#{watermark}"),
                    id,
                    watermark,
                    created_date,
                },
            ));
        }
        // Oldest first, as the relay delivers.
        deliveries.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
        Ok(FloorApp {
            pk: format!("app#{app}"),
            name: format!(
                "{}/v1/apps/{app}?fields%5Bapps%5D=name",
                services.asc.base_url()
            ),
            pages,
            deliveries: deliveries.into_iter().map(|(_, d)| d).collect(),
        })
    }
}

struct FloorClients {
    http: reqwest::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
    webhook: String,
    token: String,
    holder: String,
    now_ms: i64,
    stamp: String,
}

/// The backlog's requests, in the relay's shape (4 apps at a time; per app: state query, pages,
/// lease, state item, destination note, app name, then one POST and one TransactWriteItems per
/// message, the watermark, lease release), with nothing computed in between. Returns the wall
/// time.
async fn floor_run(
    services: &Services,
    plans: &[FloorApp],
    table: &str,
    secret: &str,
) -> Result<Duration, String> {
    let aws = sdk_config(&services.proxy.url()).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let now = OffsetDateTime::now_utc();
    let clients = FloorClients {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?,
        dynamodb: aws_sdk_dynamodb::Client::new(&aws),
        table: table.to_owned(),
        webhook: services.webhook_url(),
        token: keys::team_token(),
        holder: unique_name("floor"),
        now_ms: (now.unix_timestamp_nanos() / 1_000_000) as i64,
        stamp: now.format(&Rfc3339).unwrap_or_default(),
    };

    let started = Instant::now();
    secrets
        .get_secret_value()
        .secret_id(secret)
        .send()
        .await
        .map_err(|e| format!("floor GetSecretValue: {e:?}"))?;
    let results: Vec<Result<(), String>> = futures_util::stream::iter(plans)
        .map(|plan| floor_app(&clients, plan))
        .buffered(APP_CONCURRENCY)
        .collect()
        .await;
    let wall = started.elapsed();
    results.into_iter().collect::<Result<Vec<()>, String>>()?;
    Ok(wall)
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

async fn floor_app(c: &FloorClients, plan: &FloorApp) -> Result<(), String> {
    let until_ms = c.now_ms + LAMBDA_TIMEOUT.as_millis() as i64;
    c.dynamodb
        .query()
        .table_name(&c.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", s(&plan.pk))
        .scan_index_forward(false)
        .consistent_read(true)
        .limit(500)
        .send()
        .await
        .map_err(|e| format!("floor query: {e:?}"))?;
    for page in &plan.pages {
        let response = c
            .http
            .get(page)
            .bearer_auth(&c.token)
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("floor page: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("floor page: {}", response.status()));
        }
        response
            .bytes()
            .await
            .map_err(|e| format!("floor page: {e}"))?;
    }
    // The relay takes the lease once it knows it has something to write.
    c.dynamodb
        .update_item()
        .table_name(&c.table)
        .key("pk", s(&plan.pk))
        .key("sk", s("lease"))
        .update_expression("SET holder = :me, lease_until_ms = :until, #ttl = :ttl ADD #gen :one")
        .condition_expression(
            "(attribute_not_exists(lease_until_ms) OR lease_until_ms < :now) AND attribute_not_exists(#gen)",
        )
        .expression_attribute_names("#gen", "gen")
        .expression_attribute_names("#ttl", "expires_at")
        .expression_attribute_values(":me", s(&c.holder))
        .expression_attribute_values(":until", n(until_ms))
        .expression_attribute_values(":ttl", n(until_ms / 1_000 + 30 * 86_400))
        .expression_attribute_values(":now", n(c.now_ms))
        .expression_attribute_values(":one", n(1))
        .send()
        .await
        .map_err(|e| format!("floor lease: {e:?}"))?;
    let baseline_ns = i128::from(c.now_ms) * 1_000_000
        - i128::from(BACKLOG_BACKFILL_HOURS) * 3_600 * 1_000_000_000;
    c.dynamodb
        .put_item()
        .table_name(&c.table)
        .item("pk", s(&plan.pk))
        .item("sk", s("state"))
        .item("baseline_ns", n(baseline_ns))
        .item("updated_at", s(&c.stamp))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await
        .map_err(|e| format!("floor state: {e:?}"))?;
    // The relay notes each destination once per app, when it first sees it.
    c.dynamodb
        .put_item()
        .table_name(&c.table)
        .item("pk", s(&plan.pk))
        .item("sk", s("dest#bench"))
        .item("since_ns", n(baseline_ns))
        .item("added_at", s(&c.stamp))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await
        .map_err(|e| format!("floor destination: {e:?}"))?;
    c.http
        .get(&plan.name)
        .bearer_auth(&c.token)
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("floor app name: {e}"))?
        .bytes()
        .await
        .map_err(|e| format!("floor app name: {e}"))?;
    let keep_until = c.now_ms / 1_000 + 30 * 86_400;
    for delivery in &plan.deliveries {
        let response = c
            .http
            .post(&c.webhook)
            .header("Idempotency-Key", &delivery.id)
            .header(header::CONTENT_TYPE, "application/json")
            .body(delivery.body.clone())
            .send()
            .await
            .map_err(|e| format!("floor post: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("floor post: {}", response.status()));
        }
        let update = Update::builder()
            .table_name(&c.table)
            .key("pk", s(&plan.pk))
            .key("sk", s(&delivery.sort_key))
            .update_expression(
                "SET review_id = :id, created_date = :date, delivered_at = :now, #ttl = :ttl \
                 ADD #to :to",
            )
            .condition_expression(
                "attribute_not_exists(pk) OR (attribute_exists(#to) AND NOT contains(#to, :d))",
            )
            .expression_attribute_names("#ttl", "expires_at")
            .expression_attribute_names("#to", "to")
            .expression_attribute_values(":id", s(&delivery.id))
            .expression_attribute_values(":date", s(&delivery.created_date))
            .expression_attribute_values(":now", s(&c.stamp))
            .expression_attribute_values(":ttl", n(keep_until))
            .expression_attribute_values(":to", AttributeValue::Ss(vec!["bench".to_owned()]))
            .expression_attribute_values(":d", s("bench"))
            .build()
            .map_err(|e| e.to_string())?;
        c.dynamodb
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .send()
            .await
            .map_err(|e| format!("floor record: {e:?}"))?;
    }
    // The watermark moves once, at the end, past everything delivered.
    if let Some(last) = plan.deliveries.last() {
        c.dynamodb
            .update_item()
            .table_name(&c.table)
            .key("pk", s(&plan.pk))
            .key("sk", s("state"))
            .update_expression(
                "SET wm = :wm, wm_created_date = :date, wm_review_id = :id, updated_at = :now",
            )
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(wm) OR wm < :wm)")
            .expression_attribute_values(":wm", s(&last.watermark))
            .expression_attribute_values(":date", s(&last.created_date))
            .expression_attribute_values(":id", s(&last.id))
            .expression_attribute_values(":now", s(&c.stamp))
            .send()
            .await
            .map_err(|e| format!("floor watermark: {e:?}"))?;
    }
    c.dynamodb
        .update_item()
        .table_name(&c.table)
        .key("pk", s(&plan.pk))
        .key("sk", s("lease"))
        .update_expression("SET lease_until_ms = :zero REMOVE holder ADD #gen :one")
        .condition_expression("holder = :me")
        .expression_attribute_names("#gen", "gen")
        .expression_attribute_values(":me", s(&c.holder))
        .expression_attribute_values(":zero", n(0))
        .expression_attribute_values(":one", n(1))
        .send()
        .await
        .map_err(|e| format!("floor release: {e:?}"))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Sizes, machine, Apple's budget

struct Sizes {
    relay: u64,
    hello: u64,
    /// Where the package was found and its size, if `make package` has run.
    package: Option<(String, u64)>,
    /// The unzipped `bootstrap` cargo lambda leaves beside it, if there is one.
    bootstrap: Option<(String, u64)>,
}

impl Sizes {
    fn measure(root: &Path, relay: &Path, hello: &Path) -> Sizes {
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        // `make package` builds into `<target dir>/lambda-build`, `make lambda-build` into the
        // target directory itself.
        let target = support::runtime_api::target_dir();
        let first = |candidates: [&str; 2]| {
            candidates.into_iter().find_map(|rel| {
                let path = [target.join(rel), root.join("target").join(rel)]
                    .into_iter()
                    .find(|p| p.exists())?;
                let size = size(&path);
                Some((format!("target/{rel}"), size))
            })
        };
        Sizes {
            relay: size(relay),
            hello: size(hello),
            package: first([
                "lambda/review-relay/bootstrap.zip",
                "lambda-build/lambda/review-relay/bootstrap.zip",
            ]),
            bootstrap: first([
                "lambda/review-relay/bootstrap",
                "lambda-build/lambda/review-relay/bootstrap",
            ]),
        }
    }
}

struct Machine {
    cpu: String,
    cores: usize,
    kernel: String,
    rustc: String,
    moto: String,
}

impl Machine {
    fn describe() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            .unwrap_or_else(|| "unknown CPU".into());
        let rustc = std::process::Command::new("rustc")
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        let moto =
            std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Makefile"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("MOTO_VERSION"))
                .map(|rest| rest.trim_start_matches([' ', ':', '=']).trim().to_owned())
                .unwrap_or_else(|| "?".into());
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            rustc,
            moto,
        }
    }
}

/// Requests an hour to App Store Connect on a 15-minute schedule, from the measured page size
/// and requests per app per idle run.
struct AppleBudget {
    page_size: f64,
    idle_pages_per_app: f64,
    /// (scenario, reviews in the re-read window, requests per run, requests per hour)
    rows: Vec<(String, f64, f64, f64)>,
}

impl AppleBudget {
    fn from_measurements(idle: &Idle, backlog: &Backlog) -> AppleBudget {
        let first = &backlog.relay[0];
        let pages = summary_total(&first.summary, "pages") as f64;
        let fetched = summary_total(&first.summary, "fetched") as f64;
        let page_size = if pages > 0.0 {
            (fetched / pages).round()
        } else {
            PAGE_LIMIT as f64
        };
        let idle_pages_per_app = median(
            &idle
                .second
                .iter()
                .map(|r| r.calls.asc as f64 / idle.apps as f64)
                .collect::<Vec<_>>(),
        );
        let runs_per_hour = 60.0 / SCHEDULE_MINUTES;
        // A run re-reads from the newest review back past the overlap window: the pages holding
        // the window's reviews, plus the page that first reaches older ones.
        let pages_per_run = |per_day: f64| {
            let in_window = per_day * (OVERLAP_HOURS + SCHEDULE_MINUTES / 60.0) / 24.0;
            ((in_window / page_size).floor() + 1.0, in_window)
        };
        let mut rows = Vec::new();
        for (apps, per_day) in [(500.0, 10.0), (1.0, 1_000.0)] {
            let (pages, in_window) = pages_per_run(per_day);
            rows.push((
                format!("{apps} app(s) × {per_day} reviews/day"),
                in_window,
                apps * pages,
                apps * pages * runs_per_hour,
            ));
        }
        AppleBudget {
            page_size,
            idle_pages_per_app,
            rows,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics and the report

fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        })
}

/// `median (min–max)` with `decimals`.
fn spread(values: &[f64], decimals: usize) -> String {
    let (lo, hi) = min_max(values);
    format!(
        "{:.decimals$} ({lo:.decimals$}–{hi:.decimals$})",
        median(values)
    )
}

fn ms(runs: &[Run], f: impl Fn(&Run) -> Duration) -> Vec<f64> {
    runs.iter().map(|r| f(r).as_secs_f64() * 1e3).collect()
}

fn mb(kb: f64) -> f64 {
    kb / 1024.0
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

struct Report {
    machine: Machine,
    sizes: Sizes,
    cold: ColdStart,
    idle: Idle,
    many: Idle,
    backlog: Backlog,
    play: PlayBacklog,
    budget: AppleBudget,
    total: Duration,
}

/// Medians the table and the markdown share.
struct Figures {
    cold_relay: f64,
    cold_hello: f64,
    cold_ratio: f64,
    cold_extra: f64,
    cold_met: bool,
    idle_first_cpu: f64,
    idle_second_cpu: f64,
    backlog_wall: f64,
    backlog_cpu_per_k: f64,
    backlog_rss_mb: f64,
    floor_wall: f64,
    floor_ratio: f64,
    many_first_wall: f64,
    many_cpu_per_app: f64,
}

impl Report {
    fn figures(&self) -> Figures {
        let cold_relay = median(&self.cold.relay_ms);
        let cold_hello = median(&self.cold.hello_ms);
        let cold_ratio = cold_relay / cold_hello;
        let cold_extra = cold_relay - cold_hello;
        let backlog_wall = median(&ms(&self.backlog.relay, |r| r.wall)) / 1e3;
        let floor_wall = median(
            &self
                .backlog
                .floor_wall
                .iter()
                .map(Duration::as_secs_f64)
                .collect::<Vec<_>>(),
        );
        let per_k = self.backlog.reviews as f64 / 1_000.0;
        Figures {
            cold_relay,
            cold_hello,
            cold_ratio,
            cold_extra,
            cold_met: cold_ratio <= COLD_START_RATIO_TARGET
                || cold_extra <= COLD_START_EXTRA_MS_TARGET,
            idle_first_cpu: median(&ms(&self.idle.first, |r| r.cpu)),
            idle_second_cpu: median(&ms(&self.idle.second, |r| r.cpu)),
            backlog_wall,
            backlog_cpu_per_k: median(&ms(&self.backlog.relay, |r| r.cpu)) / per_k,
            backlog_rss_mb: mb(median(
                &self
                    .backlog
                    .relay
                    .iter()
                    .map(|r| r.peak_rss_kb as f64)
                    .collect::<Vec<_>>(),
            )),
            floor_wall,
            floor_ratio: backlog_wall / floor_wall,
            many_first_wall: median(&ms(&self.many.first, |r| r.wall)) / 1e3,
            many_cpu_per_app: median(&ms(&self.many.first, |r| r.cpu)) / self.many.apps as f64,
        }
    }

    /// The compact table for stdout.
    fn table(&self) -> String {
        let f = self.figures();
        let b = &self.backlog;
        let relay_calls = &b.relay[0].calls;
        let mut t = String::new();
        let _ = writeln!(t, "\nreview-relay benchmark (medians)");
        let _ = writeln!(t, "{:-<78}", "");
        let mut row = |name: &str, value: String, target: &str| {
            let _ = writeln!(t, "{name:<34} {value:<28} {target}");
        };
        row(
            "cold start: relay / hello",
            format!(
                "{:.1} / {:.1} ms = {:.2}×",
                f.cold_relay, f.cold_hello, f.cold_ratio
            ),
            &format!(
                "≤1.5× or ≤+5 ms: {} (+{:.1} ms)",
                verdict(f.cold_met),
                f.cold_extra
            ),
        );
        row(
            "idle 5 apps: wall 1st / 2nd",
            format!(
                "{:.1} / {:.1} ms",
                median(&ms(&self.idle.first, |r| r.wall)),
                median(&ms(&self.idle.second, |r| r.wall))
            ),
            "",
        );
        row(
            "idle 5 apps: CPU 1st / 2nd",
            format!("{:.1} / {:.1} ms", f.idle_first_cpu, f.idle_second_cpu),
            &format!(
                "<10 ms: {} / {}",
                verdict(f.idle_first_cpu < IDLE_CPU_TARGET_MS),
                verdict(f.idle_second_cpu < IDLE_CPU_TARGET_MS)
            ),
        );
        let idle_calls = &self.idle.second[0].calls;
        row(
            "idle 5 apps: requests",
            format!(
                "ASC {} DDB {} SM {} hook {}",
                idle_calls.asc,
                idle_calls.dynamodb(),
                idle_calls.secrets(),
                idle_calls.webhook
            ),
            &format!("(1st: SM {})", self.idle.first[0].calls.secrets()),
        );
        row(
            "idle 5 apps: peak RSS",
            format!(
                "{:.1} MB",
                mb(median(
                    &self
                        .idle
                        .first
                        .iter()
                        .map(|r| r.peak_rss_kb as f64)
                        .collect::<Vec<_>>()
                ))
            ),
            "",
        );
        row("backlog 10k: wall", format!("{:.1} s", f.backlog_wall), "");
        row(
            "backlog 10k: CPU per 1,000",
            format!("{:.0} ms", f.backlog_cpu_per_k),
            "",
        );
        row(
            "backlog 10k: peak RSS",
            format!("{:.1} MB", f.backlog_rss_mb),
            &format!(
                "<40 MB: {}",
                verdict(f.backlog_rss_mb < BACKLOG_RSS_TARGET_MB)
            ),
        );
        row(
            "backlog 10k: requests",
            format!(
                "ASC {} DDB {} hook {}",
                relay_calls.asc,
                relay_calls.dynamodb(),
                relay_calls.webhook
            ),
            &format!("SM {}", relay_calls.secrets()),
        );
        row(
            "backlog floor / relay÷floor",
            format!("{:.1} s / {:.2}×", f.floor_wall, f.floor_ratio),
            &format!("≤1.3×: {}", verdict(f.floor_ratio <= FLOOR_RATIO_TARGET)),
        );
        let p = &self.play;
        let play_calls = &p.relay[0].calls;
        row(
            "Play backlog 2k: wall",
            format!("{:.1} s", median(&ms(&p.relay, |r| r.wall)) / 1e3),
            "",
        );
        row(
            "Play backlog 2k: CPU per 1,000",
            format!(
                "{:.0} ms",
                median(&ms(&p.relay, |r| r.cpu)) / (p.reviews as f64 / 1e3)
            ),
            "",
        );
        row(
            "Play backlog 2k: peak RSS",
            format!(
                "{:.1} MB",
                mb(median(
                    &p.relay
                        .iter()
                        .map(|r| r.peak_rss_kb as f64)
                        .collect::<Vec<_>>()
                ))
            ),
            "",
        );
        row(
            "Play backlog 2k: requests",
            format!(
                "GET {} token {} DDB {} hook {}",
                play_calls.play_gets,
                play_calls.play_tokens,
                play_calls.dynamodb(),
                play_calls.webhook
            ),
            &format!("warm run: GET {}", p.warm[0].calls.play_gets),
        );
        row(
            "500 idle apps: wall / CPU per app",
            format!("{:.1} s / {:.2} ms", f.many_first_wall, f.many_cpu_per_app),
            &format!(
                "{:.1} ms/app; <15 min: {}",
                f.many_first_wall * 1e3 / self.many.apps as f64,
                verdict(f.many_first_wall < SCHEDULE_MINUTES * 60.0)
            ),
        );
        row(
            "binary / hello",
            format!(
                "{:.1} / {:.1} MB",
                self.sizes.relay as f64 / 1e6,
                self.sizes.hello as f64 / 1e6
            ),
            &match (&self.sizes.package, &self.sizes.bootstrap) {
                (Some((_, size)), _) => format!("zip {:.1} MB", *size as f64 / 1e6),
                (None, Some((_, size))) => {
                    format!("zip not built (bootstrap {:.1} MB)", *size as f64 / 1e6)
                }
                (None, None) => "zip not built".into(),
            },
        );
        for (scenario, _, _, per_hour) in &self.budget.rows {
            row(
                &format!("Apple: {scenario}"),
                format!("{per_hour:.0} requests/hour"),
                &format!(
                    "of 3,500: {:.0}%",
                    per_hour / APPLE_REQUESTS_PER_HOUR * 100.0
                ),
            );
        }
        let _ = writeln!(t, "{:-<78}", "");
        t
    }

    fn markdown(&self) -> String {
        let f = self.figures();
        let m = &self.machine;
        let b = &self.backlog;
        let mut md = String::new();
        let _ = writeln!(
            md,
            "Measured {} on {} × {} (Linux {}), {}, moto {}; `make bench` took {:.0} s.\n",
            OffsetDateTime::now_utc()
                .replace_nanosecond(0)
                .ok()
                .and_then(|t| t.format(&Rfc3339).ok())
                .unwrap_or_default(),
            m.cores,
            m.cpu,
            m.kernel,
            m.rustc,
            m.moto,
            self.total.as_secs_f64()
        );
        let _ = writeln!(
            md,
            "Figures are medians, with the smallest and largest run in brackets. CPU time is the \
             process's CPU clock (all threads, nanoseconds) from the moment the function waits for \
             the event to the moment it waits for the next one; `utime+stime` is the same from \
             /proc/<pid>/stat, which counts in 10 ms ticks. Requests are counted by the services: \
             the App Store Connect and Google Play doubles and the receiver record each request, \
             and a counting proxy in the bench sits between the function and moto (DynamoDB, \
             Secrets Manager).\n"
        );

        let _ = writeln!(md, "## Targets\n");
        let _ = writeln!(md, "| target | measured | |\n|---|---|---|");
        let _ = writeln!(
            md,
            "| cold start within 1.5× of hello, or within 5 ms of it | {:.1} ms vs {:.1} ms: {:.2}×, +{:.1} ms | {} |",
            f.cold_relay,
            f.cold_hello,
            f.cold_ratio,
            f.cold_extra,
            verdict(f.cold_met)
        );
        let _ = writeln!(
            md,
            "| idle run (5 apps, nothing new) under 10 ms CPU | {:.1} ms on a fresh process's first invocation, {:.1} ms on the next | first: {}, next: {} |",
            f.idle_first_cpu,
            f.idle_second_cpu,
            verdict(f.idle_first_cpu < IDLE_CPU_TARGET_MS),
            verdict(f.idle_second_cpu < IDLE_CPU_TARGET_MS)
        );
        let _ = writeln!(
            md,
            "| backlog of 10,000 reviews under 40 MB peak RSS | {:.1} MB | {} |",
            f.backlog_rss_mb,
            verdict(f.backlog_rss_mb < BACKLOG_RSS_TARGET_MB)
        );
        let _ = writeln!(
            md,
            "| backlog within 1.3× of the same requests with no processing | {:.1} s vs {:.1} s: {:.2}× | {} |",
            f.backlog_wall,
            f.floor_wall,
            f.floor_ratio,
            verdict(f.floor_ratio <= FLOOR_RATIO_TARGET)
        );
        let _ = writeln!(
            md,
            "| 500 idle apps inside a 15-minute schedule | {:.1} s | {} |",
            f.many_first_wall,
            verdict(f.many_first_wall < SCHEDULE_MINUTES * 60.0)
        );
        for (scenario, _, _, per_hour) in &self.budget.rows {
            let _ = writeln!(
                md,
                "| Apple: {scenario} within ~3,500 requests/hour | {per_hour:.0} an hour ({:.0}%) | {} |",
                per_hour / APPLE_REQUESTS_PER_HOUR * 100.0,
                verdict(*per_hour < APPLE_REQUESTS_PER_HOUR)
            );
        }

        let _ = writeln!(
            md,
            "\n## Cold start\n\nTime from spawning the process to its first \
             `GET /2018-06-01/runtime/invocation/next` on the Runtime API double, {} spawns each \
             (after one discarded spawn each; the two binaries alternate). `hello` is \
             examples/hello.rs: lambda_runtime's default tracing set-up and a handler that returns \
             the event, built with the same profile. Peak RSS is VmHWM at that moment.\n",
            self.cold.relay_ms.len()
        );
        let _ = writeln!(
            md,
            "| binary | to first /next (ms) | peak RSS at that point (MB) |\n|---|---|---|"
        );
        let rss = |v: &[f64]| spread(&v.iter().map(|kb| mb(*kb)).collect::<Vec<_>>(), 1);
        let _ = writeln!(
            md,
            "| review-relay | {} | {} |",
            spread(&self.cold.relay_ms, 2),
            rss(&self.cold.relay_rss_kb)
        );
        let _ = writeln!(
            md,
            "| hello | {} | {} |",
            spread(&self.cold.hello_ms, 2),
            rss(&self.cold.hello_rss_kb)
        );
        let _ = writeln!(
            md,
            "| ratio | {:.2}× (+{:.2} ms) | |",
            f.cold_ratio, f.cold_extra
        );

        for (title, idle, note) in [
            (
                "Idle: 5 apps, nothing new",
                &self.idle,
                "Each app holds 30 reviews spread over the last 70 hours (about ten a day), all \
                 delivered by a set-up run, so every run re-reads them inside the 72-hour overlap \
                 and finds nothing new.",
            ),
            (
                "Idle: 500 apps, nothing new",
                &self.many,
                "Each app holds one review from an hour ago, delivered by a set-up run. Each \
                 process serves one invocation: at 15-minute intervals a Lambda is often cold.",
            ),
        ] {
            let _ = writeln!(
                md,
                "\n## {title}\n\n{note} {} fresh processes; the first invocation reads the \
                 secret and signs a token, a second one (a warm Lambda) does neither.\n",
                idle.first.len()
            );
            let _ = writeln!(
                md,
                "| invocation | wall (ms) | CPU (ms) | utime+stime (ms) | peak RSS (MB) | App Store Connect | DynamoDB | Secrets Manager | webhook |\n|---|---|---|---|---|---|---|---|---|"
            );
            for (name, runs) in [("first", &idle.first), ("second", &idle.second)] {
                let Some(c) = runs.first().map(|r| &r.calls) else {
                    continue;
                };
                let _ = writeln!(
                    md,
                    "| {name} | {} | {} | {} | {} | {} | {} ({}) | {} | {} |",
                    spread(&ms(runs, |r| r.wall), 1),
                    spread(&ms(runs, |r| r.cpu), 1),
                    spread(&ms(runs, |r| r.ticks_cpu), 0),
                    spread(
                        &runs
                            .iter()
                            .map(|r| mb(r.peak_rss_kb as f64))
                            .collect::<Vec<_>>(),
                        1
                    ),
                    c.asc,
                    c.dynamodb(),
                    c.dynamodb_ops(),
                    c.secrets(),
                    c.webhook
                );
            }
            let walls = ms(&idle.first, |r| r.wall);
            let cpus = ms(&idle.first, |r| r.cpu);
            let moto: Vec<f64> = idle
                .first
                .iter()
                .map(|r| r.calls.moto_time().as_secs_f64() * 1e3)
                .collect();
            let _ = writeln!(
                md,
                "\nPer app on a first invocation: {:.2} ms of wall time, {:.2} ms of CPU. \
                 Waiting for moto, summed over this invocation's DynamoDB and Secrets Manager \
                 requests: {:.0} ms ({}, mean per request). The relay has {APP_CONCURRENCY} apps \
                 under way at a time and moto (one Python process) works through their requests \
                 one at a time, so the waits overlap and their sum exceeds the wall time when \
                 moto is the bottleneck. Set-up run: {:.1} s, {} deliveries.",
                median(&walls) / idle.apps as f64,
                median(&cpus) / idle.apps as f64,
                median(&moto),
                idle.first[0].calls.moto_ops(),
                idle.setup.wall.as_secs_f64(),
                summary_total(&idle.setup.summary, "delivered")
            );
        }

        let relay_calls = &b.relay[0].calls;
        let floor_calls = &b.floor_calls[0];
        let _ = writeln!(
            md,
            "\n## Backlog: 10,000 reviews\n\n{BACKLOG_APPS} apps × {BACKLOG_REVIEWS_PER_APP} \
             reviews, one every {BACKLOG_SPACING_SECS} s per app (the oldest {:.1} hours old), \
             `BACKFILL_HOURS={BACKLOG_BACKFILL_HOURS}`, a fresh table each run, a deadline of 15 \
             minutes; every review reached the receiver exactly once. {} runs of the relay (a \
             fresh process each) alternate with {} runs of the floor.\n",
            (BACKLOG_REVIEWS_PER_APP as f64 * BACKLOG_SPACING_SECS as f64 + 60.0) / 3_600.0,
            b.relay.len(),
            b.floor_wall.len()
        );
        let _ = writeln!(md, "| | relay | floor |\n|---|---|---|");
        let _ = writeln!(
            md,
            "| wall (s) | {} | {} |",
            spread(
                &b.relay
                    .iter()
                    .map(|r| r.wall.as_secs_f64())
                    .collect::<Vec<_>>(),
                1
            ),
            spread(
                &b.floor_wall
                    .iter()
                    .map(Duration::as_secs_f64)
                    .collect::<Vec<_>>(),
                1
            )
        );
        let per_k = b.reviews as f64 / 1_000.0;
        let _ = writeln!(
            md,
            "| CPU per 1,000 reviews (ms) | {} | |",
            spread(
                &ms(&b.relay, |r| r.cpu)
                    .iter()
                    .map(|v| v / per_k)
                    .collect::<Vec<_>>(),
                0
            )
        );
        let _ = writeln!(
            md,
            "| utime+stime per 1,000 reviews (ms) | {} | |",
            spread(
                &ms(&b.relay, |r| r.ticks_cpu)
                    .iter()
                    .map(|v| v / per_k)
                    .collect::<Vec<_>>(),
                0
            )
        );
        let _ = writeln!(
            md,
            "| peak RSS (MB) | {} | |",
            spread(
                &b.relay
                    .iter()
                    .map(|r| mb(r.peak_rss_kb as f64))
                    .collect::<Vec<_>>(),
                1
            )
        );
        let _ = writeln!(
            md,
            "| App Store Connect requests | {} | {} |",
            relay_calls.asc, floor_calls.asc
        );
        let _ = writeln!(
            md,
            "| DynamoDB requests | {} ({}) | {} ({}) |",
            relay_calls.dynamodb(),
            relay_calls.dynamodb_ops(),
            floor_calls.dynamodb(),
            floor_calls.dynamodb_ops()
        );
        let _ = writeln!(
            md,
            "| Secrets Manager requests | {} | {} |",
            relay_calls.secrets(),
            floor_calls.secrets()
        );
        let moto_s = |calls: Vec<&Calls>| {
            spread(
                &calls
                    .iter()
                    .map(|c| c.moto_time().as_secs_f64())
                    .collect::<Vec<_>>(),
                1,
            )
        };
        let _ = writeln!(
            md,
            "| waiting for moto, summed over requests (s; {APP_CONCURRENCY} apps overlap) | {} | {} |",
            moto_s(b.relay.iter().map(|r| &r.calls).collect()),
            moto_s(b.floor_calls.iter().collect())
        );
        let _ = writeln!(
            md,
            "| requests to moto × mean wait | {} | {} |",
            relay_calls.moto_ops(),
            floor_calls.moto_ops()
        );
        let _ = writeln!(
            md,
            "| webhook posts | {} | {} |",
            relay_calls.webhook, floor_calls.webhook
        );
        let _ = writeln!(md, "| relay ÷ floor | {:.2}× | |", f.floor_ratio);
        let same = b
            .relay
            .iter()
            .zip(&b.floor_calls)
            .all(|(r, fc)| r.calls.same_shape(fc));
        let _ = writeln!(
            md,
            "\nThe floor replays the relay's requests from the bench itself with reqwest and \
             aws-sdk-dynamodb: the secret, then per app ({APP_CONCURRENCY} apps at a time, as the \
             relay) the state query, the {PAGE_LIMIT}-review pages, the lease, the state item, \
             the destination's note, the app's name, then for each review, oldest first, one POST \
             and one TransactWriteItems with the same items, then the watermark and the lease \
             release. Bodies, URLs and items are prepared before the \
             clock starts; nothing is parsed. Same requests per service and operation as the \
             relay in every round: {}.",
            if same {
                "yes"
            } else {
                "NO (see the counts above)"
            }
        );

        self.play_markdown(&mut md, f.backlog_cpu_per_k);

        let _ = writeln!(
            md,
            "\n## Size\n\n| file | bytes |\n|---|---|\n| target/release/review-relay (release profile, as built for the tests) | {} |\n| target/release/examples/hello | {} |",
            self.sizes.relay, self.sizes.hello
        );
        match &self.sizes.package {
            Some((path, size)) => {
                let _ = writeln!(
                    md,
                    "| {path} (x86-64, `make package`: thin LTO, one codegen unit, stripped, panic=abort) | {size} |"
                );
            }
            None => {
                let _ = writeln!(md, "| Lambda zip (x86-64, `make package`) | not built |");
            }
        }
        if let Some((path, size)) = &self.sizes.bootstrap {
            let _ = writeln!(
                md,
                "| {path} (the unzipped binary cargo lambda left there; x86-64) | {size} |"
            );
        }

        let bd = &self.budget;
        let _ = writeln!(
            md,
            "\n## Apple's request budget\n\nMeasured: {:.0} reviews a page (the backlog's \
             fetched ÷ pages) and {:.1} App Store Connect requests per app on an idle run with \
             ~30 reviews in the window. A run on the 15-minute schedule re-reads from the newest \
             review back past the {OVERLAP_HOURS:.0}-hour overlap: the pages holding the \
             window's reviews plus the page that first reaches older ones (assuming the app has \
             older reviews), 4 runs an hour, no retries.\n",
            bd.page_size, bd.idle_pages_per_app
        );
        let _ = writeln!(
            md,
            "| scenario | reviews in the window | requests a run | requests an hour | share of ~3,500/hour |\n|---|---|---|---|---|"
        );
        for (scenario, in_window, per_run, per_hour) in &bd.rows {
            let _ = writeln!(
                md,
                "| {scenario} | {in_window:.0} | {per_run:.0} | {per_hour:.0} | {:.0}% |",
                per_hour / APPLE_REQUESTS_PER_HOUR * 100.0
            );
        }
        let _ = writeln!(
            md,
            "\nAt ten reviews a day an app costs one request a run, so one key covers about {:.0} \
             apps on this schedule. An app's first run with a backfill reads its whole backfill \
             window once.",
            APPLE_REQUESTS_PER_HOUR / (60.0 / SCHEDULE_MINUTES)
        );
        self.play_budget_markdown(&mut md);
        md
    }

    /// The Google Play backlog section.
    fn play_markdown(&self, md: &mut String, app_store_cpu_per_k: f64) {
        let p = &self.play;
        let first = &p.relay[0];
        let warm = &p.warm[0];
        let _ = writeln!(
            md,
            "\n## Backlog: 2,000 Google Play reviews\n\nOne Google Play app (`PLAY_PACKAGES` only, \
             a secret holding the service account's key file and the webhook) with \
             {PLAY_BACKLOG_REVIEWS} reviews, one every {BACKLOG_SPACING_SECS} s by `lastModified` \
             (the oldest {:.1} hours old), each a title and a body, \
             `BACKFILL_HOURS={BACKLOG_BACKFILL_HOURS}`, a fresh table each run, a deadline of 15 \
             minutes; every review reached the receiver exactly once. {} runs, a fresh process \
             each; each process then serves a second invocation with nothing new (a warm run, \
             which re-reads the {OVERLAP_HOURS:.0}-hour overlap window: here all \
             {PLAY_BACKLOG_REVIEWS} reviews). No floor is measured for Google Play.\n",
            (PLAY_BACKLOG_REVIEWS as f64 * BACKLOG_SPACING_SECS as f64 + 60.0) / 3_600.0,
            p.relay.len(),
        );
        let _ = writeln!(
            md,
            "| | backlog (first invocation) | warm run, nothing new |\n|---|---|---|"
        );
        let secs = |runs: &[Run]| {
            spread(
                &runs
                    .iter()
                    .map(|r| r.wall.as_secs_f64())
                    .collect::<Vec<_>>(),
                2,
            )
        };
        let _ = writeln!(md, "| wall (s) | {} | {} |", secs(&p.relay), secs(&p.warm));
        let _ = writeln!(
            md,
            "| CPU (ms) | {} | {} |",
            spread(&ms(&p.relay, |r| r.cpu), 0),
            spread(&ms(&p.warm, |r| r.cpu), 1)
        );
        let per_k = p.reviews as f64 / 1_000.0;
        let _ = writeln!(
            md,
            "| CPU per 1,000 reviews (ms) | {} | |",
            spread(
                &ms(&p.relay, |r| r.cpu)
                    .iter()
                    .map(|v| v / per_k)
                    .collect::<Vec<_>>(),
                0
            )
        );
        let _ = writeln!(
            md,
            "| utime+stime (ms) | {} | {} |",
            spread(&ms(&p.relay, |r| r.ticks_cpu), 0),
            spread(&ms(&p.warm, |r| r.ticks_cpu), 0)
        );
        let rss = |runs: &[Run]| {
            spread(
                &runs
                    .iter()
                    .map(|r| mb(r.peak_rss_kb as f64))
                    .collect::<Vec<_>>(),
                1,
            )
        };
        let _ = writeln!(
            md,
            "| peak RSS (MB; the process's, so the warm run's includes the backlog's) | {} | {} |",
            rss(&p.relay),
            rss(&p.warm)
        );
        let _ = writeln!(
            md,
            "| reviews read (summary `fetched`) in pages (`pages`) | {} in {} | {} in {} |",
            summary_total(&first.summary, "fetched"),
            summary_total(&first.summary, "pages"),
            summary_total(&warm.summary, "fetched"),
            summary_total(&warm.summary, "pages")
        );
        let _ = writeln!(
            md,
            "| Google Play requests: `reviews.list` GETs, token exchanges | {}, {} | {}, {} |",
            first.calls.play_gets,
            first.calls.play_tokens,
            warm.calls.play_gets,
            warm.calls.play_tokens
        );
        let _ = writeln!(
            md,
            "| DynamoDB requests | {} ({}) | {} ({}) |",
            first.calls.dynamodb(),
            first.calls.dynamodb_ops(),
            warm.calls.dynamodb(),
            warm.calls.dynamodb_ops()
        );
        let _ = writeln!(
            md,
            "| Secrets Manager requests | {} | {} |",
            first.calls.secrets(),
            warm.calls.secrets()
        );
        let _ = writeln!(
            md,
            "| requests to moto × mean wait | {} | {} |",
            first.calls.moto_ops(),
            warm.calls.moto_ops()
        );
        let _ = writeln!(
            md,
            "| webhook posts | {} | {} |",
            first.calls.webhook, warm.calls.webhook
        );
        let _ = writeln!(
            md,
            "\nCPU per 1,000 reviews against the App Store backlog above ({app_store_cpu_per_k:.0} ms): \
             {:.2}×. Each review costs the same one POST and one TransactWriteItems in either \
             store; Google Play adds the RS256 assertion and the token exchange once per process, \
             and pages of {PLAY_PAGE_LIMIT} instead of {PAGE_LIMIT}.",
            median(&ms(&p.relay, |r| r.cpu)) / per_k / app_store_cpu_per_k
        );
    }

    /// What a Google Play app spends of its 200 GETs an hour on the 15-minute schedule.
    fn play_budget_markdown(&self, md: &mut String) {
        let p = &self.play;
        let first = &p.relay[0];
        let pages = summary_total(&first.summary, "pages") as f64;
        let fetched = summary_total(&first.summary, "fetched") as f64;
        let page_size = if pages > 0.0 {
            (fetched / pages).round()
        } else {
            PLAY_PAGE_LIMIT as f64
        };
        let warm_gets = median(
            &p.warm
                .iter()
                .map(|r| r.calls.play_gets as f64)
                .collect::<Vec<_>>(),
        );
        let runs_per_hour = 60.0 / SCHEDULE_MINUTES;
        let _ = writeln!(
            md,
            "\n## Google Play's request budget\n\nMeasured: {page_size:.0} reviews a page (the \
             Google Play backlog's fetched ÷ pages) and {warm_gets:.0} `reviews.list` GETs on a \
             warm run whose {OVERLAP_HOURS:.0}-hour overlap window holds \
             {PLAY_BACKLOG_REVIEWS} reviews. Google allows {PLAY_GETS_PER_HOUR:.0} GETs an hour \
             per app; the relay stops optional re-reads of the overlap window once 150 of them \
             are used. Counted as for Apple (the pages holding the window's reviews plus the \
             page that first reaches older ones, {runs_per_hour:.0} runs an hour, no retries):\n"
        );
        let _ = writeln!(
            md,
            "| scenario | reviews in the window | GETs a run | GETs an hour | share of 200/hour |\n|---|---|---|---|---|"
        );
        let mut rows = Vec::new();
        for per_day in [10.0, 1_000.0] {
            let in_window = per_day * (OVERLAP_HOURS + SCHEDULE_MINUTES / 60.0) / 24.0;
            let per_run = (in_window / page_size).floor() + 1.0;
            rows.push((format!("1 app × {per_day} reviews/day"), in_window, per_run));
        }
        rows.push((
            "measured: the warm run above".to_owned(),
            PLAY_BACKLOG_REVIEWS as f64,
            warm_gets,
        ));
        for (scenario, in_window, per_run) in rows {
            let per_hour = per_run * runs_per_hour;
            let _ = writeln!(
                md,
                "| {scenario} | {in_window:.0} | {per_run:.0} | {per_hour:.0} | {:.0}% |",
                per_hour / PLAY_GETS_PER_HOUR * 100.0
            );
        }
    }
}

const BEGIN: &str = "<!-- generated by `make bench`: begin -->";
const END: &str = "<!-- generated by `make bench`: end -->";

/// Replaces the generated part of BENCHMARKS.md, keeping what is written around it.
fn write_benchmarks_md(path: &Path, generated: &str) -> std::io::Result<()> {
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let text = match (existing.find(BEGIN), existing.find(END)) {
        (Some(begin), Some(end)) if begin < end => format!(
            "{}{BEGIN}\n{generated}{}",
            &existing[..begin],
            &existing[end..]
        ),
        _ => format!(
            "# Benchmarks\n\n`make bench` builds the release binary and runs it as a Lambda (through \
             the Runtime API double) against the App Store Connect and Google Play doubles, moto \
             and a webhook receiver on 127.0.0.1, then rewrites the part of this file between the markers. \
             Local services stand in for AWS and Apple, so absolute times say little about \
             production; ratios, CPU, memory and request counts carry over.\n\n{BEGIN}\n{generated}{END}\n"
        ),
    };
    std::fs::write(path, text)
}
