//! A bare HTTPS server on 127.0.0.1 with the test certificate for `localhost` and 127.0.0.1
//! (tests/fixtures/tls, issued by the test CA `ca.pem`): every request gets the same response.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The fixed answer: an AWS JSON-protocol error, so an AWS SDK client that gets through TLS
/// fails with a service error.
pub const STATUS: u16 = 400;
pub const BODY: &str = r#"{"__type":"ResourceNotFoundException","message":"no such thing"}"#;

/// The directory of the test CA and server certificate.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls")
}

/// A running server; dropping it stops it.
pub struct HttpsServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl HttpsServer {
    /// Binds 127.0.0.1:0 and serves on its own thread until dropped. Panics if it cannot start.
    pub fn start() -> HttpsServer {
        let dir = fixtures();
        let chain = vec![CertificateDer::from_pem_file(dir.join("server.pem")).unwrap()];
        let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
        let config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("double-https".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    let accept_loop = async {
                        while let Ok((tcp, _)) = listener.accept().await {
                            let acceptor = acceptor.clone();
                            tokio::spawn(async move {
                                // A client that refuses the certificate ends here.
                                if let Ok(tls) = acceptor.accept(tcp).await {
                                    let _ = answer(tls).await;
                                }
                            });
                        }
                    };
                    tokio::select! {
                        _ = accept_loop => {}
                        _ = shutdown_rx => {}
                    }
                });
            })
            .unwrap();
        HttpsServer {
            addr,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }

    /// `https://localhost:<port>`
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }
}

/// Reads one request (head and `Content-Length` body), writes the fixed response, closes.
async fn answer<S: AsyncReadExt + AsyncWriteExt + Unpin>(mut stream: S) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
        if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while request.len() < head_end + length {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let response = format!(
        "HTTP/1.1 {STATUS} Bad Request\r\ncontent-type: application/x-amz-json-1.1\r\n\
         x-amzn-requestid: 00000000-0000-0000-0000-000000000000\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
