//! Runs an axum router on 127.0.0.1:0 on a dedicated thread.

use std::net::SocketAddr;
use std::thread::JoinHandle;

use axum::Router;
use tokio::sync::oneshot;

/// A running HTTP server; dropping it stops the server.
pub struct BackgroundServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl BackgroundServer {
    /// Binds 127.0.0.1:0 and serves the router that `make_router` builds for the bound
    /// address (doubles need it for absolute links) until dropped. Panics if it cannot start.
    pub fn spawn(name: &str, make_router: impl FnOnce(SocketAddr) -> Router) -> BackgroundServer {
        // Bound synchronously so the address is known (and connectable) before `spawn` returns.
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("{name}: cannot bind 127.0.0.1:0: {e}"));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("{name}: cannot make listener non-blocking: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{name}: no local address: {e}"));
        let router = make_router(addr);
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let thread_name = name.to_string();
        let thread = std::thread::Builder::new()
            .name(format!("double-{name}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| panic!("{thread_name}: cannot build tokio runtime: {e}"));
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .unwrap_or_else(|e| panic!("{thread_name}: cannot adopt listener: {e}"));
                    // Not a graceful shutdown: long-polls (runtime API) would never finish.
                    // Leaving block_on drops the runtime, which cancels open connections.
                    tokio::select! {
                        result = axum::serve(listener, router) => {
                            if let Err(e) = result {
                                eprintln!("{thread_name}: server stopped: {e}");
                            }
                        }
                        _ = shutdown_rx => {}
                    }
                });
            })
            .unwrap_or_else(|e| panic!("{name}: cannot spawn server thread: {e}"));
        BackgroundServer {
            addr,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
