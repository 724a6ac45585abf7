//! Admin accounts (issue 10): every endpoint's right, table-driven over the served
//! OpenAPI document; the office's password rules, expiry and lockout; TOTP with codes
//! computed here by RFC 6238 (not by the server's crate); sessions (bearer, the CLI's
//! file, the console's cookie); tokens' scope, expiry and revocation; a disabled
//! admin's live session refused; the role matrix; the audit trail's chain found
//! broken after rows are changed in the database; off-boarding a user's Apple and
//! Android devices.

use mdm_tests::fixture::{mdm_binary, Backend, ServerOptions, TempDir, TestServer};
use mdm_tests::on_every_backend;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery staple";
const PASSWORD2: &str = "a rather long second passphrase";

async fn sql(server: &TestServer, statement: &str) {
    use sea_orm::ConnectionTrait;
    let store = server.store().await;
    store
        .connection()
        .execute_unprepared(statement)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// A timestamp literal both engines read back as the server writes them.
fn ts(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339()
}

async fn start(backend: Backend) -> TestServer {
    // The per-address limit on failed authentications is off: these tests fail on
    // purpose more often than it allows.
    TestServer::start_with(
        backend,
        ServerOptions {
            extra_args: vec!["--admin-max-failures".into(), "0".into()],
            ..Default::default()
        },
    )
    .await
}

async fn put_role(server: &TestServer, name: &str, rights: &[&str], critical: bool) {
    let (code, body) = server
        .api(
            "PUT",
            &format!("/roles/{name}"),
            Some(json!({ "description": format!("test role {name}"), "rights": rights, "critical": critical })),
        )
        .await;
    assert!(code.is_success(), "role {name}: {body}");
}

async fn put_group(server: &TestServer, name: &str, roles: &[&str]) {
    let (code, body) = server
        .api(
            "PUT",
            &format!("/admin-groups/{name}"),
            Some(json!({ "description": "test" })),
        )
        .await;
    assert!(code.is_success(), "group {name}: {body}");
    let (code, body) = server
        .api(
            "POST",
            &format!("/admin-groups/{name}/roles"),
            Some(json!({ "add": roles })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
}

/// A service account's token with `role`, created by the bootstrap owner.
async fn service_token(server: &TestServer, name: &str, role: &str) -> (String, String) {
    let (code, body) = server
        .api(
            "POST",
            "/tokens",
            Some(json!({ "name": name, "role": role, "service_account": true, "expires_in_days": 30 })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    (
        body["token"].as_str().unwrap().to_owned(),
        body["id"].as_str().unwrap().to_owned(),
    )
}

async fn login(server: &TestServer, body: Value) -> (StatusCode, Value) {
    server.api_as(None, "POST", "/session", Some(body)).await
}

/// An admin in `groups` (created by the owner with a temporary password, which it
/// changes at its first login to PASSWORD); returns a session token.
async fn admin_session(server: &TestServer, name: &str, groups: &[&str]) -> String {
    let (code, body) = server
        .api(
            "POST",
            "/admins",
            Some(json!({ "name": name, "display_name": "Test Person", "password": "temporary password 123", "groups": groups })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(body["must_change_password"], true);
    let (code, body) = login(
        server,
        json!({ "username": name, "password": "temporary password 123" }),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["must_change_password"], true);
    let token = body["token"].as_str().unwrap().to_owned();
    let (code, body) = server
        .api_as(
            Some(&token),
            "POST",
            "/session/password",
            Some(json!({ "current_password": "temporary password 123", "new_password": PASSWORD })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    token
}

async fn wait_for<F: Fn(&Value) -> bool>(
    server: &TestServer,
    path: &str,
    what: &str,
    check: F,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = server.get(path).await;
        if check(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

use mdm_tests::totp::code as totp;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn totp_here_matches_rfc_6238_appendix_b() {
    // "12345678901234567890" in base32.
    let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    assert_eq!(totp(secret, 59), "287082");
    assert_eq!(totp(secret, 1111111109), "081804");
    assert_eq!(totp(secret, 2000000000), "279037");
}

/// Every documented operation names its right; without credentials it answers 401;
/// with a role holding every right but that one, 403 naming the right. A new endpoint
/// missing from http/api/rights.rs fails here (and in the server's unit test).
async fn every_endpoint_checks_its_right(backend: Backend) {
    let server = start(backend).await;
    let (code, doc) = server.api_as(None, "GET", "/openapi.json", None).await;
    assert_eq!(code, StatusCode::OK);
    let all_rights: BTreeSet<String> = server.get("/roles/matrix").await["rights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["right"].as_str().unwrap().to_owned())
        .collect();
    let command_rights = [
        "commands.send",
        "devices.query",
        "devices.lock",
        "devices.lost_mode",
        "devices.wipe",
    ];
    let mut lacking: std::collections::BTreeMap<String, String> = Default::default();
    let mut operations = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for (method, op) in ops.as_object().unwrap() {
            let method = method.to_uppercase();
            let right = op["x-required-right"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} names no right"))
                .to_owned();
            assert!(
                op["description"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("right")
                    || right == "public"
                    || right == "self",
                "{method} {path}: the description states the right"
            );
            if right == "public" {
                assert_eq!(op["security"], json!([]), "{method} {path}");
                continue;
            }
            operations += 1;
            let (code, body) = server
                .api_as(None, &method, &concrete, Some(json!({})))
                .await;
            assert_eq!(
                code,
                StatusCode::UNAUTHORIZED,
                "{method} {path} without credentials: {body}"
            );
            if right == "self" {
                continue;
            }
            assert!(
                all_rights.contains(&right),
                "{method} {path}: unknown right {right}"
            );
            // A role with every right but this one (for command routes, none of the
            // command rights).
            let token = match lacking.get(&right) {
                Some(t) => t.clone(),
                None => {
                    let role = format!("without-{}", right.replace('.', "-"));
                    let rights: Vec<&str> = all_rights
                        .iter()
                        .map(String::as_str)
                        .filter(|r| {
                            *r != right && !(right == "commands.send" && command_rights.contains(r))
                        })
                        .collect();
                    put_role(&server, &role, &rights, false).await;
                    let (t, _) = service_token(&server, &role, &role).await;
                    lacking.insert(right.clone(), t.clone());
                    t
                }
            };
            let (code, body) = server
                .api_as(Some(&token), &method, &concrete, Some(json!({})))
                .await;
            assert_eq!(
                code,
                StatusCode::FORBIDDEN,
                "{method} {path} without {right}: {body}"
            );
            assert!(
                body["error"].as_str().unwrap_or_default().contains(&right),
                "{method} {path}: the refusal names {right}: {body}"
            );
        }
    }
    assert!(operations > 100, "{operations} operations checked");
    // Refusals of a known caller are in the event stream (and so the audit trail).
    assert!(!server.events("auth.denied").await.is_empty());
}

/// The help desk locks and sets lost mode; it cannot wipe, neither through the wipe
/// endpoint nor through a command, and cannot touch policies.
async fn help_desk_locks_but_does_not_wipe(backend: Backend) {
    let server = start(backend).await;
    let phone = mdm_tests::simulator::SimDevice::iphone(&server.base_url, &server.ca);
    phone.enroll().await;
    let id = server.get(&format!("/devices/udid:{}", phone.udid)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (help, _) = service_token(&server, "desk", "help_desk").await;
    let call = |method: &'static str, path: String, body: Value| {
        let server = &server;
        let help = help.clone();
        async move { server.api_as(Some(&help), method, &path, Some(body)).await }
    };
    let (code, body) = call("POST", format!("/devices/{id}/lock"), json!({})).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    let (code, body) = call(
        "POST",
        format!("/devices/{id}/commands"),
        json!({ "type": "EnableLostMode", "message": "Please return" }),
    )
    .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    let (code, body) = call(
        "POST",
        format!("/devices/{id}/commands"),
        json!({ "type": "DeviceInformation" }),
    )
    .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    let (code, body) = call(
        "POST",
        format!("/devices/{id}/wipe"),
        json!({ "confirm": id }),
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    for spec in [
        json!({ "type": "EraseDevice" }),
        json!({ "type": "Raw", "plist": "<plist/>" }),
    ] {
        let (code, body) = call("POST", format!("/devices/{id}/commands"), spec.clone()).await;
        assert_eq!(code, StatusCode::FORBIDDEN, "{spec}: {body}");
        let mut bulk = spec.clone();
        bulk["device_ids"] = json!([id]);
        let (code, body) = call("POST", "/commands".into(), bulk).await;
        assert_eq!(code, StatusCode::FORBIDDEN, "{spec}: {body}");
    }
    assert!(body_contains(
        &call(
            "POST",
            format!("/devices/{id}/commands"),
            json!({ "type": "EraseDevice" })
        )
        .await
        .1,
        "devices.wipe"
    ));
    let (code, _) = call("PUT", "/policies/staff".into(), json!({})).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, _) = call("GET", "/devices".into(), json!({})).await;
    assert_eq!(code, StatusCode::OK);
    // Nothing but the lock, lost mode and the query was queued.
    let queued: Vec<String> = server.get(&format!("/devices/{id}/commands")).await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["request_type"].as_str().unwrap().to_owned())
        .collect();
    assert!(!queued.contains(&"EraseDevice".to_owned()), "{queued:?}");
}

fn body_contains(v: &Value, needle: &str) -> bool {
    v.to_string().contains(needle)
}

/// At least 14 characters, not the name, not reused; 20 days at most, then only the
/// password change is allowed; lockout with back-off after failed logins.
async fn password_rules_expiry_and_lockout(backend: Backend) {
    let server = start(backend).await;
    put_role(&server, "viewer", &["devices.read"], false).await;
    put_group(&server, "viewers", &["viewer"]).await;
    // The rules, checked at creation.
    for (name, password, needle) in [
        ("jan.kowalski", "short", "14 characters"),
        ("jan.kowalski", "xx jan.kowalski xx yy", "account name"),
        ("admin", PASSWORD, "privileged"),
    ] {
        let (code, body) = server
            .api(
                "POST",
                "/admins",
                Some(json!({ "name": name, "display_name": "Jan Kowalski", "password": password, "groups": ["viewers"] })),
            )
            .await;
        assert!(
            matches!(
                code,
                StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
            ),
            "{name} {password}: {body}"
        );
        assert!(body_contains(&body, needle), "{body}");
    }
    let session = admin_session(&server, "jan.kowalski", &["viewers"]).await;
    let (code, _) = server.api_as(Some(&session), "GET", "/devices", None).await;
    assert_eq!(code, StatusCode::OK);
    // Stored as Argon2id, never in the clear.
    {
        use sea_orm::{ConnectionTrait, Statement};
        let store = server.store().await;
        let row = store
            .connection()
            .query_one(Statement::from_string(
                store.connection().get_database_backend(),
                "SELECT password_hash FROM admins WHERE name = 'jan.kowalski'".to_owned(),
            ))
            .await
            .unwrap()
            .unwrap();
        let hash: String = row.try_get("", "password_hash").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains(PASSWORD));
    }

    // 21 days later the password has expired: only the password change is allowed.
    sql(
        &server,
        &format!(
            "UPDATE admins SET password_changed_at = '{}' WHERE name = 'jan.kowalski'",
            ts(chrono::Utc::now() - chrono::Duration::days(21))
        ),
    )
    .await;
    let (code, body) = server.api_as(Some(&session), "GET", "/devices", None).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    assert!(body_contains(&body, "password must be changed"), "{body}");
    let me = server
        .api_as(Some(&session), "GET", "/session", None)
        .await
        .1;
    assert_eq!(me["restriction"], "password_change", "{me}");
    let change =
        |current: &str, new: &str| json!({ "current_password": current, "new_password": new });
    // Not the current one, nor the temporary one before it.
    for reused in [PASSWORD, "temporary password 123"] {
        let (code, body) = server
            .api_as(
                Some(&session),
                "POST",
                "/session/password",
                Some(change(PASSWORD, reused)),
            )
            .await;
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body_contains(&body, "last 5"), "{body}");
    }
    let (code, _) = server
        .api_as(
            Some(&session),
            "POST",
            "/session/password",
            Some(change("wrong current pw!", PASSWORD2)),
        )
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, body) = server
        .api_as(
            Some(&session),
            "POST",
            "/session/password",
            Some(change(PASSWORD, PASSWORD2)),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, _) = server.api_as(Some(&session), "GET", "/devices", None).await;
    assert_eq!(code, StatusCode::OK);

    // Five wrong passwords in a row lock the account (the wrong current password
    // above was the first); the right one is refused while locked.
    for _ in 0..4 {
        let (code, body) = login(
            &server,
            json!({ "username": "jan.kowalski", "password": "not the password" }),
        )
        .await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"], "wrong username or password");
    }
    let (code, body) = login(
        &server,
        json!({ "username": "nobody.here", "password": "not the password" }),
    )
    .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["error"], "wrong username or password",
        "the same answer for an unknown account"
    );
    let resp = reqwest::Client::new()
        .post(server.url("/api/v1/session"))
        .json(&json!({ "username": "jan.kowalski", "password": PASSWORD2 }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: i64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // One more failure while locked doubles nothing (it is not even checked); after
    // the lock a wrong password locks for twice as long.
    sql(
        &server,
        &format!(
            "UPDATE admins SET locked_until = '{}' WHERE name = 'jan.kowalski'",
            ts(chrono::Utc::now() - chrono::Duration::seconds(1))
        ),
    )
    .await;
    let (code, _) = login(
        &server,
        json!({ "username": "jan.kowalski", "password": "still not it" }),
    )
    .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let resp = reqwest::Client::new()
        .post(server.url("/api/v1/session"))
        .json(&json!({ "username": "jan.kowalski", "password": PASSWORD2 }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: i64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((61..=120).contains(&wait), "back-off doubles: {wait}");
    sql(
        &server,
        &format!(
            "UPDATE admins SET locked_until = '{}' WHERE name = 'jan.kowalski'",
            ts(chrono::Utc::now() - chrono::Duration::seconds(1))
        ),
    )
    .await;
    let (code, body) = login(
        &server,
        json!({ "username": "jan.kowalski", "password": PASSWORD2 }),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(server.get("/admins/jan.kowalski").await["failed_logins"], 0);
    let failed = server.events("auth.login_failed").await;
    assert!(failed.len() >= 8, "{}", failed.len());
    assert!(
        failed
            .iter()
            .all(|e| !e.to_string().contains("not the password")),
        "passwords are never logged"
    );
    assert_eq!(failed[0]["data"]["address"], "127.0.0.1");
}

/// TOTP: enrolment as otpauth:// URI and QR code, confirmed with a code computed here;
/// required for a critical role; password then code (a ticket); a code is accepted
/// once; recovery codes work once.
async fn totp_second_factor(backend: Backend) {
    let server = start(backend).await;
    // auditors hold the auditor role, which is critical.
    let session = admin_session(&server, "anna.nowak", &["auditors"]).await;
    let (code, body) = server.api_as(Some(&session), "GET", "/devices", None).await;
    assert_eq!(
        code,
        StatusCode::FORBIDDEN,
        "a critical role needs a second factor first"
    );
    assert!(body_contains(&body, "second factor"), "{body}");
    let (code, enrolment) = server
        .api_as(Some(&session), "POST", "/session/totp", None)
        .await;
    assert_eq!(code, StatusCode::OK, "{enrolment}");
    let uri = enrolment["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(
        uri.contains("anna.nowak") && uri.contains("secret="),
        "{uri}"
    );
    assert!(enrolment["qr_svg"].as_str().unwrap().contains("<svg"));
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    // The secret is sealed at rest.
    {
        use sea_orm::{ConnectionTrait, Statement};
        let store = server.store().await;
        let row = store
            .connection()
            .query_one(Statement::from_string(
                store.connection().get_database_backend(),
                "SELECT totp_pending_sealed FROM admins WHERE name = 'anna.nowak'".to_owned(),
            ))
            .await
            .unwrap()
            .unwrap();
        let sealed: Vec<u8> = row.try_get("", "totp_pending_sealed").unwrap();
        assert!(!sealed.is_empty() && !String::from_utf8_lossy(&sealed).contains(&secret));
    }
    let (code, _) = server
        .api_as(
            Some(&session),
            "POST",
            "/session/totp/confirm",
            Some(json!({ "code": "000000" })),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    let t = now();
    let (code, confirmed) = server
        .api_as(
            Some(&session),
            "POST",
            "/session/totp/confirm",
            Some(json!({ "code": totp(&secret, t) })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{confirmed}");
    let recovery: Vec<String> = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recovery.len(), 10);
    let (code, _) = server.api_as(Some(&session), "GET", "/devices", None).await;
    assert_eq!(code, StatusCode::OK, "enrolled in this session: it goes on");

    // Password, then the code with the ticket.
    let (code, first) = login(
        &server,
        json!({ "username": "anna.nowak", "password": PASSWORD }),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{first}");
    assert_eq!(first["mfa_required"], true);
    assert!(first["token"].is_null());
    let ticket = first["ticket"].as_str().unwrap().to_owned();
    let (code, _) = server.api_as(Some(&ticket), "GET", "/devices", None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "a ticket is no session");
    let (code, body) = login(&server, json!({ "ticket": ticket, "totp": "123456" })).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{body}");
    // The code just used at the enrolment is not accepted again; the next one is.
    let (code, _) = login(
        &server,
        json!({ "ticket": ticket, "totp": totp(&secret, t) }),
    )
    .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "a code is accepted once");
    let (code, second) = login(
        &server,
        json!({ "ticket": ticket, "totp": totp(&secret, t + 30) }),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{second}");
    let token = second["token"].as_str().unwrap();
    assert_eq!(second["session"]["mfa"], true);
    let (code, _) = server.api_as(Some(token), "GET", "/devices", None).await;
    assert_eq!(code, StatusCode::OK);
    let (code, _) = login(
        &server,
        json!({ "ticket": ticket, "totp": totp(&secret, t + 30) }),
    )
    .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "a ticket is used once");

    // A recovery code, once.
    let (code, third) = login(
        &server,
        json!({ "username": "anna.nowak", "password": PASSWORD, "recovery_code": recovery[3].to_lowercase() }),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{third}");
    let (code, _) = login(
        &server,
        json!({ "username": "anna.nowak", "password": PASSWORD, "recovery_code": recovery[3] }),
    )
    .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "a recovery code works once");
    assert_eq!(
        server.get("/admins/anna.nowak").await["recovery_codes_left"],
        9
    );
    assert!(server.events("auth.mfa_failed").await.len() >= 3);
    assert_eq!(server.events("admin.mfa_enrolled").await.len(), 1);
    // Logout ends the session.
    let (code, _) = server.api_as(Some(token), "DELETE", "/session", None).await;
    assert_eq!(code, StatusCode::OK);
    let (code, _) = server.api_as(Some(token), "GET", "/devices", None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
}

/// Tokens carry a role, expire, are stored hashed and can be revoked; an admin's
/// token never grants more than its admin, and stops with it.
async fn tokens_scope_expiry_and_revocation(backend: Backend) {
    let server = start(backend).await;
    put_role(&server, "viewer", &["devices.read"], false).await;
    put_group(&server, "viewers", &["viewer"]).await;
    let (viewer, viewer_id) = service_token(&server, "siem", "viewer").await;
    let (code, _) = server.api_as(Some(&viewer), "GET", "/devices", None).await;
    assert_eq!(code, StatusCode::OK);
    let (code, body) = server
        .api_as(
            Some(&viewer),
            "POST",
            "/enrollments",
            Some(json!({ "platform": "apple", "name": "x" })),
        )
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    assert!(body_contains(&body, "enrollments.write"));
    // A use is an event (at most once a minute per token), with the address.
    let used = server.events("auth.token_used").await;
    assert_eq!(used.len(), 1, "{used:?}");
    assert_eq!(used[0]["data"]["address"], "127.0.0.1");
    assert_eq!(used[0]["actor"], "token:siem");
    // Stored as a hash.
    {
        use sea_orm::{ConnectionTrait, Statement};
        let store = server.store().await;
        let rows = store
            .connection()
            .query_all(Statement::from_string(
                store.connection().get_database_backend(),
                "SELECT token_hash FROM admin_tokens".to_owned(),
            ))
            .await
            .unwrap();
        for row in rows {
            let h: String = row.try_get("", "token_hash").unwrap();
            assert_ne!(h, viewer);
        }
    }
    // Expired.
    sql(
        &server,
        &format!(
            "UPDATE admin_tokens SET expires_at = '{}' WHERE id = '{viewer_id}'",
            ts(chrono::Utc::now() - chrono::Duration::seconds(5))
        ),
    )
    .await;
    let (code, body) = server.api_as(Some(&viewer), "GET", "/devices", None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(body_contains(&body, "expired"), "{body}");

    // An admin's own token, from its session: a role it holds, not one it does not.
    let session = admin_session(&server, "piotr.wisniewski", &["viewers"]).await;
    let (code, body) = server
        .api_as(
            Some(&session),
            "POST",
            "/tokens",
            Some(json!({ "name": "laptop", "role": "owner" })),
        )
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    let (code, created) = server
        .api_as(
            Some(&session),
            "POST",
            "/tokens",
            Some(json!({ "name": "laptop", "role": "viewer", "expires_in_days": 7 })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let own = created["token"].as_str().unwrap().to_owned();
    let (code, _) = server.api_as(Some(&own), "GET", "/devices", None).await;
    assert_eq!(code, StatusCode::OK);
    // A token does not make tokens.
    let (code, _) = server
        .api_as(
            Some(&own),
            "POST",
            "/tokens",
            Some(json!({ "name": "more", "role": "viewer" })),
        )
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (_, list) = server.api_as(Some(&session), "GET", "/tokens", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(
        !list.to_string().contains(&own),
        "never listed with its secret"
    );
    // The admin loses the role: its token loses it too, at once.
    let (code, _) = server
        .api(
            "POST",
            "/admin-groups/viewers/members",
            Some(json!({ "remove": ["piotr.wisniewski"] })),
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    let (code, _) = server.api_as(Some(&own), "GET", "/devices", None).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, _) = server
        .api(
            "POST",
            "/admin-groups/viewers/members",
            Some(json!({ "add": ["piotr.wisniewski"] })),
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    // Revoked.
    let id = created["id"].as_str().unwrap();
    let (code, _) = server
        .api_as(Some(&session), "DELETE", &format!("/tokens/{id}"), None)
        .await;
    assert_eq!(code, StatusCode::OK);
    let (code, _) = server.api_as(Some(&own), "GET", "/devices", None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(!server.events("admin.token_revoked").await.is_empty());
}

/// Disabling an admin blocks it on its very next request: its live session and its
/// tokens, on the server host's command as through the API, and it leaves its groups.
async fn disabled_admin_is_refused_at_once(backend: Backend) {
    let server = start(backend).await;
    put_role(&server, "viewer", &["devices.read"], false).await;
    put_group(&server, "viewers", &["viewer"]).await;
    let session = admin_session(&server, "ewa.zielinska", &["viewers"]).await;
    let (code, created) = server
        .api_as(
            Some(&session),
            "POST",
            "/tokens",
            Some(json!({ "name": "script", "role": "viewer" })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    let token = created["token"].as_str().unwrap().to_owned();
    assert_eq!(
        server
            .api_as(Some(&session), "GET", "/devices", None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        server.api_as(Some(&token), "GET", "/devices", None).await.0,
        StatusCode::OK
    );
    // On the server host, straight in the database (another process than the server).
    let out = std::process::Command::new(mdm_binary())
        .args([
            "admin",
            "disable",
            "ewa.zielinska",
            "--reason",
            "left the office",
            "--database-url",
            &server.database_url,
        ])
        .arg("--data-dir")
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, body) = server.api_as(Some(&session), "GET", "/devices", None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{body}");
    let (code, _) = server.api_as(Some(&token), "GET", "/devices", None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, body) = login(
        &server,
        json!({ "username": "ewa.zielinska", "password": PASSWORD }),
    )
    .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(body_contains(&body, "disabled"));
    let ewa = server.get("/admins/ewa.zielinska").await;
    assert_eq!(ewa["disabled"], true);
    assert_eq!(ewa["groups"], json!([]), "removed from all groups: {ewa}");
    let disabled = server.events("admin.account_disabled").await;
    assert_eq!(
        disabled[0]["data"]["removed_from_groups"],
        json!(["viewers"])
    );
    // Enabled again, it has no rights until a group is granted.
    let (code, _) = server
        .api("POST", "/admins/ewa.zielinska/enable", None)
        .await;
    assert_eq!(code, StatusCode::OK);
    let (code, body) = login(
        &server,
        json!({ "username": "ewa.zielinska", "password": PASSWORD }),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let fresh = body["token"].as_str().unwrap();
    assert_eq!(
        server.api_as(Some(fresh), "GET", "/devices", None).await.0,
        StatusCode::FORBIDDEN
    );
}

/// The CLI: `mdm admin create` on the host, `mdm login` keeps the session in a 0600
/// file the other commands use, `mdm logout` ends it.
async fn cli_login_keeps_a_private_session(backend: Backend) {
    use std::io::Write;
    let server = start(backend).await;
    put_role(&server, "viewer", &["devices.read", "admins.read"], false).await;
    put_group(&server, "viewers", &["viewer"]).await;
    let host = |args: &[&str], stdin: &str| {
        let mut child = std::process::Command::new(mdm_binary())
            .args(args)
            .args(["--database-url", &server.database_url])
            .arg("--data-dir")
            .arg(&server.data_dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = host(
        &[
            "admin",
            "create",
            "marta.lis",
            "--display-name",
            "Marta Lis",
            "--group",
            "viewers",
            "--password-stdin",
        ],
        "short\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("14 characters"));
    let out = host(
        &[
            "admin",
            "create",
            "marta.lis",
            "--display-name",
            "Marta Lis",
            "--group",
            "viewers",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = host(&["admin", "list"], "");
    assert!(String::from_utf8_lossy(&out.stdout).contains("marta.lis"));

    let dir = mdm_tests::fixture::TempDir::new("cli-session");
    let session_file = dir.0.join("mdm").join("session.toml");
    let cli = |args: &[&str], stdin: &str| {
        let mut child = std::process::Command::new(mdm_binary())
            .args(args)
            .env("MDM_SERVER", &server.base_url)
            .env_remove("MDM_TOKEN")
            .env("MDM_CLI_CONFIG", dir.0.join("mdm").join("cli.toml"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = cli(
        &["login", "--username", "marta.lis", "--password-stdin"],
        "wrong password here\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(!session_file.exists());
    let out = cli(
        &["login", "--username", "marta.lis", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&session_file)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "the session file is the user's alone");
    }
    let out = cli(&["devices", "list"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["admins", "list"], "");
    assert!(String::from_utf8_lossy(&out.stdout).contains("marta.lis"));
    let out = cli(&["roles", "matrix", "--csv"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .starts_with("system name,role name,description,rights,critical"));
    let out = cli(&["enroll", "list"], "");
    assert_eq!(out.status.code(), Some(1), "viewer lacks enrollments.read");
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"));
    let token = std::fs::read_to_string(&session_file).unwrap();
    let out = cli(&["logout"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!session_file.exists());
    let old: toml::Value = toml::from_str(&token).unwrap();
    let (code, _) = server
        .api_as(old["token"].as_str(), "GET", "/devices", None)
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "the session is revoked");
}

/// The console's cookie: Secure, HttpOnly, SameSite=Strict; unsafe requests need the
/// CSRF token; the session ends after its idle timeout.
async fn cookie_sessions_need_the_csrf_token(backend: Backend) {
    let server = start(backend).await;
    put_role(
        &server,
        "groupie",
        &["policies.read", "policies.write"],
        false,
    )
    .await;
    put_group(&server, "groupies", &["groupie"]).await;
    admin_session(&server, "olga.mazur", &["groupies"]).await;
    let http = reqwest::Client::new();
    let resp = http
        .post(server.url("/api/v1/session"))
        .json(&json!({ "username": "olga.mazur", "password": PASSWORD, "cookie": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in [
        "mdm_session=",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/api/v1",
    ] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["token"].is_null(),
        "a cookie session's token is only in the cookie"
    );
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    let value = cookie.split(';').next().unwrap().to_owned();
    let resp = http
        .get(server.url("/api/v1/device-groups"))
        .header("Cookie", &value)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let group = json!({ "name": "front-office", "kind": "manual" });
    let resp = http
        .post(server.url("/api/v1/device-groups"))
        .header("Cookie", &value)
        .json(&group)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "no CSRF token");
    let resp = http
        .post(server.url("/api/v1/device-groups"))
        .header("Cookie", &value)
        .header("X-CSRF-Token", "csrf_wrong")
        .json(&group)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "a wrong CSRF token");
    let resp = http
        .post(server.url("/api/v1/device-groups"))
        .header("Cookie", &value)
        .header("X-CSRF-Token", &csrf)
        .json(&group)
        .send()
        .await
        .unwrap();
    assert_ne!(resp.status(), StatusCode::FORBIDDEN);
    assert_ne!(resp.status(), StatusCode::UNAUTHORIZED);
    // The cookie's value is no bearer token.
    let raw = value.trim_start_matches("mdm_session=");
    assert_eq!(
        server
            .api_as(Some(raw), "GET", "/device-groups", None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // Idle for longer than 15 minutes: ended.
    sql(
        &server,
        &format!(
            "UPDATE admin_sessions SET last_seen_at = '{}' WHERE kind = 'cookie'",
            ts(chrono::Utc::now() - chrono::Duration::minutes(16))
        ),
    )
    .await;
    let resp = http
        .get(server.url("/api/v1/device-groups"))
        .header("Cookie", &value)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Sessions are listed and revoked.
    let (code, body) = login(
        &server,
        json!({ "username": "olga.mazur", "password": PASSWORD }),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let token = body["token"].as_str().unwrap();
    let sessions = server.api_as(Some(token), "GET", "/sessions", None).await.1;
    let ids: Vec<String> = sessions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!ids.is_empty());
    let all = server.get("/sessions?admin=all").await;
    assert!(all["items"].as_array().unwrap().len() >= ids.len());
    let (code, _) = server
        .api(
            "DELETE",
            &format!("/sessions/{}", body["session"]["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        server
            .api_as(Some(token), "GET", "/device-groups", None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

/// The role matrix in the policy's columns; roles edited, owner kept whole.
async fn role_matrix_and_access_review(backend: Backend) {
    let server = start(backend).await;
    let m = server.get("/roles/matrix").await;
    assert_eq!(
        m["columns"],
        json!([
            "system name",
            "role name",
            "description",
            "rights",
            "critical"
        ])
    );
    let rows = m["rows"].as_array().unwrap();
    let role = |name: &str| {
        rows.iter()
            .find(|r| r["role_name"] == name)
            .cloned()
            .unwrap()
    };
    for name in [
        "owner",
        "device_admin",
        "help_desk",
        "incident_manager",
        "auditor",
    ] {
        let r = role(name);
        assert_eq!(r["system_name"], "MDM");
        assert!(r["description"].as_str().unwrap().len() > 10);
        assert!(r["critical"].is_boolean());
    }
    let help = role("help_desk");
    let help_rights: Vec<&str> = help["rights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(help_rights.contains(&"devices.lock") && help_rights.contains(&"devices.lost_mode"));
    assert!(!help_rights.contains(&"devices.wipe") && !help_rights.contains(&"policies.write"));
    assert_eq!(help["granted_to_groups"], json!(["help-desk"]));
    let auditor_role = role("auditor");
    let auditor: Vec<&str> = auditor_role["rights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        auditor
            .iter()
            .all(|r| r.ends_with(".read") || *r == "exports"),
        "read only: {auditor:?}"
    );
    let (code, csv) = server.api("GET", "/roles/matrix.csv", None).await;
    assert_eq!(code, StatusCode::OK);
    let csv = csv.as_str().unwrap();
    assert!(
        csv.starts_with("system name,role name,description,rights,critical\n"),
        "{csv}"
    );
    assert!(csv.contains("MDM,help_desk,"));
    // Editing: unknown rights refused, the owner keeps every right.
    let (code, body) = server
        .api(
            "PUT",
            "/roles/help_desk",
            Some(json!({ "description": "x", "rights": ["devices.explode"], "critical": true })),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (code, _) = server
        .api(
            "PUT",
            "/roles/owner",
            Some(json!({ "description": "x", "rights": ["devices.read"], "critical": true })),
        )
        .await;
    assert_eq!(code, StatusCode::CONFLICT);
    let (code, _) = server.api("DELETE", "/roles/help_desk", None).await;
    assert_eq!(
        code,
        StatusCode::CONFLICT,
        "built-in roles are edited, not deleted"
    );
    let mut rights = help_rights.clone();
    rights.push("incidents.read");
    let (code, body) = server
        .api(
            "PUT",
            "/roles/help_desk",
            Some(json!({ "description": help["description"], "rights": rights, "critical": true })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let changed = server.events("admin.role_changed").await;
    assert!(changed.last().unwrap()["data"]["after"]["rights"]
        .to_string()
        .contains("incidents.read"));

    // No one hands out rights it does not hold: an admin manager who is no owner
    // cannot put anyone (itself included) into the owners' group.
    put_role(&server, "people", &["admins.read", "admins.manage"], false).await;
    put_group(&server, "people-admins", &["people"]).await;
    let manager = admin_session(&server, "zofia.kaczmarek", &["people-admins"]).await;
    let (code, body) = server
        .api_as(
            Some(&manager),
            "POST",
            "/admin-groups/owners/members",
            Some(json!({ "add": ["zofia.kaczmarek"] })),
        )
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    assert!(body_contains(&body, "do not hold"), "{body}");
    let (code, body) = server
        .api_as(
            Some(&manager),
            "POST",
            "/admins",
            Some(json!({ "name": "new.owner", "display_name": "New Owner", "password": PASSWORD, "groups": ["owners"] })),
        )
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    let (code, body) = server
        .api_as(
            Some(&manager),
            "POST",
            "/admins",
            Some(json!({ "name": "new.person", "display_name": "New Person", "password": PASSWORD, "groups": ["people-admins"] })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");

    // The access review: an auditor without MFA is a finding.
    admin_session(&server, "tomasz.wrobel", &["auditors"]).await;
    let review = server.get("/audit/access-review").await;
    let t = review["admins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "tomasz.wrobel")
        .unwrap();
    assert_eq!(t["roles"], json!(["auditor"]));
    assert_eq!(t["mfa_enabled"], false);
    assert!(t["last_login_at"].is_string());
    assert!(
        t["findings"]
            .to_string()
            .contains("critical role without a second factor"),
        "{t}"
    );
    assert!(review["findings"].as_u64().unwrap() >= 1);
}

/// The audit trail records logins, failures, token use and admin actions with who,
/// when, where and the outcome; verification finds altered, removed and reordered
/// records.
async fn audit_trail_is_hash_chained(backend: Backend) {
    let server = start(backend).await;
    put_role(&server, "viewer", &["devices.read"], false).await;
    put_group(&server, "viewers", &["viewer"]).await;
    let session = admin_session(&server, "kasia.dabrowska", &["viewers"]).await;
    let (code, _) = login(
        &server,
        json!({ "username": "kasia.dabrowska", "password": "wrong password!!" }),
    )
    .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = server
        .api_as(Some(&session), "POST", "/enrollments", Some(json!({})))
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let trail = wait_for(
        &server,
        "/audit?limit=1000",
        "the trail has the failed login and the refusal",
        |v| {
            let s = v.to_string();
            s.contains("auth.login_failed")
                && s.contains("auth.denied")
                && s.contains("admin.role_changed")
        },
    )
    .await;
    let items = trail["items"].as_array().unwrap();
    let find = |action: &str| {
        items
            .iter()
            .find(|r| r["action"] == action)
            .unwrap_or_else(|| panic!("{action}: {trail}"))
    };
    let failed = find("auth.login_failed");
    assert_eq!(failed["actor"], "kasia.dabrowska");
    assert_eq!(failed["address"], "127.0.0.1");
    assert_eq!(failed["outcome"], "failure");
    let ok = find("auth.login");
    assert_eq!(ok["outcome"], "success");
    assert_eq!(find("auth.denied")["outcome"], "denied");
    // An admin action through the API carries the request's address too.
    let role_change = find("admin.role_changed");
    assert_eq!(role_change["actor"], "env:MDM_ADMIN_TOKEN");
    assert_eq!(role_change["address"], "127.0.0.1");
    for pair in items.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
        assert_eq!(
            pair[1]["seq"].as_i64().unwrap(),
            pair[0]["seq"].as_i64().unwrap() + 1
        );
    }
    let v = server.get("/audit/verify").await;
    assert_eq!(v["intact"], true, "{v}");
    // Exports.
    let (code, jsonl) = server.api("GET", "/audit/export.jsonl", None).await;
    assert_eq!(code, StatusCode::OK);
    let first: Value =
        serde_json::from_str(jsonl.as_str().unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(first["seq"], 1);
    let (code, csv) = server.api("GET", "/audit/export.csv", None).await;
    assert_eq!(code, StatusCode::OK);
    assert!(csv.as_str().unwrap().starts_with(
        "seq,at,actor,address,action,outcome,details,event_id,prev_hash,hash,chain_version\n"
    ));
    wait_for(&server, "/audit?limit=1000", "exports are audited", |v| {
        v.to_string().contains("admin.audit_exported")
    })
    .await;

    // Altered.
    let seq = failed["seq"].as_i64().unwrap();
    sql(
        &server,
        &format!("UPDATE audit_log SET actor = 'someone.else' WHERE seq = {seq}"),
    )
    .await;
    let v = server.get("/audit/verify").await;
    assert_eq!(v["intact"], false);
    assert!(
        v["problems"]
            .to_string()
            .contains(&format!("record {seq}: its content")),
        "{v}"
    );
    let out = server.clone_cli().run(&["audit", "verify"]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("NOT INTACT"));
    sql(
        &server,
        &format!("UPDATE audit_log SET actor = 'kasia.dabrowska' WHERE seq = {seq}"),
    )
    .await;
    assert_eq!(server.get("/audit/verify").await["intact"], true);
    // Reordered: two records swap places.
    sql(&server, "UPDATE audit_log SET seq = -2 WHERE seq = 2").await;
    sql(&server, "UPDATE audit_log SET seq = 2 WHERE seq = 3").await;
    sql(&server, "UPDATE audit_log SET seq = 3 WHERE seq = -2").await;
    let v = server.get("/audit/verify").await;
    assert_eq!(v["intact"], false, "{v}");
    sql(&server, "UPDATE audit_log SET seq = -2 WHERE seq = 2").await;
    sql(&server, "UPDATE audit_log SET seq = 2 WHERE seq = 3").await;
    sql(&server, "UPDATE audit_log SET seq = 3 WHERE seq = -2").await;
    assert_eq!(server.get("/audit/verify").await["intact"], true);
    // Removed.
    sql(&server, "DELETE FROM audit_log WHERE seq = 4").await;
    let v = server.get("/audit/verify").await;
    assert_eq!(v["intact"], false);
    assert!(v["problems"].to_string().contains("missing"), "{v}");
}

/// Off-boarding: a user's Apple device retired and Android phone wiped in one action,
/// each tracked until done; the user is on the off-boarding list.
async fn offboarding_retires_and_wipes(backend: Backend) {
    use mdm_tests::android_fixture::{start as android, DPC_TOKEN, EXTRAS};
    use mdm_tests::fake_google_amapi::Phone;
    let a = android(backend, &["--android-pull-interval-ms", "100"]).await;
    a.connected().await;
    let server = &a.server;
    let (code, body) = server
        .api("POST", "/users", Some(json!({ "username": "piotr", "upn": "piotr@town.example", "display_name": "Piotr Lis", "email": "piotr@town.example" })))
        .await;
    assert!(code.is_success(), "{body}");
    server.upload_push_certificate().await;
    let e = server
        .create_enrollment(
            json!({ "platform": "apple", "name": "Piotr's iPhone", "user": "piotr" }),
        )
        .await;
    let (iphone, _) =
        mdm_tests::enroll::enroll_iphone(&server.base_url, &server.local_url(&e)).await;
    iphone.enroll().await;
    let apple_id = server.get(&format!("/devices/udid:{}", iphone.udid)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let e = server
        .create_enrollment(
            json!({ "platform": "android", "name": "Piotr's phone", "user": "piotr" }),
        )
        .await;
    let payload: Value = serde_json::from_str(e["qr_payload"].as_str().unwrap()).unwrap();
    let phone = Phone::default();
    let name = a
        .google
        .enroll_phone(payload[EXTRAS][DPC_TOKEN].as_str().unwrap(), &phone)
        .unwrap();
    a.google.report_status(&name, &[]);
    let devices = wait_for(
        server,
        "/devices?platform=android",
        "the phone appears",
        |v| v["total"] == 1,
    )
    .await;
    let android_id = devices["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(devices["items"][0]["assigned_user"], "piotr");

    // Piotr leaves: disabled, and so on the off-boarding list with both devices.
    let (code, body) = server
        .api("PATCH", "/users/piotr", Some(json!({ "disabled": true })))
        .await;
    assert!(code.is_success(), "{body}");
    let list = server.get("/offboarding").await;
    let piotr = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "piotr")
        .cloned()
        .unwrap();
    assert_eq!(piotr["devices"].as_array().unwrap().len(), 2, "{piotr}");

    // A choice is needed for every device.
    let (code, body) = server
        .api(
            "POST",
            "/users/piotr/offboard",
            Some(json!({ "devices": { apple_id.clone(): "retire" } })),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (code, run) = server
        .api(
            "POST",
            "/users/piotr/offboard",
            Some(json!({ "devices": { apple_id.clone(): "retire", android_id.clone(): "wipe" } })),
        )
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{run}");
    assert_eq!(run["status"], "in_progress");
    let dev = |run: &Value, id: &str| {
        run["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["device_id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(dev(&run, &apple_id)["status"], "done", "{run}");
    assert_eq!(dev(&run, &android_id)["status"], "pending", "{run}");
    // The iPhone is refused from now on (its identity revoked).
    assert!(server.get(&format!("/devices/{apple_id}")).await["retired_at"].is_string());
    // Google acknowledges the wipe: done.
    a.google.finish_operation(&a.operation("WIPE"), None);
    let id = run["id"].as_str().unwrap();
    let done = wait_for(
        server,
        &format!("/offboarding/{id}"),
        "the wipe is acknowledged",
        |v| v["status"] == "done",
    )
    .await;
    assert_eq!(dev(&done, &android_id)["status"], "done", "{done}");
    assert!(done["completed_at"].is_string());
    assert_eq!(server.events("admin.user_offboarded").await.len(), 1);
    assert_eq!(server.events("admin.offboarding_finished").await.len(), 1);
}

/// A statement with values, written with PostgreSQL's `$n` placeholders (in order),
/// run on either engine.
async fn sql_with(server: &TestServer, statement: &str, values: Vec<sea_orm::Value>) {
    use sea_orm::{ConnectionTrait, Statement};
    let store = server.store().await;
    let backend = store.connection().get_database_backend();
    let mut text = statement.to_owned();
    if backend != sea_orm::DbBackend::Postgres {
        for n in (1..=values.len()).rev() {
            text = text.replace(&format!("${n}"), "?");
        }
    }
    store
        .connection()
        .execute(Statement::from_sql_and_values(backend, text, values))
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// The password, session and lockout numbers are `mdm serve` options: a server
/// started with a longer minimum length and a short idle timeout enforces them (a
/// session in use stays alive, an idle one ends); a value weaker than the office's
/// policy, or meaningless, stops the start with a message naming the option.
async fn admin_settings_are_serve_options(backend: Backend) {
    // Refused before anything starts (no database is opened, none is needed).
    let dir = TempDir::new("settings");
    for (args, flag) in [
        (
            &["--password-min-length", "12"][..],
            "--password-min-length",
        ),
        (
            &["--session-idle-timeout", "30m"][..],
            "--session-idle-timeout",
        ),
        (
            &["--session-idle-timeout", "15"][..],
            "--session-idle-timeout",
        ),
        (
            &["--password-max-age-days", "21"][..],
            "--password-max-age-days",
        ),
        (
            &["--password-max-age-days=-1"][..],
            "--password-max-age-days",
        ),
        (
            &["--login-lockout-threshold", "0"][..],
            "--login-lockout-threshold",
        ),
        (&["--token-max-days", "400"][..], "--token-max-days"),
    ] {
        let mut child = tokio::process::Command::new(mdm_binary())
            .args(["serve", "--plain-http", "--listen", "127.0.0.1:0"])
            .args(["--public-url", "https://mdm.test.invalid"])
            .arg("--data-dir")
            .arg(dir.0.join("data"))
            .args(args)
            .env_remove("MDM_DATABASE_URL")
            .env_remove("MDM_CONFIG")
            .env("MDM_ADMIN_TOKEN", format!("mdm_test_{}", "0".repeat(32)))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .unwrap_or_else(|_| panic!("{args:?}: the server started"))
            .unwrap();
        let mut said = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut said)
            .await
            .unwrap();
        assert_eq!(status.code(), Some(2), "{args:?}: {said}");
        assert!(said.contains(flag), "{args:?}: {said}");
    }

    let server = TestServer::start_with(
        backend,
        ServerOptions {
            extra_args: [
                "--admin-max-failures",
                "0",
                "--password-min-length",
                "16",
                "--session-idle-timeout",
                "2s",
                "--login-lockout-threshold",
                "2",
            ]
            .map(String::from)
            .to_vec(),
            ..Default::default()
        },
    )
    .await;
    put_role(&server, "viewer", &["devices.read"], false).await;
    put_group(&server, "viewers", &["viewer"]).await;
    // 15 characters: enough for the policy's default, not for this server.
    let (code, body) = server
        .api(
            "POST",
            "/admins",
            Some(json!({ "name": "ola.mazur", "display_name": "Ola Mazur", "password": "fifteen chars!!", "groups": ["viewers"] })),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body_contains(&body, "at least 16 characters"), "{body}");
    let session = admin_session(&server, "ola.mazur", &["viewers"]).await;
    let (code, body) = server
        .api_as(
            Some(&session),
            "POST",
            "/session/password",
            Some(json!({ "current_password": PASSWORD, "new_password": "fifteen chars!!" })),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body_contains(&body, "at least 16 characters"), "{body}");
    let me = server
        .api_as(Some(&session), "GET", "/session", None)
        .await
        .1;
    assert_eq!(me["session"]["idle_timeout_secs"], 2, "{me}");
    // In use (a request every 0.6 s for longer than the timeout): alive.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let (code, body) = server.api_as(Some(&session), "GET", "/devices", None).await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }
    // Idle past the timeout: ended.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let (code, body) = server.api_as(Some(&session), "GET", "/devices", None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body_contains(&body, "expired"), "{body}");
    // Two failed logins lock the account on this server (five by default).
    for _ in 0..2 {
        let (code, _) = login(
            &server,
            json!({ "username": "ola.mazur", "password": "not the password at all" }),
        )
        .await;
        assert_eq!(code, StatusCode::UNAUTHORIZED);
    }
    let (code, body) = login(
        &server,
        json!({ "username": "ola.mazur", "password": PASSWORD }),
    )
    .await;
    assert_eq!(code, StatusCode::TOO_MANY_REQUESTS, "{body}");
}

/// Two instances on one PostgreSQL database: an admin with a session and an API
/// token on instance A is disabled through instance B; A refuses both on their very
/// next request, without a pause (A keeps nothing of them in memory: every request
/// is checked in the database).
async fn disabled_admin_is_refused_on_every_instance(backend: Backend) {
    if matches!(backend, Backend::Sqlite) {
        eprintln!(
            "SKIPPED disabled_admin_is_refused_on_every_instance::sqlite: instances share a PostgreSQL database (SQLite is one server's file)"
        );
        return;
    }
    let a = start(backend).await;
    let b = a.second_instance(&["--admin-max-failures", "0"]).await;
    put_role(&a, "viewer", &["devices.read"], false).await;
    put_group(&a, "viewers", &["viewer"]).await;
    let session = admin_session(&a, "marek.kaminski", &["viewers"]).await;
    let (code, created) = a
        .api_as(
            Some(&session),
            "POST",
            "/tokens",
            Some(json!({ "name": "report-script", "role": "viewer" })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    // Both work on A, many times (anything A could keep of them, it has now), and on B.
    for _ in 0..3 {
        assert_eq!(
            a.api_as(Some(&session), "GET", "/devices", None).await.0,
            StatusCode::OK
        );
        assert_eq!(
            a.api_as(Some(&token), "GET", "/devices", None).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(
        b.api_as(Some(&session), "GET", "/devices", None).await.0,
        StatusCode::OK
    );
    // Disabled through B.
    let (code, body) = b
        .api_as(
            Some(&a.admin_token),
            "POST",
            "/admins/marek.kaminski/disable",
            Some(json!({ "reason": "left the office" })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    // The very next request on A, with the session and with the token: refused.
    let (code, body) = a.api_as(Some(&session), "GET", "/devices", None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{body}");
    let (code, body) = a.api_as(Some(&token), "GET", "/devices", None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{body}");
    // And on B.
    assert_eq!(
        b.api_as(Some(&session), "GET", "/devices", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        b.api_as(Some(&token), "GET", "/devices", None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// An upgrade from a release before admin accounts: the tokens migration 34 left
/// without an expiry get the default lifetime (90 days) counted from the upgrade
/// (migration 35), an `admin.token_expiry_set` event names them, and the access
/// review no longer says they never expire; they keep working meanwhile. Audit
/// records an earlier release hashed with plain SHA-256 are linked into the keyed
/// chain at the first start and still verify; rewriting one of them (and its
/// followers' SHA-256 links) is found at the keyed link.
async fn an_upgrade_gives_old_tokens_an_expiry_and_keys_the_chain(backend: Backend) {
    use mdm_server::storage::audit_chain_hash;
    use mdm_tests::restartable::{RestartableServer, ScratchDatabase};
    use migrations::{Migrator, MigratorTrait};
    use sea_orm::{ConnectionTrait, Statement};
    let db = ScratchDatabase::new(&backend).await;
    let secret = "mdm_a-token-from-the-first-release-0123456789abc";
    let hash = hex::encode(openssl::sha::sha256(secret.as_bytes()));
    let created = chrono::Utc::now() - chrono::Duration::days(200);
    let mut legacy = Vec::new();
    {
        let conn = sea_orm::Database::connect(&db.url).await.unwrap();
        let backend = conn.get_database_backend();
        let q = |sql: &str| match backend {
            sea_orm::DbBackend::Postgres => sql.to_owned(),
            _ => {
                let mut s = sql.to_owned();
                for n in (1..=12).rev() {
                    s = s.replace(&format!("${n}"), "?");
                }
                s
            }
        };
        let admin_accounts = Migrator::migrations()
            .iter()
            .position(|m| m.name().contains("admin_accounts"))
            .unwrap();
        Migrator::up(&conn, Some(admin_accounts as u32))
            .await
            .unwrap();
        // Tokens as the release before admin accounts made them: one in use, one revoked.
        let other_hash = "0".repeat(64);
        for (id, name, token_hash, revoked) in [
            (
                "00000000-0000-4000-8000-0000000000a1",
                "siem-export",
                &hash,
                None,
            ),
            (
                "00000000-0000-4000-8000-0000000000a2",
                "old-laptop",
                &other_hash,
                Some(chrono::Utc::now() - chrono::Duration::days(10)),
            ),
        ] {
            conn.execute(Statement::from_sql_and_values(
                backend,
                q("INSERT INTO admin_tokens (id, name, token_hash, created_at, last_used_at, revoked_at) VALUES ($1, $2, $3, $4, NULL, $5)"),
                [
                    id.into(),
                    name.into(),
                    token_hash.as_str().into(),
                    created.into(),
                    revoked.into(),
                ],
            ))
            .await
            .unwrap();
        }
        // Migration 34 as it ran on deployed databases: the tokens without expiry.
        Migrator::up(&conn, Some(1)).await.unwrap();
        // Audit records of the release with the unkeyed chain: plain SHA-256 links.
        let mut prev = "0".repeat(64);
        for seq in 1..=3i64 {
            let at = chrono::DateTime::from_timestamp_micros(
                (chrono::Utc::now() - chrono::Duration::minutes(10 - seq)).timestamp_micros(),
            )
            .unwrap();
            let details = format!("{{\"message\":\"legacy record {seq}\"}}");
            let actor = "jan.kowalski";
            let h = audit_chain_hash(
                &prev,
                seq,
                None,
                at,
                actor,
                None,
                "auth.login",
                "success",
                &details,
            );
            conn.execute(Statement::from_sql_and_values(
                backend,
                q("INSERT INTO audit_log (seq, event_id, at, actor, address, action, outcome, details, prev_hash, hash) VALUES ($1, NULL, $2, $3, NULL, 'auth.login', 'success', $4, $5, $6)"),
                [
                    seq.into(),
                    at.into(),
                    actor.into(),
                    details.clone().into(),
                    prev.clone().into(),
                    h.clone().into(),
                ],
            ))
            .await
            .unwrap();
            legacy.push((seq, at, details, h.clone()));
            prev = h;
        }
        conn.execute(Statement::from_sql_and_values(
            backend,
            q("UPDATE audit_head SET last_seq = 3, last_hash = $1 WHERE id = 1"),
            [prev.clone().into()],
        ))
        .await
        .unwrap();
        conn.close().await.ok();
    }
    let server = RestartableServer::start(&db.url, None, true).await;

    // The old token: an expiry 90 days from the upgrade, still working, and no
    // longer a finding of the review.
    let review = server.api("GET", "/audit/access-review", None).await.1;
    let tokens = review["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1, "the revoked one is not listed: {review}");
    let t = &tokens[0];
    assert_eq!(t["name"], "siem-export");
    assert_eq!(t["findings"], json!([]), "{t}");
    let expires: chrono::DateTime<chrono::Utc> = t["expires_at"].as_str().unwrap().parse().unwrap();
    let from_now = expires - chrono::Utc::now();
    assert!(
        from_now > chrono::Duration::days(89) && from_now <= chrono::Duration::days(90),
        "{expires}"
    );
    let resp = reqwest::Client::new()
        .get(server.url("/api/v1/devices"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, events) = server
        .api("GET", "/events?kind=admin.token_expiry_set&limit=10", None)
        .await;
    let events = events["items"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["actor"], "migration");
    assert_eq!(events[0]["data"]["days"], 90);
    assert_eq!(
        events[0]["data"]["tokens"],
        json!([{ "id": "00000000-0000-4000-8000-0000000000a1", "name": "siem-export" }])
    );

    // The legacy records, linked into the keyed chain by record 4.
    let v = server.api("GET", "/audit/verify", None).await.1;
    assert_eq!(v["intact"], true, "{v}");
    assert_eq!(v["legacy_records"], 3, "{v}");
    assert!(v["keyed_records"].as_u64().unwrap() >= 1, "{v}");
    let trail = server.api("GET", "/audit?limit=10", None).await.1;
    let keyed = &trail["items"][3];
    assert_eq!(keyed["action"], "audit.chain_keyed", "{trail}");
    assert_eq!(keyed["prev_hash"], legacy[2].3.as_str());
    assert_eq!(keyed["chain_version"], 2);
    assert_eq!(trail["items"][0]["chain_version"], 1);
    // A legacy record rewritten, its followers' SHA-256 links recomputed: the keyed
    // link after them no longer matches.
    {
        let store = server.store().await;
        let conn = store.connection();
        let backend = conn.get_database_backend();
        let mut prev = legacy[0].3.clone();
        for (seq, at, details, _) in &legacy[1..] {
            let h = audit_chain_hash(
                &prev,
                *seq,
                None,
                *at,
                "someone.else",
                None,
                "auth.login",
                "success",
                details,
            );
            let sql = match backend {
                sea_orm::DbBackend::Postgres => "UPDATE audit_log SET actor = 'someone.else', prev_hash = $1, hash = $2 WHERE seq = $3",
                _ => "UPDATE audit_log SET actor = 'someone.else', prev_hash = ?, hash = ? WHERE seq = ?",
            };
            conn.execute(Statement::from_sql_and_values(
                backend,
                sql,
                [prev.clone().into(), h.clone().into(), (*seq).into()],
            ))
            .await
            .unwrap();
            prev = h;
        }
    }
    let v = server.api("GET", "/audit/verify", None).await.1;
    assert_eq!(v["intact"], false, "{v}");
    assert!(
        v["problems"]
            .to_string()
            .contains("record 4: its previous-hash"),
        "{v}"
    );
}

/// The chain is keyed: a record rewritten and every following link recomputed with
/// plain SHA-256 (all that write access to the database allows) is found, whether
/// the rewritten records keep their version or claim the unkeyed one. The head is
/// published as an `audit.anchor` event, which reaches the SIEM over syslog; an
/// anchor taken before the chain was cut off (consistently: head, cursor and anchor
/// position rewritten too) is found missing, by the API and by
/// `mdm audit verify --anchor`.
async fn audit_chain_is_keyed_and_anchored(backend: Backend) {
    use mdm_server::storage::{audit_chain_hash, AdminStore};
    // A SIEM listening for the anchors over syslog (UDP).
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let inbox: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    {
        let inbox = inbox.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = socket.recv(&mut buf) {
                inbox
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        });
    }
    let dir = TempDir::new("anchors");
    let rules = dir.0.join("receivers.toml");
    std::fs::write(
        &rules,
        format!(
            "[[syslog]]\nname = \"siem\"\naddress = \"udp://127.0.0.1:{port}\"\nkinds = [\"audit.anchor\"]\n"
        ),
    )
    .unwrap();
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            extra_args: vec![
                "--admin-max-failures".into(),
                "0".into(),
                "--incident-rules".into(),
                rules.display().to_string(),
                // Every new record is anchored (at most once a pass of the trail).
                "--audit-anchor-records".into(),
                "1".into(),
            ],
            ..Default::default()
        },
    )
    .await;
    put_role(&server, "viewer", &["devices.read"], false).await;
    put_group(&server, "viewers", &["viewer"]).await;
    admin_session(&server, "zofia.lewandowska", &["viewers"]).await;
    // The trail settles (nothing below makes events: the head stays put for three
    // passes of the trail) and its head reaches the SIEM.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut previous = String::new();
    let (anchor, head) = loop {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let v = server.get("/audit/verify").await;
        assert_eq!(v["intact"], true, "{v}");
        let head = format!("{}:{}", v["head_seq"], v["head_hash"].as_str().unwrap());
        let settled = std::mem::replace(&mut previous, head.clone()) == head;
        let published = inbox.lock().unwrap().iter().find_map(|m| {
            let json = m.split('\u{feff}').nth(1)?;
            let event: Value = serde_json::from_str(json).ok()?;
            (event["kind"] == "audit.anchor" && event["data"]["anchor"] == head.as_str())
                .then(|| event["data"]["anchor"].as_str().unwrap().to_owned())
        });
        if let (Some(anchor), true) = (published, settled) {
            break (anchor, v);
        }
        assert!(
            Instant::now() < deadline,
            "no anchor of the settled head {head} reached the SIEM: {:?}",
            inbox.lock().unwrap()
        );
    };
    assert!(head["records"].as_u64().unwrap() >= 5, "{head}");
    assert!(
        inbox.lock().unwrap()[0].contains("[mdm@32473 event_id="),
        "RFC 5424 with the event"
    );
    let v = server.get(&format!("/audit/verify?anchor={anchor}")).await;
    assert_eq!(v["intact"], true, "{v}");
    assert_eq!(v["anchor"]["found"], true, "{v}");
    let (code, _) = server
        .api("GET", "/audit/verify?anchor=12:not-a-hash", None)
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);

    let store = server.store().await;
    let original = store.audit_records(0, 1000).await.unwrap();
    let last = original.last().unwrap().seq;
    assert_eq!(last, head["head_seq"].as_i64().unwrap());
    let write = |r: &mdm_server::storage::AuditRecord,
                 actor: &str,
                 prev: &str,
                 hash: &str,
                 version: i16| {
        sql_with(
            &server,
            "UPDATE audit_log SET actor = $1, prev_hash = $2, hash = $3, chain_version = $4 WHERE seq = $5",
            vec![
                actor.into(),
                prev.into(),
                hash.into(),
                version.into(),
                r.seq.into(),
            ],
        )
    };
    // Record 2 rewritten; it and every record after it relinked with plain SHA-256,
    // the head too: consistent for anyone without the key.
    for (from, version) in [(2usize, 2i16), (2, 1), (1, 1)] {
        let mut prev = if from > 1 {
            original[from - 2].hash.clone()
        } else {
            "0".repeat(64)
        };
        for r in &original[from - 1..] {
            let actor = if r.seq == 2 {
                "someone.else"
            } else {
                r.actor.as_str()
            };
            let h = audit_chain_hash(
                &prev,
                r.seq,
                r.event_id,
                r.at,
                actor,
                r.address.as_deref(),
                &r.action,
                &r.outcome,
                &r.details_raw,
            );
            write(r, actor, &prev, &h, version).await;
            prev = h;
        }
        sql_with(
            &server,
            "UPDATE audit_head SET last_hash = $1 WHERE id = 1",
            vec![prev.into()],
        )
        .await;
        let v = server.get("/audit/verify").await;
        assert_eq!(
            v["intact"], false,
            "rewritten from record {from} as version {version}: {v}"
        );
        let problems = v["problems"].to_string();
        let expected = match (from, version) {
            (2, 2) => "record 2: its content does not match its hash",
            (2, _) => "record 2: hashed with plain SHA-256 after keyed records",
            _ => "no record is linked with the server's key",
        };
        assert!(problems.contains(expected), "{expected}: {v}");
        // Put back as it was.
        for r in &original {
            write(r, &r.actor, &r.prev_hash, &r.hash, r.chain_version).await;
        }
        sql_with(
            &server,
            "UPDATE audit_head SET last_hash = $1 WHERE id = 1",
            vec![original.last().unwrap().hash.clone().into()],
        )
        .await;
        assert_eq!(server.get("/audit/verify").await["intact"], true);
    }

    // Cut off after the anchor was published, consistently: the records after
    // record `cut` removed, the head, the tailer's position and the anchor position
    // set back. Without the anchor nothing shows; with it, it is missing.
    let cut = last - 2;
    let kept = original.iter().find(|r| r.seq == cut).unwrap();
    // The head first, with the trail's position past every event: the trail would
    // otherwise append the removed records' events again.
    sql_with(
        &server,
        "UPDATE audit_head SET last_seq = $1, last_hash = $2, anchored_seq = $3, last_event_id = (SELECT MAX(id) FROM events) WHERE id = 1",
        vec![cut.into(), kept.hash.clone().into(), cut.into()],
    )
    .await;
    sql_with(
        &server,
        "DELETE FROM audit_log WHERE seq > $1",
        vec![cut.into()],
    )
    .await;
    let v = server.get("/audit/verify").await;
    assert_eq!(
        v["intact"], true,
        "a consistent cut is invisible without an anchor: {v}"
    );
    let v = server.get(&format!("/audit/verify?anchor={anchor}")).await;
    assert_eq!(v["intact"], false, "{v}");
    assert_eq!(v["anchor"]["found"], false);
    assert!(v["problems"].to_string().contains("is missing"), "{v}");
    let out = server
        .clone_cli()
        .run(&["audit", "verify", "--anchor", &anchor])
        .await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("is missing"));
    // The head as it is now still verifies as an anchor.
    let out = server
        .clone_cli()
        .run(&[
            "audit",
            "verify",
            "--anchor",
            &format!("{cut}:{}", kept.hash),
        ])
        .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

on_every_backend!(
    admin_settings_are_serve_options,
    disabled_admin_is_refused_on_every_instance,
    an_upgrade_gives_old_tokens_an_expiry_and_keys_the_chain,
    audit_chain_is_keyed_and_anchored,
    every_endpoint_checks_its_right,
    help_desk_locks_but_does_not_wipe,
    password_rules_expiry_and_lockout,
    totp_second_factor,
    tokens_scope_expiry_and_revocation,
    disabled_admin_is_refused_at_once,
    cli_login_keeps_a_private_session,
    cookie_sessions_need_the_csrf_token,
    role_matrix_and_access_review,
    audit_trail_is_hash_chained,
    offboarding_retires_and_wipes,
);
