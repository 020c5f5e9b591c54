//! Which reviews a destination wants: its apps, ratings, territories and keywords.

use super::{AppId, Review};

/// A destination's rules. An empty list allows everything; all rules must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    pub apps: Vec<AppId>,
    /// Star ratings, 1 to 5.
    pub ratings: Vec<u8>,
    /// ISO 3166-1 alpha-3 codes, upper case, as Apple sends them.
    pub territories: Vec<String>,
    /// Lower case. The review's title or body must contain at least one.
    pub include_keywords: Vec<String>,
    /// Lower case. The review's title and body must contain none.
    pub exclude_keywords: Vec<String>,
}

impl Route {
    pub fn matches(&self, app: &AppId, review: &Review) -> bool {
        if !self.apps.is_empty() && !self.apps.contains(app) {
            return false;
        }
        if !self.ratings.is_empty() && !review.rating.is_some_and(|r| self.ratings.contains(&r)) {
            return false;
        }
        if !self.territories.is_empty()
            && !review
                .territory
                .as_deref()
                .is_some_and(|t| self.territories.iter().any(|x| x.eq_ignore_ascii_case(t)))
        {
            return false;
        }
        if self.include_keywords.is_empty() && self.exclude_keywords.is_empty() {
            return true;
        }
        let text = format!(
            "{}\n{}",
            review.title.as_deref().unwrap_or_default(),
            review.body.as_deref().unwrap_or_default()
        )
        .to_lowercase();
        (self.include_keywords.is_empty()
            || self
                .include_keywords
                .iter()
                .any(|k| text.contains(k.as_str())))
            && !self
                .exclude_keywords
                .iter()
                .any(|k| text.contains(k.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(rating: u8, territory: &str, title: &str, body: &str) -> Review {
        Review::new(
            "r".into(),
            Some(rating),
            Some(title.into()),
            Some(body.into()),
            None,
            Some(territory.into()),
            "2024-01-01T00:00:00Z".into(),
            None,
        )
        .unwrap()
    }

    fn app(id: &str) -> AppId {
        AppId::parse(id).unwrap()
    }

    #[test]
    fn an_empty_route_takes_everything() {
        assert!(Route::default().matches(&app("1"), &review(3, "USA", "", "")));
    }

    #[test]
    fn every_rule_must_hold() {
        let route = Route {
            apps: vec![app("1")],
            ratings: vec![1, 2],
            territories: vec!["USA".into(), "JPN".into()],
            include_keywords: vec!["crash".into(), "クラッシュ".into()],
            exclude_keywords: vec!["refund".into()],
        };
        let one = app("1");
        assert!(route.matches(&one, &review(1, "USA", "It CRASHES", "")));
        assert!(route.matches(&one, &review(2, "JPN", "", "起動するとクラッシュします")));
        assert!(
            !route.matches(&app("2"), &review(1, "USA", "crash", "")),
            "app"
        );
        assert!(
            !route.matches(&one, &review(5, "USA", "crash", "")),
            "rating"
        );
        assert!(
            !route.matches(&one, &review(1, "FRA", "crash", "")),
            "territory"
        );
        assert!(
            !route.matches(&one, &review(1, "USA", "slow", "")),
            "no keyword"
        );
        assert!(
            !route.matches(&one, &review(1, "USA", "crash", "I want a REFUND")),
            "excluded"
        );
    }

    #[test]
    fn keywords_ignore_case_beyond_ascii() {
        let route = Route {
            include_keywords: vec!["ошибка".into(), "straße".into()],
            ..Route::default()
        };
        assert!(route.matches(&app("1"), &review(3, "RUS", "ОШИБКА", "")));
        assert!(route.matches(&app("1"), &review(3, "DEU", "", "STRAßE")));
    }

    #[test]
    fn a_review_without_a_rating_or_territory_fails_those_rules_only_when_they_are_set() {
        let mut bare = review(3, "USA", "", "");
        bare.rating = None;
        bare.territory = None;
        assert!(Route::default().matches(&app("1"), &bare));
        let rated = Route {
            ratings: vec![3],
            ..Route::default()
        };
        assert!(!rated.matches(&app("1"), &bare));
    }
}
