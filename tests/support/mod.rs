//! Test doubles and helpers shared by the integration tests and `examples/demo.rs`.
//!
//! Every double listens on 127.0.0.1 with a port chosen by the OS and runs on its own
//! thread with its own tokio runtime, so it keeps answering whatever the caller does
//! (current-thread `#[tokio::test]`, `#[tokio::main]`, or blocking code).
#![allow(dead_code)]

pub mod asc;
pub mod https;
pub mod keys;
pub mod moto;
pub mod play;
pub mod receiver;
pub mod runtime_api;
mod server;
pub mod slack;
pub mod template;
pub mod world;
