//! What every console page's layout needs: the language, the admin, the CSRF token
//! for its forms, the navigation (only what the admin's rights reach), and a notice.

use super::i18n::{Lang, Tr};
use super::session::ConsoleAdmin;

pub struct NavItem {
    pub href: &'static str,
    pub label: String,
    pub current: bool,
}

pub struct LanguageChoice {
    pub code: &'static str,
    pub name: &'static str,
    pub selected: bool,
}

/// The layout's context (templates/console/base.html reads it as `p`).
pub struct Page {
    pub tr: Tr,
    pub title: String,
    /// None on the login pages.
    pub admin: Option<String>,
    pub csrf: String,
    pub nav: Vec<NavItem>,
    pub languages: Vec<LanguageChoice>,
    /// Where the language form returns to.
    pub here: String,
    /// Seconds of inactivity after which the script returns to the login page (the
    /// server ends the session then anyway).
    pub idle_secs: i64,
    /// A notice (what was just done) and an error (what was refused).
    pub notice: Option<String>,
    pub error: Option<String>,
}

/// The console's sections: (path, message id, right needed to read it).
const SECTIONS: &[(&str, &str, Option<&str>)] = &[
    ("/console/dashboard", "nav-dashboard", None),
    ("/console/devices", "nav-devices", Some("devices.read")),
    (
        "/console/enrollments",
        "nav-enrollments",
        Some("enrollments.read"),
    ),
    ("/console/policies", "nav-policies", Some("policies.read")),
    (
        "/console/incidents",
        "nav-incidents",
        Some("incidents.read"),
    ),
    (
        "/console/directory",
        "nav-directory",
        Some("directory.read"),
    ),
    ("/console/settings", "nav-settings", Some("push.read")),
    ("/console/admins", "nav-admins", Some("admins.read")),
    ("/console/audit", "nav-audit", Some("audit.read")),
];

impl Page {
    pub fn new(admin: &ConsoleAdmin, title: String, here: &str, idle_secs: i64) -> Page {
        let tr = admin.tr;
        Page {
            tr,
            title,
            admin: Some(admin.name().to_owned()),
            csrf: admin.csrf.clone(),
            nav: SECTIONS
                .iter()
                .filter(|(_, _, right)| right.is_none_or(|r| admin.has(r)))
                .map(|(href, label, _)| NavItem {
                    href,
                    label: tr.t(label),
                    current: here.starts_with(href),
                })
                .collect(),
            languages: languages(tr.lang),
            here: here.to_owned(),
            idle_secs,
            notice: None,
            error: None,
        }
    }

    /// A page before login (no navigation, no session).
    pub fn anonymous(tr: Tr, title: String, here: &str) -> Page {
        Page {
            tr,
            title,
            admin: None,
            csrf: String::new(),
            nav: Vec::new(),
            languages: languages(tr.lang),
            here: here.to_owned(),
            idle_secs: 0,
            notice: None,
            error: None,
        }
    }

    pub fn with_notice(mut self, notice: Option<String>) -> Page {
        self.notice = notice;
        self
    }

    pub fn with_error(mut self, error: Option<String>) -> Page {
        self.error = error;
        self
    }
}

fn languages(current: Lang) -> Vec<LanguageChoice> {
    Lang::ALL
        .into_iter()
        .map(|l| LanguageChoice {
            code: l.code(),
            name: l.native_name(),
            selected: l == current,
        })
        .collect()
}

/// The query string of a page a redirect may name a notice in (`?done=locked`).
#[derive(serde::Deserialize)]
pub struct DoneQuery {
    pub done: Option<String>,
}

/// A notice named in the query string after a redirect (`?done=locked`), translated;
/// only known ids are shown, so a link cannot put words on the page.
pub fn notice(tr: Tr, done: Option<&str>) -> Option<String> {
    let done = done?;
    KNOWN_NOTICES
        .contains(&done)
        .then(|| tr.t(&format!("done-{done}")))
}

/// The notices a redirect may name.
pub const KNOWN_NOTICES: &[&str] = &[
    "locked",
    "wipe-queued",
    "lost-mode",
    "queued",
    "revoked",
    "created",
    "filed",
    "classified",
    "closed",
    "password-changed",
    "totp-enabled",
    "language",
    "action-recorded",
    "group-created",
    "policy-saved",
    "assigned",
    "unassigned",
    "evidence-collected",
];
