//! Which reviews a destination wants: its apps, ratings, territories, languages and keywords.

use super::{AppId, Review};

/// A destination's rules. An empty list allows everything; all rules must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    pub apps: Vec<AppId>,
    /// Star ratings, 1 to 5.
    pub ratings: Vec<u8>,
    /// ISO 3166-1 alpha-3 codes, upper case, as Apple sends them.
    pub territories: Vec<String>,
    /// ISO 639 language codes, lower case: `en` takes a review whose language is `en-GB`. Only
    /// Google Play says a review's language, so a rule here takes no App Store review.
    pub languages: Vec<String>,
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
        if !self.languages.is_empty()
            && !review.details.language.as_deref().is_some_and(|tag| {
                let language = tag.split(['-', '_']).next().unwrap_or_default();
                self.languages
                    .iter()
                    .any(|l| l.eq_ignore_ascii_case(language))
            })
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
            languages: Vec::new(),
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
    fn languages_take_play_reviews_by_the_language_part_and_no_app_store_review() {
        let play = |tag: Option<&str>| {
            let mut review = review(3, "", "", "").in_store(crate::domain::Store::GooglePlay);
            review.territory = None;
            review.details.language = tag.map(Into::into);
            review
        };
        let package = AppId::play("com.example.app").unwrap();
        let english = Route {
            languages: vec!["en".into()],
            ..Route::default()
        };
        for tag in ["en", "en-GB", "EN_us"] {
            assert!(english.matches(&package, &play(Some(tag))), "{tag}");
        }
        for tag in [Some("fr-FR"), Some("eng"), Some(""), None] {
            assert!(!english.matches(&package, &play(tag)), "{tag:?}");
        }
        assert!(
            !english.matches(&app("1"), &review(3, "GBR", "", "")),
            "App Store reviews say no language"
        );
        let british = Route {
            territories: vec!["GBR".into()],
            ..Route::default()
        };
        assert!(
            !british.matches(&package, &play(Some("en-GB"))),
            "territories match no Play review"
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
