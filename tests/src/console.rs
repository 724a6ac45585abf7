//! A minimal browser for the console's HTML tests: keeps cookies by name (as a
//! browser would for one site), follows no redirect by itself (the tests look at
//! each 303), submits forms with the hidden fields a page carries.

use crate::fixture::TestServer;
use crate::simulator::SimDevice;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeMap;

/// The tests' admin password, and the temporary one an admin is created with.
pub const PASSWORD: &str = "correct horse battery staple";
pub const TEMPORARY: &str = "temporary password 123";

/// An admin logged in to the console, with its second factor.
pub struct ConsoleLogin {
    pub browser: Browser,
    /// The TOTP secret (base32) the enrolment page showed.
    pub secret: String,
    pub recovery_codes: Vec<String>,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// An admin in `group`, created with a temporary password, taken through the
/// console's first login: the password change and the second-factor enrolment by
/// its QR page; then out, and in again with the password and a code.
pub async fn first_login(server: &TestServer, name: &str, group: &str) -> ConsoleLogin {
    let (code, body) = server
        .api(
            "POST",
            "/admins",
            Some(json!({ "name": name, "display_name": format!("Person {name}"), "password": TEMPORARY, "groups": [group] })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let mut browser = Browser::new(&server.base_url);
    let to = browser.login(name, TEMPORARY, None).await;
    assert_eq!(
        to, "/console/password",
        "a temporary password is changed first"
    );
    // Until then every page sends the admin back to the password form.
    let page = browser.get("/console/devices").await;
    assert_eq!(page.location.as_deref(), Some("/console/password"));
    let page = browser.get("/console/password").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("minlength=\"12\"") || page.body.contains("minlength="),
        "{}",
        page.body
    );
    let page = browser
        .submit(
            "/console/password",
            &[
                ("current_password", TEMPORARY),
                ("new_password", PASSWORD),
                ("confirm_password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(
        page.location.as_deref(),
        Some("/console/totp"),
        "a critical role needs a second factor"
    );
    let page = browser.get("/console/totp").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("src=\"data:image/svg+xml;base64,"),
        "the QR code"
    );
    let secret = page
        .text_of("totp-secret")
        .expect("the secret shown beside the QR code");
    let wrong = browser.submit("/console/totp", &[("code", "000000")]).await;
    assert_eq!(wrong.status, StatusCode::OK);
    assert!(wrong.body.contains("class=\"error\""), "{}", wrong.body);
    // A wrong code began a new secret (as the API does): read it again.
    let secret = wrong.text_of("totp-secret").unwrap_or(secret);
    let now = unix_now();
    let page = browser
        .submit(
            "/console/totp",
            &[("code", &crate::totp::code(&secret, now))],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let codes = recovery_codes(&page);
    assert_eq!(codes.len(), 10, "{}", page.body);
    // Enrolled in this session: it goes on. Then out, and in with both factors (the
    // next time step's code: a code is accepted once).
    let page = browser.get("/console/dashboard").await;
    assert_eq!(page.status, StatusCode::OK, "{:?}", page.location);
    let page = browser.submit("/console/logout", &[]).await;
    assert_eq!(page.location.as_deref(), Some("/console/login"));
    assert!(
        !browser.cookies.contains_key("mdm_session"),
        "the cookie is removed"
    );
    let wrong = browser.login(name, PASSWORD, Some("123456")).await;
    assert!(
        wrong.starts_with("/console/login/totp?error=refused"),
        "{wrong}"
    );
    let to = browser
        .login(name, PASSWORD, Some(&crate::totp::code(&secret, now + 30)))
        .await;
    assert_eq!(to, "/console/dashboard");
    ConsoleLogin {
        browser,
        secret,
        recovery_codes: codes,
    }
}

pub fn recovery_codes(page: &Page) -> Vec<String> {
    let Some(at) = page.body.find("id=\"recovery-codes\"") else {
        return Vec::new();
    };
    let list = &page.body[at..page.body[at..]
        .find("</ul>")
        .map_or(page.body.len(), |e| e + at)];
    list.split("<code>")
        .skip(1)
        .filter_map(|c| c.split("</code>").next())
        .map(str::to_owned)
        .collect()
}

/// What every console page must be: the CSP header, no inline script or style, no
/// event handler attributes, every post form with the session's CSRF token.
pub fn assert_safe_page(page: &Page, path: &str, csrf: &str) {
    assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("style-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert_eq!(page.headers["cache-control"], "no-store");
    let body = &page.body;
    let mut rest = body.as_str();
    while let Some(at) = rest.find("<script") {
        let tag_end = rest[at..].find('>').unwrap() + at;
        assert!(
            rest[at..tag_end].contains(" src="),
            "{path}: an inline script"
        );
        rest = &rest[tag_end..];
    }
    assert!(!body.contains("<style"), "{path}: an inline style element");
    assert!(
        !body.contains(" style="),
        "{path}: an inline style attribute"
    );
    assert!(!body.contains("javascript:"), "{path}: a javascript: URL");
    for handler in [
        " onclick=",
        " onload=",
        " onchange=",
        " onsubmit=",
        " onerror=",
        " oninput=",
    ] {
        assert!(!body.contains(handler), "{path}: {handler}");
    }
    let forms = body.matches("<form method=\"post\"").count();
    let tokens = body
        .matches(&format!("name=\"_csrf\" value=\"{csrf}\""))
        .count();
    // Every page but the print view has at least the logout form.
    assert!(
        tokens >= forms && (forms > 0 || path.ends_with("/print")),
        "{path}: {forms} post forms, {tokens} CSRF tokens"
    );
}

/// The server the console tests use: the per-address limit on failed logins off
/// (the tests fail logins on purpose).
pub async fn start(backend: crate::fixture::Backend) -> TestServer {
    TestServer::start_with(
        backend,
        crate::fixture::ServerOptions {
            extra_args: vec!["--admin-max-failures".into(), "0".into()],
            ..Default::default()
        },
    )
    .await
}

/// A simulated iPhone enrolled with the test CA, and its server id.
pub async fn enrolled_iphone(server: &TestServer) -> (SimDevice, String) {
    let phone = SimDevice::iphone(&server.base_url, &server.ca);
    phone.enroll().await;
    let id = id_of(server, &phone).await;
    (phone, id)
}

/// The server's id of an enrolled simulated device.
pub async fn id_of(server: &TestServer, device: &SimDevice) -> String {
    let page = server.get(&format!("/devices?udid={}", device.udid)).await;
    page["items"][0]["id"].as_str().unwrap().to_owned()
}

/// The device answers DeviceInformation with its serial number and `name` (what the
/// console shows and the wipe is confirmed against).
pub async fn report_facts(server: &TestServer, device: &SimDevice, id: &str, name: &str) {
    let uuid = server
        .queue(
            id,
            json!({ "type": "DeviceInformation", "queries": ["SerialNumber", "DeviceName"] }),
        )
        .await;
    assert_eq!(device.idle().await.unwrap().uuid, uuid);
    let mut answers = plist::Dictionary::new();
    answers.insert("SerialNumber".into(), device.serial.clone().into());
    answers.insert("DeviceName".into(), name.into());
    let mut result = plist::Dictionary::new();
    result.insert("QueryResponses".into(), plist::Value::Dictionary(answers));
    assert!(device.acknowledge_with(&uuid, result).await.is_none());
}

pub struct Browser {
    http: reqwest::Client,
    base: String,
    pub cookies: BTreeMap<String, String>,
    /// Set-Cookie headers as received (for the attribute checks).
    pub set_cookie_headers: Vec<String>,
    pub accept_language: Option<String>,
}

pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    /// The value of the first `<input ... name="NAME" value="...">` in the page.
    pub fn field(&self, name: &str) -> Option<String> {
        let needle = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&needle)? + needle.len();
        let end = self.body[start..].find('"')? + start;
        Some(unescape(&self.body[start..end]))
    }

    /// The text of the element with `id`, tags dropped.
    pub fn text_of(&self, id: &str) -> Option<String> {
        let needle = format!("id=\"{id}\"");
        let at = self.body.find(&needle)?;
        let start = self.body[at..].find('>')? + at + 1;
        let end = self.body[start..].find("</")? + start;
        Some(unescape(&self.body[start..end]))
    }
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

impl Browser {
    pub fn new(base_url: &str) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .danger_accept_invalid_certs(true)
                .build()
                .expect("client"),
            base: base_url.trim_end_matches('/').to_owned(),
            cookies: BTreeMap::new(),
            set_cookie_headers: Vec::new(),
            accept_language: None,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, req: reqwest::RequestBuilder) -> Page {
        let mut req = req.header("Cookie", self.cookie_header());
        if let Some(l) = &self.accept_language {
            req = req.header("Accept-Language", l);
        }
        let resp = req.send().await.expect("console request");
        for h in resp.headers().get_all("set-cookie") {
            let h = h.to_str().unwrap().to_owned();
            let pair = h.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            let removed = h.to_ascii_lowercase().contains("max-age=0") || value.is_empty();
            if removed {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
            self.set_cookie_headers.push(h);
        }
        Page {
            status: resp.status(),
            location: resp
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned()),
            headers: resp.headers().clone(),
            body: resp.text().await.unwrap_or_default(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let req = self.http.get(format!("{}{path}", self.base));
        self.finish(req).await
    }

    /// Posts a form (urlencoded), with an optional Origin header.
    pub async fn post(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Page {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded_pairs(fields));
        if let Some(o) = origin {
            req = req.header("Origin", o);
        }
        self.finish(req).await
    }

    /// Posts a form with the session's CSRF token (as the pages' forms carry it).
    pub async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.cookies.get("mdm_csrf").cloned().unwrap_or_default();
        let mut all: Vec<(&str, &str)> = vec![("_csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        let all: Vec<(String, String)> = all
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let refs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.post(path, &refs, None).await
    }

    /// Logs in through the login form(s): password, then the code when asked.
    /// Returns the final redirect's target.
    pub async fn login(&mut self, username: &str, password: &str, code: Option<&str>) -> String {
        let form = self.get("/console/login").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let token = form.field("_login_csrf").expect("the login form's token");
        let page = self
            .post(
                "/console/login",
                &[
                    ("_login_csrf", &token),
                    ("next", "/console/dashboard"),
                    ("username", username),
                    ("password", password),
                ],
                None,
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        let to = page.location.clone().unwrap();
        if !to.starts_with("/console/login/totp") {
            return to;
        }
        let code = code.expect("this account asks for a code");
        let page = self
            .post(
                "/console/login/totp",
                &[
                    ("_login_csrf", &token),
                    ("next", "/console/dashboard"),
                    ("code", code),
                ],
                None,
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        page.location.unwrap()
    }
}

fn serde_urlencoded_pairs(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
