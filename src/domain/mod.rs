//! The business rules: what a review is, which reviews are new, and in which order they go out.
//! Pure code: no I/O, no SDK types.

mod answer;
mod app_id;
mod delivery;
mod progress;
mod review;
mod route;
mod state;
mod territory;
mod window;

pub use answer::{
    APP_STORE_MAX_CHARS, AnswerText, AnswerTextError, GOOGLE_PLAY_MAX_CHARS, max_chars,
    text_digest, with_noted_answers,
};
pub use app_id::{AppId, AppIdError, Store};
pub use delivery::{
    Addressee, WatermarkMove, due_to, has_work, is_due, new_destination_start, queues,
    watermark_move,
};
pub use progress::{
    MAX_STALLS, Outcome, Progress, RescanRead, Scan, failing_since_after, give_up_after_hours,
    given_up,
};
#[cfg(test)]
pub(crate) use review::sample as sample_review;
pub use review::{DeveloperResponse, Edit, Review, ReviewKey, StoreDetails, parse_instant};
pub use route::Route;
pub use state::{AppState, Delivered, FoundRecord, Version, Watermark, select_new};
pub use territory::Territory;
pub use window::{COVERAGE_MARGIN_HOURS, Lookback, coverage_floor, max_reach_hours};
