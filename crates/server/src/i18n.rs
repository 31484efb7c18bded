//! The pages' languages: Simplified Chinese and English, from catalogs compiled into the binary
//! (`i18n/*.toml`, one key per text). The language comes from `?lang=`, else the browser's
//! `Accept-Language`, else Chinese.

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// A language the pages speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    Zh,
    En,
}

impl Lang {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The other language (the page's switch).
    pub(crate) fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    /// `?lang=` if it names one, else the first of the browser's languages we speak, else Chinese.
    pub(crate) fn negotiate(query: Option<&str>, accept_language: Option<&str>) -> Lang {
        let pick = |tag: &str| {
            let tag = tag.to_ascii_lowercase();
            if tag.starts_with("zh") {
                Some(Lang::Zh)
            } else if tag.starts_with("en") {
                Some(Lang::En)
            } else {
                None
            }
        };
        if let Some(l) = query.and_then(pick) {
            return l;
        }
        accept_language
            .map(accept_language::parse)
            .and_then(|tags| tags.iter().find_map(|t| pick(t)))
            .unwrap_or(Lang::Zh)
    }

    fn catalog(self) -> &'static BTreeMap<String, String> {
        static ZH: OnceLock<BTreeMap<String, String>> = OnceLock::new();
        static EN: OnceLock<BTreeMap<String, String>> = OnceLock::new();
        let (cell, text) = match self {
            Lang::Zh => (&ZH, include_str!("../i18n/zh-CN.toml")),
            Lang::En => (&EN, include_str!("../i18n/en.toml")),
        };
        cell.get_or_init(|| toml::from_str(text).expect("the built-in catalogs parse (tested)"))
    }

    /// The text for `key` (the key itself if the catalog lacks it: a test keeps them complete).
    pub(crate) fn t(self, key: &str) -> &'static str {
        match self.catalog().get(key) {
            Some(s) => s.as_str(),
            None => {
                tracing::warn!(key, lang = self.code(), "no text for this key");
                ""
            }
        }
    }

    /// The text for `key` with `{name}` placeholders filled.
    pub(crate) fn fill(self, key: &str, values: &[(&str, String)]) -> String {
        let mut s = self.t(key).to_string();
        for (name, value) in values {
            s = s.replace(&format!("{{{name}}}"), value);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogs_parse_and_have_the_same_keys() {
        let zh: Vec<&String> = Lang::Zh.catalog().keys().collect();
        let en: Vec<&String> = Lang::En.catalog().keys().collect();
        assert_eq!(zh, en);
        assert!(zh.len() > 10);
    }

    #[test]
    fn the_language_comes_from_the_query_then_the_browser_then_chinese() {
        assert_eq!(Lang::negotiate(Some("en"), Some("zh-CN")), Lang::En);
        assert_eq!(Lang::negotiate(None, Some("fr-FR,en-GB;q=0.8,zh;q=0.5")), Lang::En);
        assert_eq!(Lang::negotiate(None, Some("zh-TW,zh;q=0.9")), Lang::Zh);
        assert_eq!(Lang::negotiate(Some("de"), Some("fr")), Lang::Zh);
        assert_eq!(Lang::negotiate(None, None), Lang::Zh);
        assert!(Lang::En.fill("bulletin_text", &[("date", "2022-03-14".into())]).contains("On 2022-03-14,"));
    }
}
