//! The web console over HTTP (issue 13), as a browser sees it but without one (the
//! browser scenario is console_browser.rs): login with password and TOTP, the
//! first-login password change and second-factor enrolment; cookies' attributes;
//! every page with its Content-Security-Policy and no inline script or style; CSRF
//! tokens and the Origin check on every form; what a device sends shown as text;
//! the admin's rights shaping what is offered and refusing what is not; the wipe
//! confirmed by the serial number; the incident register's forms; the language
//! remembered per admin.

use mdm_tests::console::{
    assert_safe_page, enrolled_iphone, first_login, report_facts, start, Browser, PASSWORD,
};
use mdm_tests::fixture::{Backend, TestServer};
use mdm_tests::on_every_backend;
use mdm_tests::simulator::SimDevice;
use reqwest::StatusCode;
use serde_json::json;

async fn console_admin(
    server: &TestServer,
    name: &str,
    group: &str,
) -> (Browser, String, Vec<String>) {
    let login = first_login(server, name, group).await;
    (login.browser, login.secret, login.recovery_codes)
}

async fn login_and_every_page(backend: Backend) {
    let server = start(backend).await;
    server.upload_push_certificate().await;
    let (phone, id) = enrolled_iphone(&server).await;
    report_facts(&server, &phone, &id, "Reception iPhone").await;
    let enrollment = server
        .create_enrollment(json!({ "platform": "apple", "name": "Front desk" }))
        .await;
    let (code, incident) = server
        .api("POST", "/incidents", Some(json!({ "name": "Phone left on a bus", "type": "lost_device", "level": 3, "devices": [id] })))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{incident}");

    let (mut browser, _, _) = console_admin(&server, "ewa.nowak", "owners").await;
    for header in &browser.set_cookie_headers {
        if header.starts_with("mdm_session=") && !header.contains("Max-Age=0") {
            for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
                assert!(header.contains(attr), "{header}");
            }
        }
    }
    let csrf = browser.cookies["mdm_csrf"].clone();
    assert!(csrf.len() >= 32);
    let enrollment_id = enrollment["id"].as_str().unwrap();
    let incident_id = incident["id"].as_str().unwrap();
    for path in [
        "/console/dashboard".to_owned(),
        "/console/devices".to_owned(),
        "/console/devices?q=Reception&platform=apple&compliance=".to_owned(),
        format!("/console/devices/{id}"),
        "/console/enrollments".to_owned(),
        format!("/console/enrollments/{enrollment_id}"),
        format!("/console/enrollments/{enrollment_id}/print"),
        "/console/incidents".to_owned(),
        format!("/console/incidents/{incident_id}"),
        "/console/password".to_owned(),
    ] {
        let page = browser.get(&path).await;
        assert_safe_page(&page, &path, &csrf);
    }
    let dashboard = browser.get("/console/dashboard").await;
    assert!(
        dashboard.body.contains("level level-orange"),
        "the open level-3 incident in its colour"
    );
    assert!(
        dashboard.body.contains("Apple push certificate"),
        "{}",
        dashboard.body
    );
    let devices = browser.get("/console/devices").await;
    assert!(devices.body.contains("Reception iPhone"));
    assert_eq!(
        devices.text_of("devices-summary").as_deref(),
        Some("1 device")
    );
    let none = browser.get("/console/devices?q=nothing-like-this").await;
    assert_eq!(
        none.text_of("devices-summary").as_deref(),
        Some("0 devices")
    );
    // The enrollment's QR code, as a PNG image the page shows.
    let png = browser
        .get(&format!("/console/enrollments/{enrollment_id}/qr.png"))
        .await;
    assert_eq!(png.status, StatusCode::OK);
    assert_eq!(png.headers["content-type"], "image/png");
    // Static assets; nothing else under /console/static.
    assert_eq!(
        browser.get("/console/static/console.js").await.status,
        StatusCode::OK
    );
    assert_eq!(
        browser.get("/console/static/../Cargo.toml").await.status,
        StatusCode::NOT_FOUND
    );
    // Logout ends the session on the server, not only in the browser.
    let cookie = browser.cookies["mdm_session"].clone();
    let page = browser.submit("/console/logout", &[]).await;
    assert_eq!(page.location.as_deref(), Some("/console/login"));
    let mut stale = Browser::new(&server.base_url);
    stale.cookies.insert("mdm_session".into(), cookie);
    let page = stale.get("/console/dashboard").await;
    assert!(page.location.unwrap().starts_with("/console/login"));
    // Without a session, every page leads to the login form, and back after it.
    let page = Browser::new(&server.base_url)
        .get(&format!("/console/devices/{id}"))
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page
        .location
        .unwrap()
        .starts_with("/console/login?next=%2Fconsole%2Fdevices%2F"));
}

/// A form without the session's CSRF token, with another one, or posted from another
/// site's page is refused, and nothing happens.
async fn forms_need_the_csrf_token_and_our_origin(backend: Backend) {
    let server = start(backend).await;
    let (phone, id) = enrolled_iphone(&server).await;
    let (mut browser, _, _) = console_admin(&server, "piotr.lis", "device-admins").await;
    let path = format!("/console/devices/{id}/lock");
    let page = browser.post(&path, &[], None).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "no token");
    let page = browser
        .post(&path, &[("_csrf", "0123456789abcdef")], None)
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "a wrong token");
    let csrf = browser.cookies["mdm_csrf"].clone();
    let page = browser
        .post(&path, &[("_csrf", &csrf)], Some("https://evil.example"))
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "another site's page");
    assert!(phone.idle().await.is_none(), "nothing was queued");
    let page = browser
        .submit(&path, &[("message", "Please return to the town hall")])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(
        page.location.unwrap(),
        format!("/console/devices/{id}?done=locked")
    );
    let lock = phone.idle().await.expect("the lock");
    assert_eq!(lock.request_type, "DeviceLock");
    assert_eq!(
        lock.command.get("Message").and_then(|v| v.as_string()),
        Some("Please return to the town hall")
    );
    let audit = server.events("admin.device_lock").await;
    assert_eq!(
        audit[0]["actor"], "piotr.lis",
        "the admin, as through the API"
    );
    // The login form has its own token too.
    let mut other = Browser::new(&server.base_url);
    let page = other
        .post(
            "/console/login",
            &[("username", "piotr.lis"), ("password", PASSWORD)],
            None,
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

/// A device's name is what the device says: shown as text, never as markup.
async fn what_a_device_sends_is_escaped(backend: Backend) {
    let server = start(backend).await;
    let (phone, id) = enrolled_iphone(&server).await;
    let hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    report_facts(&server, &phone, &id, hostile).await;
    let (mut browser, _, _) = console_admin(&server, "olga.mazur", "owners").await;
    for path in [
        "/console/devices".to_owned(),
        format!("/console/devices/{id}"),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            !page.body.contains("<script>alert"),
            "{path}: {}",
            page.body
        );
        assert!(!page.body.contains("<img src=x"), "{path}");
        assert!(
            page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
                || page.body.contains("&#60;script&#62;"),
            "{path}: shown as text"
        );
    }
}

/// Rights: a help-desk admin may lock but not wipe, and does not see the register;
/// what is not offered is refused when posted anyway.
async fn rights_shape_what_is_offered(backend: Backend) {
    let server = start(backend).await;
    let (phone, id) = enrolled_iphone(&server).await;
    report_facts(&server, &phone, &id, "Clerk's phone").await;
    let (mut browser, _, _) = console_admin(&server, "adam.kot", "help-desk").await;
    let page = browser.get(&format!("/console/devices/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"lock-submit\""));
    assert!(!page.body.contains("id=\"wipe-submit\""), "no wipe offered");
    assert!(
        !page.body.contains("href=\"/console/incidents\""),
        "no register in the menu"
    );
    let page = browser
        .submit(
            &format!("/console/devices/{id}/wipe"),
            &[("confirm", &phone.serial)],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(phone.idle().await.is_none(), "no wipe queued");
    assert_eq!(
        browser.get("/console/incidents").await.status,
        StatusCode::FORBIDDEN
    );
    let page = browser.get("/console/enrollments").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.body.contains("id=\"enrollment-create\""),
        "enrollments.read only"
    );
    let page = browser
        .submit(
            "/console/enrollments",
            &[("platform", "apple"), ("name", "Sneaky")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

/// The wipe asks for the serial number the device reported; anything else is refused
/// on the page, and nothing is queued.
async fn wipe_is_confirmed_by_the_serial(backend: Backend) {
    let server = start(backend).await;
    let (phone, id) = enrolled_iphone(&server).await;
    report_facts(&server, &phone, &id, "Lost iPhone").await;
    let (mut browser, _, _) = console_admin(&server, "marta.bak", "device-admins").await;
    let path = format!("/console/devices/{id}/wipe");
    let page = browser
        .submit(&path, &[("confirm", "SN-OF-ANOTHER-PHONE")])
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("class=\"error\""), "{}", page.body);
    assert!(page.body.contains("Not wiped"), "{}", page.body);
    assert!(phone.idle().await.is_none());
    let page = browser.submit(&path, &[("confirm", &phone.serial)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let wipe = phone.idle().await.expect("the wipe");
    assert_eq!(wipe.request_type, "EraseDevice");
    let page = browser
        .get(&format!("/console/devices/{id}?done=wipe-queued"))
        .await;
    assert!(page.body.contains("The wipe was sent to the device."));
    assert!(page.body.contains("EraseDevice"), "in the command history");
}

/// The register from the console: file, classify, record an action, close; each
/// lands in the register as through the API.
async fn incident_register_forms(backend: Backend) {
    let server = start(backend).await;
    let (mut browser, _, _) = console_admin(&server, "irena.wolna", "incident-managers").await;
    let page = browser
        .submit(
            "/console/incidents",
            &[
                ("name", "Tablet stolen from the library"),
                ("type", "stolen_device"),
                ("level", "2"),
                ("response_plan", "Lock, then wipe"),
                ("expected_completion", "2026-12-31"),
                ("responsible", "Irena Wolna"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let location = page.location.unwrap();
    let id = location
        .trim_start_matches("/console/incidents/")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let page = browser.get(&location).await;
    assert!(page.body.contains("level level-yellow"));
    assert!(page
        .body
        .contains("The incident was filed in the register."));
    let page = browser
        .submit(
            &format!("/console/incidents/{id}/classify"),
            &[("classification", "confirmed"), ("level", "3")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = browser
        .submit(
            &format!("/console/incidents/{id}/actions"),
            &[("description", "Device locked remotely")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = browser
        .submit(
            &format!("/console/incidents/{id}/close"),
            &[("closing_report", "")],
        )
        .await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "an empty closing report is refused on the page"
    );
    assert!(page.body.contains("class=\"error\""));
    let page = browser
        .submit(
            &format!("/console/incidents/{id}/close"),
            &[("closing_report", "Device wiped; police report filed")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let incident = server.get(&format!("/incidents/{id}")).await;
    assert_eq!(incident["level"], 3);
    assert_eq!(incident["classification"], "confirmed");
    assert_eq!(incident["status"], "completed");
    assert_eq!(
        incident["closing_report"],
        "Device wiped; police report filed"
    );
    let actions = incident["response_actions"].as_array().unwrap();
    let ours = actions
        .iter()
        .find(|a| a["description"] == "Device locked remotely")
        .unwrap_or_else(|| panic!("the action recorded: {actions:?}"));
    assert_eq!(ours["actor"], "irena.wolna");
    let page = browser.get(&format!("/console/incidents/{id}")).await;
    assert_eq!(
        page.text_of("closing-report").as_deref(),
        Some("Device wiped; police report filed")
    );
    assert!(
        !page.body.contains("id=\"close-submit\""),
        "closed: no more actions offered"
    );
}

/// The language: the browser's before login, the admin's choice after, remembered
/// across logins; Polish and Ukrainian plural forms and number formats on the pages.
async fn language_is_chosen_and_remembered(backend: Backend) {
    let server = start(backend).await;
    let mut anonymous = Browser::new(&server.base_url);
    anonymous.accept_language = Some("uk-UA,uk;q=0.9,en;q=0.5".into());
    let page = anonymous.get("/console/login").await;
    assert!(page.body.contains("<html lang=\"uk\">"), "{}", page.body);
    assert!(page.body.contains("Увійти"));

    let phone = SimDevice::iphone(&server.base_url, &server.ca);
    phone.enroll().await;
    let (mut browser, _, recovery) = console_admin(&server, "anna.zych", "owners").await;
    let page = browser.get("/console/devices").await;
    assert!(page.body.contains("<html lang=\"en\">"));
    let page = browser
        .submit(
            "/console/language",
            &[("language", "pl"), ("back", "/console/devices")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(
        page.location.as_deref(),
        Some("/console/devices?done=language")
    );
    let page = browser.get("/console/devices?done=language").await;
    assert!(page.body.contains("<html lang=\"pl\">"));
    assert!(page.body.contains("Zapisano język."));
    assert_eq!(
        page.text_of("devices-summary").as_deref(),
        Some("1 urządzenie")
    );
    let page = browser
        .submit(
            "/console/language",
            &[("language", "xx"), ("back", "/console/devices")],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    // Remembered for the admin, not the browser: a new browser, a new login (with a
    // recovery code: this time step's TOTP code was used by the last login).
    browser.submit("/console/logout", &[]).await;
    let mut fresh = Browser::new(&server.base_url);
    let to = fresh.login("anna.zych", PASSWORD, Some(&recovery[0])).await;
    assert_eq!(to, "/console/dashboard");
    let page = fresh.get("/console/dashboard").await;
    assert!(page.body.contains("<html lang=\"pl\">"), "{}", page.body);
    assert!(page.body.contains("Pulpit"));
    let page = fresh
        .submit(
            "/console/language",
            &[("language", "uk"), ("back", "/console/dashboard")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let page = fresh.get("/console/devices").await;
    assert!(page.body.contains("<html lang=\"uk\">"));
    assert_eq!(
        page.text_of("devices-summary").as_deref(),
        Some("1 пристрій")
    );
}

/// The policy editor: the form's fields checked one by one (a number that is not
/// one, a value out of the server's range) and shown beside the field; a preview with
/// the diff before anything is saved; the file editor in TOML; assignment to a group.
async fn policy_editor_previews_before_it_applies(backend: Backend) {
    let server = start(backend).await;
    let (mut browser, _, _) = console_admin(&server, "lena.kos", "device-admins").await;
    let page = browser
        .submit(
            "/console/policies/groups",
            &[("name", "Front desk"), ("kind", "manual")],
        )
        .await;
    assert_eq!(
        page.location.as_deref(),
        Some("/console/policies?done=group-created"),
        "{}",
        page.body
    );
    let page = browser.get("/console/policies/new").await;
    assert_eq!(page.status, StatusCode::OK);
    let form = |min_length: &'static str| {
        vec![
            ("editor", "form"),
            ("name", "front-desk"),
            ("required", "on"),
            ("min_length", min_length),
            ("auto_lock_minutes", "5"),
        ]
    };
    let page = browser
        .submit("/console/policies/preview", &form("six"))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.text_of("passcode-min-length-error").as_deref(),
        Some("must be a whole number"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("name=\"min_length\" inputmode=\"numeric\" value=\"six\""),
        "what was typed stays"
    );
    let page = browser
        .submit("/console/policies/preview", &form("2"))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let error = page
        .text_of("passcode-min-length-error")
        .unwrap_or_default();
    assert!(
        !error.is_empty(),
        "the server's range check, beside the field: {}",
        page.body
    );
    assert_eq!(
        server.get("/policies").await.as_array().map(Vec::len),
        Some(0),
        "nothing saved"
    );
    let page = browser
        .submit("/console/policies/preview", &form("6"))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("id=\"policy-diff\""));
    assert!(page.body.contains("<code>passcode"), "{}", page.body);
    assert_eq!(
        server.get("/policies").await.as_array().map(Vec::len),
        Some(0),
        "a preview saves nothing"
    );
    let document = page.field("document").expect("the previewed document");
    let page = browser
        .submit(
            "/console/policies/front-desk/apply",
            &[("document", &document), ("note", "first version")],
        )
        .await;
    assert_eq!(
        page.location.as_deref(),
        Some("/console/policies/front-desk?done=policy-saved"),
        "{}",
        page.body
    );
    let saved = server.get("/policies/front-desk").await;
    assert_eq!(saved["current_version"], 1);
    assert_eq!(saved["document"]["passcode"]["min_length"], 6);
    assert_eq!(saved["document"]["passcode"]["auto_lock_minutes"], 5);

    // The file editor, in TOML: a broken file is shown again with the errors.
    let broken = "name = \"front-desk\"\n[passcode\nrequired = true";
    let page = browser
        .submit(
            "/console/policies/preview",
            &[
                ("editor", "file"),
                ("existing", "front-desk"),
                ("format", "toml"),
                ("file", broken),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"field-errors\""), "{}", page.body);
    assert!(
        page.body.contains("[passcode\nrequired = true"),
        "the file as typed"
    );
    let toml = "name = \"front-desk\"\n[passcode]\nrequired = true\nmin_length = 8\nauto_lock_minutes = 5\n";
    let page = browser
        .submit(
            "/console/policies/preview",
            &[
                ("editor", "file"),
                ("existing", "front-desk"),
                ("format", "toml"),
                ("file", toml),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("<del>6</del>") && page.body.contains("<ins>8</ins>"),
        "{}",
        page.body
    );
    let document = page.field("document").unwrap();
    let page = browser
        .submit(
            "/console/policies/front-desk/apply",
            &[("document", &document)],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(
        server.get("/policies/front-desk").await["current_version"],
        2
    );
    // Another name in the file of this policy is refused, not saved as a new one.
    let other = toml.replace("front-desk", "another");
    let page = browser
        .submit(
            "/console/policies/preview",
            &[
                ("editor", "file"),
                ("existing", "front-desk"),
                ("format", "toml"),
                ("file", &other),
            ],
        )
        .await;
    assert!(page.body.contains("id=\"field-errors\""), "{}", page.body);

    let page = browser
        .submit(
            "/console/policies/front-desk/assignments",
            &[("group", "Front desk")],
        )
        .await;
    assert_eq!(
        page.location.as_deref(),
        Some("/console/policies/front-desk?done=assigned")
    );
    let assignments = server.get("/policies/assignments").await;
    assert_eq!(assignments[0]["target_name"], "Front desk", "{assignments}");
    let page = browser.get("/console/policies").await;
    assert!(page.body.contains("Front desk"), "{}", page.body);
    // An auditor reads policies but is offered no editor, and a post is refused.
    let (mut auditor, _, _) = console_admin(&server, "jan.audyt", "auditors").await;
    let page = auditor.get("/console/policies/front-desk").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("id=\"policy-form\""));
    let page = auditor
        .submit(
            "/console/policies/front-desk/apply",
            &[("document", &document)],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

on_every_backend!(
    policy_editor_previews_before_it_applies,
    login_and_every_page,
    forms_need_the_csrf_token_and_our_origin,
    what_a_device_sends_is_escaped,
    rights_shape_what_is_offered,
    wipe_is_confirmed_by_the_serial,
    incident_register_forms,
    language_is_chosen_and_remembered,
);
