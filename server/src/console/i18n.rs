//! The console's languages: English, Polish and Ukrainian, as Fluent catalogues
//! (`locales/<lang>/*.ftl`, embedded in the binary). Fluent carries CLDR's plural rules
//! (Polish and Ukrainian have "few" and "many" forms English lacks); numbers and dates
//! are formatted here in each language's convention. A test compares the catalogues
//! so that no message is missing from a language, and another checks that every
//! message a template or handler asks for exists.

use chrono::{DateTime, Datelike, Timelike, Utc};
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Pl,
    Uk,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::En, Lang::Pl, Lang::Uk];
    pub const CODES: [&'static str; 3] = ["en", "pl", "uk"];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Pl => "pl",
            Lang::Uk => "uk",
        }
    }

    /// The language's own name, as the language menu shows it.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Pl => "Polski",
            Lang::Uk => "Українська",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        Lang::ALL
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(code.trim()))
    }

    /// The first of ours in an Accept-Language header (weights in the order given,
    /// which is how browsers send them), English when none.
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        header
            .unwrap_or_default()
            .split(',')
            .filter_map(|part| part.split(';').next())
            .filter_map(|tag| Lang::from_code(tag.trim().split('-').next().unwrap_or_default()))
            .next()
            .unwrap_or(Lang::En)
    }

    /// The catalogue's files, one per part of the console (`locales/<lang>/*.ftl`):
    /// each part's messages live beside each other, in every language.
    fn sources(self) -> &'static [&'static str] {
        macro_rules! catalogue {
            ($lang:literal) => {
                &[
                    include_str!(concat!("locales/", $lang, "/core.ftl")),
                    include_str!(concat!("locales/", $lang, "/policies.ftl")),
                    include_str!(concat!("locales/", $lang, "/admin.ftl")),
                ]
            };
        }
        match self {
            Lang::En => catalogue!("en"),
            Lang::Pl => catalogue!("pl"),
            Lang::Uk => catalogue!("uk"),
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

type Bundle = FluentBundle<FluentResource>;

fn bundles() -> &'static [Bundle; 3] {
    static BUNDLES: OnceLock<[Bundle; 3]> = OnceLock::new();
    BUNDLES.get_or_init(|| Lang::ALL.map(bundle))
}

fn bundle(lang: Lang) -> Bundle {
    let id: unic_langid::LanguageIdentifier = lang.code().parse().expect("a valid language tag");
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    // No Unicode isolation marks around arguments: the pages are all one direction.
    bundle.set_use_isolating(false);
    for source in lang.sources() {
        let resource = FluentResource::try_new((*source).to_owned())
            // The catalogues are part of the binary; the tests parse them.
            .unwrap_or_else(|(resource, _errors)| resource);
        // A duplicate id keeps the first (the tests refuse duplicates).
        let _ = bundle.add_resource(resource);
    }
    bundle
}

/// The message ids of a catalogue (for the tests).
pub fn message_ids(lang: Lang) -> Vec<String> {
    let mut ids = Vec::new();
    for source in lang.sources() {
        let resource =
            FluentResource::try_new((*source).to_owned()).unwrap_or_else(|(resource, _)| resource);
        ids.extend(resource.entries().filter_map(|e| match e {
            fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_owned()),
            _ => None,
        }));
    }
    ids
}

/// Parse errors of a catalogue (for the tests).
pub fn parse_errors(lang: Lang) -> Vec<String> {
    lang.sources()
        .iter()
        .filter_map(|source| FluentResource::try_new((*source).to_owned()).err())
        .flat_map(|(_, errors)| errors.into_iter().map(|e| format!("{e:?}")))
        .collect()
}

/// Translates for one page: the language, and formatting in its conventions.
#[derive(Debug, Clone, Copy)]
pub struct Tr {
    pub lang: Lang,
}

impl Tr {
    pub fn new(lang: Lang) -> Tr {
        Tr { lang }
    }

    pub fn code(&self) -> &'static str {
        self.lang.code()
    }

    /// A message without arguments.
    pub fn t(&self, id: &str) -> String {
        self.format(id, None)
    }

    /// A message with one argument `$value` (text).
    pub fn t1(&self, id: &str, value: &str) -> String {
        let mut args = FluentArgs::new();
        args.set("value", FluentValue::from(value.to_owned()));
        self.format(id, Some(&args))
    }

    /// A message whose plural form follows `$count`, shown as `$n` in the language's
    /// number format.
    pub fn n(&self, id: &str, count: i64) -> String {
        let mut args = FluentArgs::new();
        args.set("count", FluentValue::from(count));
        args.set("n", FluentValue::from(self.num(count)));
        self.format(id, Some(&args))
    }

    fn format(&self, id: &str, args: Option<&FluentArgs>) -> String {
        let bundle = &bundles()[self.lang.index()];
        let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
            // Never expected (a test checks every id used); visible if it happens.
            return format!("[{id}]");
        };
        let mut errors = Vec::new();
        bundle
            .format_pattern(pattern, args, &mut errors)
            .into_owned()
    }

    /// An integer with the language's digit grouping: 12,345 in English; 12 345 in
    /// Polish and Ukrainian (a no-break space; Polish groups only from five digits).
    pub fn num(&self, n: i64) -> String {
        let digits = n.unsigned_abs().to_string();
        let (separator, min_digits) = match self.lang {
            Lang::En => (",", 4),
            Lang::Pl => ("\u{a0}", 5),
            Lang::Uk => ("\u{a0}", 4),
        };
        let mut out = String::new();
        if n < 0 {
            out.push('-');
        }
        if digits.len() < min_digits {
            out.push_str(&digits);
            return out;
        }
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push_str(separator);
            }
            out.push(c);
        }
        out
    }

    /// A date and time (UTC) as the language writes it: "2 Dec 2026, 17:05 UTC",
    /// "2 gru 2026, 17:05 UTC", "2 груд. 2026, 17:05 UTC".
    pub fn datetime(&self, at: &DateTime<Utc>) -> String {
        format!(
            "{}, {:02}:{:02} UTC",
            self.date_of(at.day(), at.month(), at.year()),
            at.hour(),
            at.minute()
        )
    }

    pub fn date(&self, at: &DateTime<Utc>) -> String {
        self.date_of(at.day(), at.month(), at.year())
    }

    pub fn naive_date(&self, d: &chrono::NaiveDate) -> String {
        self.date_of(d.day(), d.month(), d.year())
    }

    fn date_of(&self, day: u32, month: u32, year: i32) -> String {
        format!("{day} {} {year}", self.t(&format!("month-{month}")))
    }

    pub fn opt_datetime(&self, at: &Option<DateTime<Utc>>) -> String {
        at.as_ref()
            .map(|a| self.datetime(a))
            .unwrap_or_else(|| "—".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn catalogues_parse_and_hold_the_same_messages() {
        let english: BTreeSet<String> = message_ids(Lang::En).into_iter().collect();
        assert!(english.len() > 50, "the English catalogue is the reference");
        for lang in Lang::ALL {
            assert!(
                parse_errors(lang).is_empty(),
                "{lang:?}: {:?}",
                parse_errors(lang)
            );
            let ids: Vec<String> = message_ids(lang);
            let set: BTreeSet<String> = ids.iter().cloned().collect();
            assert_eq!(ids.len(), set.len(), "{lang:?} defines a message twice");
            let missing: Vec<_> = english.difference(&set).collect();
            let extra: Vec<_> = set.difference(&english).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{lang:?}: missing {missing:?}, not in English {extra:?}"
            );
        }
    }

    /// Every message a template or handler asks for, by a literal id or one of the
    /// ids built at run time, is in the catalogue.
    #[test]
    fn every_message_used_exists() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut used = BTreeSet::new();
        for dir in ["templates/console", "src/console"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                // This file's own tests name ids in strings of their own.
                if path.extension().is_none_or(|e| e != "html" && e != "rs")
                    || path.ends_with("i18n.rs")
                {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for call in [".t(", ".t1(", ".n("] {
                    for piece in text.split(call).skip(1) {
                        let Some(literal) = piece.trim_start().strip_prefix('"') else {
                            continue; // an id built at run time (listed below)
                        };
                        used.insert(literal.chars().take_while(|c| *c != '"').collect());
                    }
                }
                // Page::new's navigation and the list of level/status choices.
                for piece in text.split("\"nav-").skip(1) {
                    let id: String = piece.chars().take_while(|c| *c != '"').collect();
                    used.insert(format!("nav-{id}"));
                }
            }
        }
        for m in 1..=12 {
            used.insert(format!("month-{m}"));
        }
        for l in 0..=5 {
            used.insert(format!("level-{l}"));
        }
        for s in [
            "pending",
            "sent",
            "notnow",
            "acknowledged",
            "error",
            "commandformaterror",
            "cancelled",
            "expired",
        ] {
            used.insert(format!("status-{s}"));
        }
        for c in crate::domain::incident::CLASSIFICATIONS {
            used.insert(format!("classification-{c}"));
        }
        for s in crate::domain::incident::STATUSES {
            used.insert(format!("incident-status-{}", s.replace('_', "-")));
        }
        for o in ["queued", "installed", "removing"] {
            used.insert(format!("policy-output-{o}"));
        }
        for k in ["manual", "directory-group", "department", "enrollment"] {
            used.insert(format!("group-kind-{k}"));
        }
        for s in ["active", "expired", "revoked", "used-up"] {
            used.insert(format!("enrollment-{s}"));
        }
        for d in super::super::page::KNOWN_NOTICES {
            used.insert(format!("done-{d}"));
        }
        let english: BTreeSet<String> = message_ids(Lang::En).into_iter().collect();
        let missing: Vec<_> = used.iter().filter(|id| !english.contains(*id)).collect();
        assert!(missing.is_empty(), "used but not in en.ftl: {missing:?}");
        assert!(
            used.len() > 150,
            "the scan found the calls ({})",
            used.len()
        );
    }

    #[test]
    fn plural_forms_follow_each_language() {
        let pl = Tr::new(Lang::Pl);
        let uk = Tr::new(Lang::Uk);
        let en = Tr::new(Lang::En);
        assert_eq!(en.n("devices-count", 1), "1 device");
        assert_eq!(en.n("devices-count", 2), "2 devices");
        assert_eq!(pl.n("devices-count", 1), "1 urządzenie");
        assert_eq!(pl.n("devices-count", 3), "3 urządzenia");
        assert_eq!(pl.n("devices-count", 5), "5 urządzeń");
        assert_eq!(pl.n("devices-count", 22), "22 urządzenia");
        assert_eq!(uk.n("devices-count", 1), "1 пристрій");
        assert_eq!(uk.n("devices-count", 21), "21 пристрій");
        assert_eq!(uk.n("devices-count", 3), "3 пристрої");
        assert_eq!(uk.n("devices-count", 11), "11 пристроїв");
    }

    #[test]
    fn numbers_and_dates_follow_each_language() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-02T07:05:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(Tr::new(Lang::En).num(12345), "12,345");
        assert_eq!(Tr::new(Lang::Pl).num(1234), "1234");
        assert_eq!(Tr::new(Lang::Pl).num(12345), "12\u{a0}345");
        assert_eq!(Tr::new(Lang::Uk).num(1234567), "1\u{a0}234\u{a0}567");
        assert_eq!(Tr::new(Lang::En).datetime(&at), "2 Dec 2026, 07:05 UTC");
        assert_eq!(Tr::new(Lang::Pl).date(&at), "2 gru 2026");
        assert_eq!(Tr::new(Lang::Uk).date(&at), "2 груд. 2026");
    }

    #[test]
    fn accept_language_picks_ours() {
        assert_eq!(
            Lang::from_accept_language(Some("pl-PL,pl;q=0.9,en;q=0.8")),
            Lang::Pl
        );
        assert_eq!(Lang::from_accept_language(Some("de-DE,uk;q=0.5")), Lang::Uk);
        assert_eq!(Lang::from_accept_language(Some("de")), Lang::En);
        assert_eq!(Lang::from_accept_language(None), Lang::En);
    }
}
