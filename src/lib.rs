//! review-relay: relays new App Store customer reviews to team chat webhooks.
//!
//! [`relay::run_once`] is the use case; [`handler::Relay`] wires it to AWS, App Store Connect and
//! webhooks for the Lambda runtime and the `invoke` command.

pub mod adapters;
pub mod config;
pub mod domain;
pub mod event;
pub mod handler;
pub mod logging;
pub mod ports;
pub mod preview;
pub mod relay;
pub mod reply;
pub mod secret;
pub mod slack_reply;
pub mod summary;

pub use relay::{AppStatus, AppSummary, RunOptions, RunSummary, run_once};
