//! Slack as a caller: the requests a Slack app sends when someone clicks in a message.

pub mod answered;
pub mod modal;
pub mod request;
pub mod web_api;
