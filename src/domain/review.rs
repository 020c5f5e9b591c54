use std::cmp::Ordering;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Store;

/// One customer review as review-relay uses it, from either store. Every text attribute is
/// optional in the stores' APIs; `created_date` is required here because without it a review has
/// no place in the order. A Google Play review has no creation time: its `created_date` is the
/// `lastModified` of its user comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub store: Store,
    pub id: String,
    pub rating: Option<u8>,
    pub title: Option<String>,
    pub body: Option<String>,
    pub reviewer_nickname: Option<String>,
    /// ISO 3166-1 alpha-3 code, as Apple sends it.
    pub territory: Option<String>,
    /// Apple's string exactly as received (with its UTC offset).
    pub created_date: String,
    pub response: Option<DeveloperResponse>,
    /// What only some stores say (Google Play): the reviewer's language as a BCP 47 tag, the
    /// device, the app version reviewed, and the reviewer's own words when `body` holds a
    /// translation.
    pub details: StoreDetails,
    /// Set on a later version of a review already delivered: its text or rating changed.
    pub edit: Option<Edit>,
    key: ReviewKey,
}

/// What a later version of a delivered review carries. Its `id` (and so its delivery records
/// and its `Idempotency-Key`) is `<original id>@<digest>`, so each version goes to each
/// destination once, and receivers that drop a repeated key do not drop the edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub original_id: String,
    /// The rating of the version delivered before, when it differs.
    pub previous_rating: Option<u8>,
}

/// Fields only Google Play gives; all optional ("May be absent" in Google's document).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreDetails {
    pub language: Option<String>,
    pub device: Option<String>,
    pub app_version: Option<String>,
    pub original_text: Option<String>,
}

/// The developer's published reply to a review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeveloperResponse {
    pub body: String,
    pub last_modified_date: Option<String>,
}

/// The position of a review in delivery order: its instant, then its id (ascending).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReviewKey {
    /// Nanoseconds since the Unix epoch, UTC.
    pub nanos: i128,
    pub id: String,
}

/// Digits in the zero-padded instant of [`ReviewKey::encode`]: wide enough for year 9999 in nanoseconds.
const NANOS_WIDTH: usize = 21;

impl ReviewKey {
    /// A string whose byte order equals the key's order, so DynamoDB can compare it in a condition.
    pub fn encode(&self) -> String {
        format!("{:0width$}#{}", self.nanos, self.id, width = NANOS_WIDTH)
    }

    pub fn decode(encoded: &str) -> Option<Self> {
        let (nanos, id) = encoded.split_once('#')?;
        if nanos.len() != NANOS_WIDTH {
            return None;
        }
        Some(Self {
            nanos: nanos.parse().ok()?,
            id: id.to_owned(),
        })
    }
}

/// Parses an RFC 3339 date-time (any UTC offset, optional fraction, `Z`) to nanoseconds since the epoch.
/// Instants before 1970 are refused: no App Store review predates the App Store.
pub fn parse_instant(raw: &str) -> Option<i128> {
    let nanos = OffsetDateTime::parse(raw, &Rfc3339)
        .ok()?
        .unix_timestamp_nanos();
    (nanos >= 0).then_some(nanos)
}

impl Review {
    /// Builds a review; `None` when `created_date` is not an RFC 3339 instant.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        rating: Option<u8>,
        title: Option<String>,
        body: Option<String>,
        reviewer_nickname: Option<String>,
        territory: Option<String>,
        created_date: String,
        response: Option<DeveloperResponse>,
    ) -> Option<Self> {
        let nanos = parse_instant(&created_date)?;
        let key = ReviewKey {
            nanos,
            id: id.clone(),
        };
        Some(Self {
            store: Store::AppStore,
            id,
            rating,
            title,
            body,
            reviewer_nickname,
            territory,
            created_date,
            response,
            details: StoreDetails::default(),
            edit: None,
            key,
        })
    }

    /// The review's id in its store, whatever version this is.
    pub fn original_id(&self) -> &str {
        self.edit
            .as_ref()
            .map_or(&self.id, |edit| &edit.original_id)
    }

    /// A digest of what a reader sees change when a review is edited: its rating, title and
    /// text (the reviewer's own words when the text is a translation, which Google may word
    /// differently from one read to the next). FNV-1a, 64 bits, as hex: stable across versions
    /// of this program, which compare it with digests in records written earlier.
    pub fn digest(&self) -> String {
        let text = self
            .details
            .original_text
            .as_deref()
            .map(|original| (None, Some(original)))
            .unwrap_or((self.title.as_deref(), self.body.as_deref()));
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for byte in bytes {
                hash ^= u64::from(*byte);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
            // A separator no text holds, so ("ab", "c") and ("a", "bc") differ.
            hash ^= 0xff;
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        };
        feed(&[self.rating.unwrap_or(0)]);
        feed(text.0.unwrap_or_default().trim().as_bytes());
        feed(text.1.unwrap_or_default().trim().as_bytes());
        format!("{hash:016x}")
    }

    /// This review as a later version of one delivered with `before`'s rating: its id becomes
    /// `<id>@<digest>`.
    pub fn as_edit_of(mut self, previous_rating: Option<u8>) -> Self {
        let original_id = self.id.clone();
        self.id = format!("{original_id}@{}", self.digest());
        self.key.id = self.id.clone();
        self.edit = Some(Edit {
            original_id,
            previous_rating: previous_rating.filter(|before| Some(*before) != self.rating),
        });
        self
    }

    /// The same review, from `store`.
    pub fn in_store(mut self, store: Store) -> Self {
        self.store = store;
        self
    }

    pub fn key(&self) -> &ReviewKey {
        &self.key
    }

    pub fn delivery_order(a: &Self, b: &Self) -> Ordering {
        a.key.cmp(&b.key)
    }
}

/// A five-star review with only an id and a `createdDate`, for tests.
#[cfg(test)]
pub(crate) fn sample(id: &str, date: &str) -> Review {
    Review::new(
        id.into(),
        Some(5),
        None,
        None,
        None,
        None,
        date.into(),
        None,
    )
    .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(id: &str, date: &str) -> Review {
        sample(id, date)
    }

    #[test]
    fn compares_instants_not_strings() {
        // 08:10 at UTC-8 is 16:10 UTC, later than 10:00Z although the string sorts first.
        let pacific = review("a", "2017-11-15T08:10:34-08:00");
        let utc = review("b", "2017-11-15T10:00:00Z");
        assert!(pacific.key() > utc.key());
    }

    #[test]
    fn fractions_count() {
        let whole = review("a", "2024-01-01T00:00:00Z");
        let later = review("a", "2024-01-01T00:00:00.001Z");
        assert!(later.key() > whole.key());
    }

    #[test]
    fn ties_break_on_id() {
        let a = review("100", "2024-01-01T00:00:00+01:00");
        let b = review("99", "2023-12-31T23:00:00Z");
        assert_eq!(a.key().nanos, b.key().nanos);
        assert!(a.key() < b.key(), "\"100\" < \"99\" as strings");
    }

    #[test]
    fn encoding_keeps_order_and_round_trips() {
        let keys = [
            review("b", "2017-11-15T08:10:34-08:00"),
            review("a", "2017-11-15T16:10:34Z"),
            review("ab", "2017-11-15T16:10:34Z"),
            review("a", "2017-11-15T16:10:34.5Z"),
            review("z", "2001-01-01T00:00:00Z"),
        ];
        for x in &keys {
            assert_eq!(ReviewKey::decode(&x.key().encode()).as_ref(), Some(x.key()));
            for y in &keys {
                assert_eq!(
                    x.key().cmp(y.key()),
                    x.key().encode().cmp(&y.key().encode()),
                    "{x:?} vs {y:?}"
                );
            }
        }
    }

    #[test]
    fn the_digest_changes_with_the_rating_or_the_words_only() {
        let base = review("a", "2024-01-01T00:00:00Z");
        let mut same = base.clone();
        same.reviewer_nickname = Some("someone".into());
        assert_eq!(base.digest(), same.digest());
        let mut rated = base.clone();
        rated.rating = Some(2);
        let mut worded = base.clone();
        worded.body = Some("Now broken".into());
        let mut split = base.clone();
        split.title = Some("ab".into());
        split.body = Some("c".into());
        let mut moved = base.clone();
        moved.title = Some("a".into());
        moved.body = Some("bc".into());
        let digests = [&base, &rated, &worded, &split, &moved].map(Review::digest);
        for (i, x) in digests.iter().enumerate() {
            for y in &digests[i + 1..] {
                assert_ne!(x, y);
            }
        }
        // A translation is compared by the reviewer's own words.
        let mut translated = worded.clone();
        translated.details.original_text = Some("Agora quebrado".into());
        let mut translated_again = translated.clone();
        translated_again.body = Some("Broken now".into());
        assert_eq!(translated.digest(), translated_again.digest());
    }

    #[test]
    fn an_edit_is_a_new_version_under_its_own_id() {
        let mut review = review("a", "2024-01-01T00:00:00Z");
        review.rating = Some(4);
        let edit = review.clone().as_edit_of(Some(2));
        assert_eq!(edit.id, format!("a@{}", review.digest()));
        assert_eq!(edit.key().id, edit.id);
        assert_eq!(edit.original_id(), "a");
        assert_eq!(edit.edit.as_ref().unwrap().previous_rating, Some(2));
        assert_eq!(
            review
                .clone()
                .as_edit_of(Some(4))
                .edit
                .unwrap()
                .previous_rating,
            None
        );
    }

    #[test]
    fn refuses_non_dates() {
        for bad in [
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(parse_instant(bad), None, "{bad:?}");
        }
    }
}
