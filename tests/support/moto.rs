//! A local moto server (DynamoDB, Secrets Manager) in a child python process.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, Region};

/// moto imports slowly (a few seconds on a busy 2-core machine).
const START_TIMEOUT: Duration = Duration::from_secs(90);

pub const REGION: &str = "us-east-1";

/// A running moto server; dropping it kills the process.
pub struct Moto {
    child: Child,
    port: u16,
    // Held open: moto_server.py exits when it reads EOF, i.e. when this process dies.
    _stdin: ChildStdin,
    stderr: Arc<Mutex<String>>,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Moto {
    /// Starts a fresh moto server. Panics with a clear message if it cannot.
    pub fn start() -> Moto {
        Moto::start_script(&repo_root().join("tests/support/moto_server.py"))
    }

    /// [`start`](Self::start) with another launcher script, which must print `PORT <n>` and exit
    /// at EOF on stdin as moto_server.py does.
    pub fn start_script(script: &Path) -> Moto {
        let root = repo_root();
        let python = root.join(".venv-moto/bin/python");
        if !python.exists() {
            panic!(
                "moto venv missing ({} not found): run `make venv` first",
                python.display()
            );
        }
        let mut child = Command::new(&python)
            .arg(script)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {} {}: {e}", python.display(), script.display())
            });

        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr_pipe = child.stderr.take().expect("piped stderr");

        // Drained continuously so moto never blocks on a full pipe; kept for panic messages.
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                stderr_sink
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });

        let (port_tx, port_rx) = mpsc::channel::<u16>();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent
                    && let Some(port) = line.strip_prefix("PORT ")
                    && let Ok(port) = port.trim().parse::<u16>()
                {
                    let _ = port_tx.send(port);
                    sent = true;
                }
            }
        });

        match port_rx.recv_timeout(START_TIMEOUT) {
            Ok(port) => Moto {
                child,
                port,
                _stdin: stdin,
                stderr,
            },
            Err(_) => {
                let status = child.try_wait().ok().flatten();
                let _ = child.kill();
                let _ = child.wait();
                // Give the stderr thread a moment to collect the traceback.
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "moto server did not start within {START_TIMEOUT:?} (exit status: {status:?}); stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        }
    }

    /// One moto per test process, started on first use. Tests sharing it must use
    /// [`unique_name`] for tables and secrets. Never dropped: the server exits when
    /// this process closes its stdin at exit.
    pub fn shared() -> &'static Moto {
        static SHARED: OnceLock<Moto> = OnceLock::new();
        SHARED.get_or_init(Moto::start)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What moto has written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SDK config pointing at `endpoint` with region us-east-1 and dummy static credentials.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "test-static",
        ))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// Environment for a child process (the Lambda binary) to reach moto at `endpoint`.
pub fn aws_env(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A name no other test (in this or another process) uses: `<prefix>-<pid>-<counter>-<nanos>`.
/// Valid as a DynamoDB table name and a Secrets Manager secret name.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}
