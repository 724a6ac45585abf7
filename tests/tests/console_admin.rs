//! The console's administration pages over HTTP: the audit log with its chain
//! verified, admins and roles (disable, enable, reset the second factor), settings
//! (the push certificate and its upload, the Android Enterprise link) and users and
//! groups. Each page with its Content-Security-Policy and no inline script or style;
//! each refused (and absent from the menu) for an admin without its right; each
//! action doing what the API's route does.

use enrollment::identity::testing::TestCa;
use mdm_tests::console::{assert_safe_page, start, Browser, Page};
use mdm_tests::fake_apns::make_push_certificate;
use mdm_tests::fixture::{Backend, TestServer, TEST_PUSH_TOPIC};
use mdm_tests::on_every_backend;
use reqwest::StatusCode;
use serde_json::json;

use mdm_tests::console::PASSWORD;

/// An admin in `group` taken through the console's first login (password change,
/// second-factor enrolment): the browser comes back logged in.
async fn console_admin(server: &TestServer, name: &str, group: &str) -> Browser {
    mdm_tests::console::first_login(server, name, group)
        .await
        .browser
}

/// Polls a console page until `ready` holds (the audit trail is appended in the
/// background, every half second).
async fn wait_for_page(
    browser: &mut Browser,
    path: &str,
    what: &str,
    ready: impl Fn(&Page) -> bool,
) -> Page {
    let mut last = None;
    for _ in 0..100 {
        let page = browser.get(path).await;
        if ready(&page) {
            return page;
        }
        last = Some(page);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("{path}: {what} never happened: {}", last.unwrap().body);
}

fn number_in(text: &str) -> i64 {
    text.chars()
        .take_while(|c| !c.is_alphabetic())
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(0)
}

const PAGES: [&str; 4] = [
    "/console/audit",
    "/console/admins",
    "/console/settings",
    "/console/directory",
];

/// An owner sees the four pages, each safe, in the menu, with what the services say.
async fn every_page_renders_for_an_owner(backend: Backend) {
    let server = start(backend).await;
    for (name, groups) in [
        ("jan.kowalski", json!(["staff", "finance"])),
        ("ewa.nowak", json!(["staff"])),
    ] {
        let (code, body) = server
            .api(
                "POST",
                "/users",
                Some(json!({ "username": name, "upn": format!("{name}@town.example"), "email": format!("{name}@town.example"), "display_name": format!("Person {name}"), "department": "Finance", "groups": groups })),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }
    let mut browser = console_admin(&server, "olga.mazur", "owners").await;
    let csrf = browser.cookies["mdm_csrf"].clone();
    let dashboard = browser.get("/console/dashboard").await;
    for path in PAGES {
        assert!(
            dashboard.body.contains(&format!("href=\"{path}\"")),
            "{path} in the menu"
        );
        let page = browser.get(path).await;
        assert_safe_page(&page, path, &csrf);
        assert!(
            page.body
                .contains(&format!("href=\"{path}\" aria-current=\"page\"")),
            "{path}: the menu marks it"
        );
    }

    // Admins and roles: the accounts as GET /admins has them, the matrix as
    // GET /roles/matrix gives it.
    let page = browser.get("/console/admins").await;
    let admins = server.get("/admins").await;
    let count = admins["items"].as_array().unwrap().len() as i64;
    assert_eq!(
        number_in(&page.text_of("admins-summary").unwrap()),
        count,
        "{}",
        page.body
    );
    for needle in ["olga.mazur", "Person olga.mazur", "owners", "owner"] {
        assert!(page.body.contains(needle), "{needle}: {}", page.body);
    }
    let matrix = server.get("/roles/matrix").await;
    for row in matrix["rows"].as_array().unwrap() {
        let role = row["role_name"].as_str().unwrap();
        assert!(
            page.body.contains(&format!("<code>{role}</code>")),
            "{role} in the matrix"
        );
    }
    assert!(page.body.contains("id=\"role-matrix\""));
    assert!(page.body.contains("<code>audit.read</code>"));
    assert!(page.body.contains("read and verify the audit trail"));
    assert!(
        page.body.contains("/console/admins/olga.mazur/reset-mfa"),
        "the owner's own second factor may be reset"
    );
    assert!(
        !page.body.contains("/console/admins/olga.mazur/disable"),
        "no one is offered to disable itself"
    );

    // Settings: no push certificate yet, Android not connected (with the command).
    let page = browser.get("/console/settings").await;
    assert_eq!(page.text_of("push-state").as_deref(), Some("Missing"));
    assert!(page.body.contains("enctype=\"multipart/form-data\""));
    assert!(page.body.contains("id=\"android-not-connected\""));
    assert_eq!(
        page.text_of("android-connect-command").as_deref(),
        Some("mdm android connect --service-account key.json")
    );

    // Users and groups as the directory API gives them.
    let page = browser.get("/console/directory").await;
    assert!(page.body.contains("id=\"directory-not-configured\""));
    assert_eq!(
        page.text_of("directory-users-summary").as_deref(),
        Some("2 users")
    );
    assert_eq!(
        page.text_of("directory-groups-summary").as_deref(),
        Some("2 groups")
    );
    for needle in [
        "jan.kowalski",
        "Person ewa.nowak",
        "finance",
        "2 members",
        "By hand",
    ] {
        assert!(page.body.contains(needle), "{needle}: {}", page.body);
    }
    let page = browser.get("/console/directory?state=disabled").await;
    assert_eq!(
        page.text_of("directory-users-summary").as_deref(),
        Some("0 users")
    );
    // Syncing without a directory is refused on the page.
    let page = browser.submit("/console/directory/sync", &[]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("The sync failed"), "{}", page.body);
    // A directory configured (not reachable): where it is, never synced; a sync
    // now fails, and the page says why, as GET /directory/source has it.
    let (code, body) = server
        .api(
            "PUT",
            "/directory/source",
            Some(json!({ "url": "ldaps://127.0.0.1:1", "bind_dn": "cn=reader,dc=town,dc=example", "bind_password": "secret", "base_dn": "dc=town,dc=example", "verify": false })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let page = browser.get("/console/directory").await;
    assert_eq!(
        page.text_of("directory-state").as_deref(),
        Some("Not synced yet")
    );
    assert!(page.body.contains("ldaps://127.0.0.1:1"));
    assert!(!page.body.contains("secret"), "never the bind password");
    let page = browser.submit("/console/directory/sync", &[]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("The sync failed"), "{}", page.body);
    let page = browser.get("/console/directory").await;
    assert_eq!(page.text_of("directory-state").as_deref(), Some("Failing"));
    let source = server.get("/directory/source").await;
    assert_eq!(
        page.text_of("directory-error").as_deref(),
        source["last_sync_error"].as_str(),
        "{source}"
    );

    // In Polish and Ukrainian, with their plural forms.
    let page = browser
        .submit(
            "/console/language",
            &[("language", "pl"), ("back", "/console/directory")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let page = browser.get("/console/directory").await;
    assert_eq!(
        page.text_of("directory-users-summary").as_deref(),
        Some("2 użytkowników")
    );
    assert!(page.body.contains("Użytkownicy i grupy"));
    let page = browser.get("/console/admins").await;
    assert!(page.body.contains("Macierz ról"), "{}", page.body);
    browser
        .submit(
            "/console/language",
            &[("language", "uk"), ("back", "/console/directory")],
        )
        .await;
    let page = browser.get("/console/directory").await;
    assert_eq!(
        page.text_of("directory-groups-summary").as_deref(),
        Some("2 групи")
    );
    let page = browser.get("/console/settings").await;
    assert!(page.body.contains("Android Enterprise не під’єднано"));
}

/// The audit log: the latest records newest first, the chain verified by the
/// service GET /audit/verify uses, older records a page back, the API's export
/// reached with the console's cookie.
async fn audit_page_shows_the_chain_verified(backend: Backend) {
    let server = start(backend).await;
    let mut browser = console_admin(&server, "irena.wolna", "owners").await;
    // Enough admin actions for a second page.
    for i in 0..60 {
        let (code, body) = server
            .api(
                "PUT",
                &format!("/admin-groups/team-{i}"),
                Some(json!({ "description": "a team" })),
            )
            .await;
        assert!(code.is_success(), "{body}");
    }
    let verify = server.get("/audit/verify").await;
    assert_eq!(verify["intact"], true, "{verify}");
    // Verification reads the whole trail: it runs when asked, not on every page.
    let page = browser.get("/console/audit").await;
    assert_eq!(
        page.text_of("audit-chain").as_deref(),
        Some("Not verified yet")
    );
    let page = wait_for_page(&mut browser, "/console/audit?verify=1", "60 records", |p| {
        number_in(&p.text_of("audit-summary").unwrap_or_default()) > 60
    })
    .await;
    assert_eq!(page.text_of("audit-chain").as_deref(), Some("Verified"));
    assert!(
        page.text_of("audit-chain-detail")
            .unwrap()
            .ends_with("records checked; every link holds."),
        "{}",
        page.body
    );
    assert!(!page.body.contains("id=\"audit-problems\""));
    // Newest first: the first row has the highest number; the console admin's own
    // actions are there with their actor.
    let table = &page.body[page.body.find("id=\"audit-records\"").unwrap()..];
    let seqs: Vec<i64> = table
        .split("<tr><td>")
        .skip(1)
        .map(|row| row.split('<').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(seqs.len(), 50, "a page of records");
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");
    assert!(
        page.body.contains("<code>admin.group_changed</code>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(" UTC</td>"),
        "times as the language writes them"
    );
    // A page back: older records, and the way forward again.
    let older = page.body.split("id=\"audit-older\"").next().unwrap();
    let href = older
        .rsplit("href=\"")
        .next()
        .and_then(|h| h.split('"').next())
        .unwrap()
        .replace("&amp;", "&");
    let back = browser.get(&href).await;
    assert_eq!(back.status, StatusCode::OK, "{href}");
    assert!(back.body.contains("id=\"audit-newer\""));
    assert!(
        back.body.contains("<tr><td>1</td>"),
        "record 1 on the last page"
    );
    // An anchor: a wrong one is said so, a real one is found.
    let page = browser.get("/console/audit?verify=1&anchor=nonsense").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("The anchor was not checked"),
        "{}",
        page.body
    );
    let head = format!(
        "{}:{}",
        verify["head_seq"],
        verify["head_hash"].as_str().unwrap()
    );
    let page = browser
        .get(&format!(
            "/console/audit?verify=1&anchor={}",
            head.replace(':', "%3A")
        ))
        .await;
    assert!(
        page.text_of("audit-anchor")
            .unwrap()
            .contains("is still in the chain"),
        "{}",
        page.body
    );
    // The export link is the API's, which the session cookie reaches for a GET.
    assert!(page.body.contains("href=\"/api/v1/audit/export.csv\""));
    let csv = browser.get("/api/v1/audit/export.csv").await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.body);
    assert!(csv.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(
        csv.body.starts_with("seq,"),
        "{}",
        &csv.body[..80.min(csv.body.len())]
    );
    // Someone alters a record in the database: the page says the chain is broken,
    // and where.
    use sea_orm::ConnectionTrait;
    server
        .store()
        .await
        .connection()
        .execute_unprepared("UPDATE audit_log SET actor = 'someone.else' WHERE seq = 7")
        .await
        .unwrap();
    let page = browser.get("/console/audit?verify=1").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.text_of("audit-chain").as_deref(), Some("Broken"));
    assert!(
        page.text_of("audit-problems")
            .unwrap_or_default()
            .contains("record 7: its content does not match its hash"),
        "{}",
        page.body
    );
}

/// A help-desk admin has directory.read only among these: the other three pages are
/// refused and not in its menu, and their actions are refused when posted anyway.
async fn help_desk_gets_only_what_it_may(backend: Backend) {
    let server = start(backend).await;
    let mut helpdesk = console_admin(&server, "adam.kot", "help-desk").await;
    let dashboard = helpdesk.get("/console/dashboard").await;
    assert!(dashboard.body.contains("href=\"/console/directory\""));
    for path in ["/console/audit", "/console/admins", "/console/settings"] {
        assert!(
            !dashboard.body.contains(&format!("href=\"{path}\"")),
            "{path} not in the menu"
        );
        let page = helpdesk.get(path).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.body.contains("Not allowed"), "{path}: {}", page.body);
    }
    let page = helpdesk.get("/console/directory").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.body.contains("id=\"directory-sync\""),
        "no sync without directory.write"
    );
    for path in [
        "/console/admins/olga.mazur/disable",
        "/console/admins/olga.mazur/reset-mfa",
        "/console/directory/sync",
        "/console/settings/push-certificate",
    ] {
        let page = helpdesk
            .submit(path, &[("certificate_pem", "x"), ("reason", "x")])
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}: {}", page.body);
    }
    // An auditor reads admins, settings and the audit log, and changes nothing.
    let mut auditor = console_admin(&server, "anna.zych", "auditors").await;
    let page = auditor.get("/console/admins").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("adam.kot"));
    assert!(
        !page.body.contains("/disable\""),
        "no disable without admins.manage"
    );
    assert!(
        !page.body.contains("/reset-mfa\""),
        "no reset without admins.manage"
    );
    let page = auditor.get("/console/settings").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("id=\"push-upload\""), "push.read only");
    assert_eq!(auditor.get("/console/audit").await.status, StatusCode::OK);
    let page = auditor
        .submit("/console/admins/adam.kot/disable", &[])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let admin = server.get("/admins/adam.kot").await;
    assert_eq!(admin["disabled"], false);
}

/// Disabling an admin from the console ends its session at once (its next request
/// goes to the login form); enabling and the second-factor reset work as the API's.
async fn disabling_an_admin_ends_its_session(backend: Backend) {
    let server = start(backend).await;
    let mut owner = console_admin(&server, "olga.mazur", "owners").await;
    let mut clerk = console_admin(&server, "adam.kot", "help-desk").await;
    assert_eq!(clerk.get("/console/devices").await.status, StatusCode::OK);
    // No one disables itself: refused on the page.
    let page = owner
        .submit("/console/admins/olga.mazur/disable", &[("reason", "")])
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("class=\"error\""));
    assert!(
        page.body.contains("cannot disable its own account"),
        "{}",
        page.body
    );
    // Without the form's token, nothing happens.
    let page = owner
        .post("/console/admins/adam.kot/disable", &[("reason", "x")], None)
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(clerk.get("/console/devices").await.status, StatusCode::OK);

    let page = owner
        .submit(
            "/console/admins/adam.kot/disable",
            &[("reason", "left the office")],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let location = page.location.unwrap();
    assert_eq!(location, "/console/admins?done=disabled&admin=adam.kot");
    let page = owner.get(&location).await;
    assert!(
        page.body
            .contains("adam.kot was disabled; its sessions have ended."),
        "{}",
        page.body
    );
    assert!(page.body.contains("left the office"));
    assert!(page.body.contains("/console/admins/adam.kot/enable"));
    // The clerk's session is over.
    let page = clerk.get("/console/devices").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(
        page.location.unwrap().starts_with("/console/login"),
        "back to the login form"
    );
    let admin = server.get("/admins/adam.kot").await;
    assert_eq!(admin["disabled"], true);
    assert_eq!(admin["disabled_reason"], "left the office");
    let events = server.events("admin.account_disabled").await;
    assert_eq!(events[0]["actor"], "olga.mazur", "{events:?}");
    let refused = clerk.login("adam.kot", PASSWORD, Some("000000")).await;
    assert!(refused.contains("error="), "{refused}");

    let page = owner.submit("/console/admins/adam.kot/enable", &[]).await;
    assert_eq!(
        page.location.as_deref(),
        Some("/console/admins?done=enabled&admin=adam.kot")
    );
    assert_eq!(server.get("/admins/adam.kot").await["disabled"], false);

    // The second factor reset: MFA off, as through DELETE /admins/{name}/totp.
    let page = owner
        .submit("/console/admins/adam.kot/reset-mfa", &[])
        .await;
    assert_eq!(
        page.location.as_deref(),
        Some("/console/admins?done=mfa-reset&admin=adam.kot"),
        "{}",
        page.body
    );
    assert_eq!(server.get("/admins/adam.kot").await["mfa_enabled"], false);
    let page = owner.get("/console/admins").await;
    assert!(!page.body.contains("/console/admins/adam.kot/reset-mfa"));
    // An unknown admin: the service's 404, on the page.
    let page = owner
        .submit("/console/admins/nobody.here/enable", &[])
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("class=\"error\""), "{}", page.body);
}

fn boundary_body(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----mdmtest7MA4YWxkTrZu0gW".to_owned();
    let mut body = Vec::new();
    for (name, filename, content) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (boundary, body)
}

/// Posts a multipart form as a browser does with the page's upload form (files as
/// parts), with the browser's cookies.
async fn post_multipart(
    server: &TestServer,
    browser: &Browser,
    path: &str,
    parts: &[(&str, Option<&str>, &[u8])],
) -> (StatusCode, Option<String>, String) {
    let (boundary, body) = boundary_body(parts);
    let cookies = browser
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
        .post(format!("{}{path}", server.base_url))
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("Cookie", cookies)
        .body(body)
        .send()
        .await
        .expect("upload");
    let status = resp.status();
    let location = resp
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    (status, location, resp.text().await.unwrap())
}

/// The push certificate from the settings page: garbage refused with why on the
/// page (nothing installed), a real certificate and key accepted as files, a renewal
/// as PKCS#12, a certificate of another topic refused.
async fn push_certificate_upload(backend: Backend) {
    let server = start(backend).await;
    let mut browser = console_admin(&server, "piotr.lis", "device-admins").await;
    let csrf = browser.cookies["mdm_csrf"].clone();
    let path = "/console/settings/push-certificate";

    let page = browser
        .submit(
            path,
            &[
                ("certificate_pem", "this is not a certificate"),
                ("private_key_pem", "nor a key"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("class=\"error\""));
    assert!(
        page.body.contains("The push certificate was not accepted"),
        "{}",
        page.body
    );
    let (status, _, body) = post_multipart(
        &server,
        &browser,
        path,
        &[
            ("_csrf", None, csrf.as_bytes()),
            ("pkcs12_file", Some("push.p12"), b"\x30\x82garbage\x00\xff"),
            ("password", None, b"x"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains("The push certificate was not accepted"),
        "{body}"
    );
    let page = browser.submit(path, &[]).await;
    assert!(page.body.contains("Give the certificate"), "{}", page.body);
    let page = browser
        .submit(path, &[("pkcs12_base64", "%%% not base64")])
        .await;
    assert!(page.body.contains("not valid base64"), "{}", page.body);
    let (code, _) = server.api("GET", "/push-certificate", None).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "nothing was installed");

    // The form's token is needed in a multipart post too.
    let apple = TestCa::new("Fake Apple Push CA");
    let (key, cert) = make_push_certificate(&apple, TEST_PUSH_TOPIC, 365);
    let cert_pem = cert.to_pem().unwrap();
    let key_pem = key.private_key_to_pem_pkcs8().unwrap();
    let (status, _, _) = post_multipart(
        &server,
        &browser,
        path,
        &[
            ("_csrf", None, b"0123456789abcdef"),
            ("certificate_file", Some("MDM_Certificate.pem"), &cert_pem),
            ("private_key_file", Some("push.key"), &key_pem),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (code, _) = server.api("GET", "/push-certificate", None).await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    // A real one, as files.
    let (status, location, body) = post_multipart(
        &server,
        &browser,
        path,
        &[
            ("_csrf", None, csrf.as_bytes()),
            ("certificate_file", Some("MDM_Certificate.pem"), &cert_pem),
            ("certificate_pem", None, b""),
            ("private_key_file", Some("push.key"), &key_pem),
            ("pkcs12_file", Some(""), b""),
            ("password", None, b""),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(
        location.as_deref(),
        Some("/console/settings?done=push-uploaded")
    );
    let installed = server.get("/push-certificate").await;
    assert_eq!(installed["topic"], TEST_PUSH_TOPIC);
    assert_eq!(installed["uploaded_by"], "piotr.lis");
    let page = browser.get("/console/settings?done=push-uploaded").await;
    assert!(page.body.contains("The push certificate was installed."));
    assert_eq!(page.text_of("push-state").as_deref(), Some("OK"));
    assert!(page.body.contains(TEST_PUSH_TOPIC));
    assert!(page.body.contains("days left"), "{}", page.body);

    // A renewal as PKCS#12 (pasted as base64), same topic: accepted.
    let (key2, cert2) = make_push_certificate(&apple, TEST_PUSH_TOPIC, 20);
    let p12 = openssl::pkcs12::Pkcs12::builder()
        .name("push")
        .pkey(&key2)
        .cert(&cert2)
        .build2("s3cret")
        .unwrap()
        .to_der()
        .unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&p12);
    let page = browser
        .submit(path, &[("pkcs12_base64", &b64), ("password", "wrong")])
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("class=\"error\""), "a wrong password");
    let page = browser
        .submit(path, &[("pkcs12_base64", &b64), ("password", "s3cret")])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = browser.get("/console/settings").await;
    assert_eq!(
        page.text_of("push-state").as_deref(),
        Some("Expires soon"),
        "20 days left: the warning"
    );
    assert!(page.body.contains("id=\"push-warning\""));
    let fingerprint = server.get("/push-certificate").await["fingerprint"].clone();
    assert_ne!(fingerprint, installed["fingerprint"]);

    // Another topic would strand every enrolled device: refused, with why.
    let (key3, cert3) = make_push_certificate(
        &apple,
        "com.apple.mgmt.External.11111111-2222-3333-4444-555555555555",
        365,
    );
    let page = browser
        .submit(
            path,
            &[
                (
                    "certificate_pem",
                    &String::from_utf8(cert3.to_pem().unwrap()).unwrap(),
                ),
                (
                    "private_key_pem",
                    &String::from_utf8(key3.private_key_to_pem_pkcs8().unwrap()).unwrap(),
                ),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("topic"), "{}", page.body);
    assert!(page.body.contains("class=\"error\""));
    assert_eq!(
        server.get("/push-certificate").await["fingerprint"],
        fingerprint,
        "unchanged"
    );
}

/// Android Enterprise connected from the settings page with the service-account key
/// file (against the fake Google): a key that is not JSON is refused on the page,
/// the real one connects and the page shows the sign-up link; a help-desk admin is
/// offered no form and its post is refused.
async fn android_connects_from_the_settings_page(backend: Backend) {
    let android = mdm_tests::android_fixture::start(backend, &["--admin-max-failures", "0"]).await;
    let server = &android.server;
    let browser = console_admin(server, "tomasz.nowy", "device-admins").await;
    let csrf = browser.cookies["mdm_csrf"].clone();
    let path = "/console/settings/android";
    let (status, _, body) = post_multipart(
        server,
        &browser,
        path,
        &[
            ("_csrf", None, csrf.as_bytes()),
            ("service_account_file", Some("key.json"), b"{not json"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("The key is not JSON"), "{body}");
    let key = android.key.to_string();
    let (status, location, body) = post_multipart(
        server,
        &browser,
        path,
        &[
            ("_csrf", None, csrf.as_bytes()),
            ("service_account_file", Some("key.json"), key.as_bytes()),
            (
                "pubsub_topic",
                None,
                mdm_tests::android_fixture::TOPIC.as_bytes(),
            ),
            (
                "pubsub_subscription",
                None,
                mdm_tests::android_fixture::SUBSCRIPTION.as_bytes(),
            ),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(
        location.as_deref(),
        Some("/console/settings?done=android-connected")
    );
    let status = android.status().await;
    assert_eq!(status["state"], "signup_pending", "{status}");
    let mut browser = browser;
    let page = browser
        .get("/console/settings?done=android-connected")
        .await;
    assert!(page.body.contains("id=\"android-signup\""), "{}", page.body);
    assert!(page.body.contains("Connected to Google."));
    let secret = android.key["private_key"].as_str().unwrap();
    let body_of_key = secret.lines().nth(2).expect("a PEM line of the key");
    assert!(!page.body.contains(body_of_key), "the key is never shown");
    // A help-desk admin: no form, and its post is refused.
    let mut helpdesk = console_admin(server, "ola.mak", "help-desk").await;
    assert!(!helpdesk
        .get("/console/settings")
        .await
        .body
        .contains("id=\"android-connect\""));
    let csrf = helpdesk.cookies["mdm_csrf"].clone();
    let (status, _, _) = post_multipart(
        server,
        &helpdesk,
        path,
        &[
            ("_csrf", None, csrf.as_bytes()),
            ("service_account_file", Some("key.json"), key.as_bytes()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

on_every_backend!(
    android_connects_from_the_settings_page,
    every_page_renders_for_an_owner,
    audit_page_shows_the_chain_verified,
    help_desk_gets_only_what_it_may,
    disabling_an_admin_ends_its_session,
    push_certificate_upload,
);
