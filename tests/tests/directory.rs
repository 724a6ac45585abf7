//! Users and groups from the office's directory (issue 9), against a real OpenLDAP
//! (`slapd`, tests/src/slapd.rs) on SQLite and PostgreSQL: a sync over StartTLS,
//! changes in the directory followed (attributes, groups, a locked account, a
//! deleted one flagged for off-boarding with its devices), a wrong bind password
//! and a wrong CA refused with nothing changed, the schedule, CSV imports and users
//! by hand; and the bind password in no response, event or log line.

use mdm_tests::enroll::enroll_iphone;
use mdm_tests::fixture::{Backend, ServerOptions, TempDir, TestServer};
use mdm_tests::on_every_backend;
use mdm_tests::slapd::{Slapd, BASE_DN, READER_DN, ZOFIA_DISPLAY_NAME};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A server logging at debug level into a file, so that the log can be searched for
/// the bind password.
async fn server_with_log(backend: Backend) -> (TestServer, TempDir, PathBuf) {
    let dir = TempDir::new("mdm-directory-log");
    let log = dir.0.join("server.log");
    let server = TestServer::start_with(
        backend,
        ServerOptions {
            stderr_to: Some(log.clone()),
            rust_log: Some("debug".into()),
            ..Default::default()
        },
    )
    .await;
    (server, dir, log)
}

/// Every response body a test saw, to search for the password at the end.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    async fn api(
        &mut self,
        server: &TestServer,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (code, v) = server.api(method, path, body).await;
        self.0.push(v.to_string());
        (code, v)
    }

    async fn get(&mut self, server: &TestServer, path: &str) -> Value {
        let (code, v) = self.api(server, "GET", path, None).await;
        assert_eq!(code, StatusCode::OK, "GET {path}: {v}");
        v
    }

    async fn sync(&mut self, server: &TestServer) -> Value {
        let (code, v) = self.api(server, "POST", "/directory/sync", None).await;
        assert_eq!(code, StatusCode::OK, "sync: {v}");
        v
    }

    fn text(&mut self, s: &[u8]) -> String {
        let s = String::from_utf8_lossy(s).into_owned();
        self.0.push(s.clone());
        s
    }

    /// The password is in nothing the server answered, and not in its log.
    fn assert_secret_kept(&self, password: &str, log: &Path) {
        for body in &self.0 {
            assert!(
                !body.contains(password),
                "the bind password appears in a response: {body}"
            );
        }
        let log_text = std::fs::read_to_string(log).unwrap_or_default();
        assert!(
            log_text.len() > 1000,
            "the server log at debug level is suspiciously short"
        );
        assert!(
            !log_text.contains(password),
            "the bind password appears in the server's log"
        );
    }
}

fn source_body(slapd: &Slapd, password: &str) -> Value {
    json!({
        "url": slapd.ldap_url, "start_tls": true, "ca_pem": slapd.ca_pem,
        "bind_dn": READER_DN, "bind_password": password, "base_dn": BASE_DN,
        "interval_seconds": 0,
    })
}

fn user<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == name)
        .unwrap_or_else(|| panic!("no user {name} in {list}"))
}

fn names(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

fn for_user<'a>(events: &'a [Value], username: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["data"]["username"] == username)
        .collect()
}

async fn directory_sync_follows_the_directory(backend: Backend) {
    let Some(slapd) = Slapd::start().await else {
        return;
    };
    let (server, _logdir, log) = server_with_log(backend).await;
    let mut seen = Seen::default();
    let cli = server.clone_cli();

    // Configured with the CLI: StartTLS, the test CA, the password from a file.
    let secret_dir = TempDir::new("mdm-directory-secret");
    let password_file = secret_dir.0.join("bind-password");
    std::fs::write(&password_file, format!("{}\n", slapd.reader_password)).unwrap();
    let out = cli
        .run(&[
            "directory",
            "configure",
            "--url",
            &slapd.ldap_url,
            "--start-tls",
            "--ca-file",
            slapd.ca_path().to_str().unwrap(),
            "--bind-dn",
            READER_DN,
            "--bind-password-file",
            password_file.to_str().unwrap(),
            "--base-dn",
            BASE_DN,
            "--interval-secs",
            "0",
        ])
        .await;
    let text = seen.text(&out.stdout);
    seen.text(&out.stderr);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("bind_password_set   true"), "{text}");
    let source = seen.get(&server, "/directory/source").await;
    assert_eq!(source["bind_password_set"], true);
    assert!(source.get("bind_password").is_none(), "{source}");
    assert_eq!(source["attributes"]["username"], "uid");
    assert_eq!(source["last_sync_status"], Value::Null);

    // First sync: four people, two groups, paged.
    let summary = seen.sync(&server).await;
    assert_eq!(summary["users"], 4, "{summary}");
    assert_eq!(summary["created"], 4, "{summary}");
    assert_eq!(summary["groups"], 2, "{summary}");
    assert_eq!(summary["groups_created"], 2, "{summary}");
    assert_eq!(summary["paged"], true, "{summary}");
    let users = seen.get(&server, "/users").await;
    assert_eq!(
        names(&users),
        vec!["anna", "jan", "piotr", "zofia"],
        "{users}"
    );
    let zofia = user(&users, "zofia");
    assert_eq!(zofia["display_name"], ZOFIA_DISPLAY_NAME);
    assert_eq!(zofia["department"], "Registry");
    assert_eq!(zofia["source"], "ldap");
    assert_eq!(zofia["email"], "zofia@example.org");
    assert_eq!(
        zofia["external_id"].as_str().unwrap().len(),
        36,
        "entryUUID"
    );
    assert_eq!(user(&users, "jan")["groups"], json!(["it", "staff"]));
    assert_eq!(user(&users, "piotr")["groups"], json!(["it"]));
    let staff = seen.get(&server, "/groups/staff").await;
    assert_eq!(staff["usernames"], json!(["anna", "jan", "zofia"]));
    assert_eq!(staff["source"], "ldap");
    let groups = seen.get(&server, "/groups").await;
    assert_eq!(groups["total"], 2);
    assert_eq!(server.events("directory.user_changed").await.len(), 4);
    assert_eq!(server.events("directory.sync_completed").await.len(), 1);

    // Nothing changed in the directory: nothing changes here.
    let summary = seen.sync(&server).await;
    assert_eq!(
        (
            &summary["created"],
            &summary["updated"],
            &summary["unchanged"]
        ),
        (&json!(0), &json!(0), &json!(4)),
        "{summary}"
    );
    assert_eq!(server.events("directory.user_changed").await.len(), 4);

    // Piotr's phone, enrolled through an enrollment made for him.
    server.upload_push_certificate().await;
    let e = server
        .create_enrollment(json!({ "platform": "apple", "name": "Piotr's phone", "user": "piotr" }))
        .await;
    let (phone, _) = enroll_iphone(&server.base_url, &server.local_url(&e)).await;
    phone.enroll().await;
    let devices = seen.get(&server, "/devices").await;
    let phone_id = devices["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(devices["items"][0]["assigned_user"], "piotr");

    // Jan's attributes and groups change in the directory.
    slapd.modify(&format!(
        "dn: uid=jan,ou=people,{BASE_DN}\nchangetype: modify\nreplace: displayName\ndisplayName: Jan K. Kowalski\n-\nreplace: departmentNumber\ndepartmentNumber: Front office\n\n\
         dn: cn=it,ou=groups,{BASE_DN}\nchangetype: modify\ndelete: member\nmember: uid=jan,ou=people,{BASE_DN}\n"
    ));
    let summary = seen.sync(&server).await;
    assert_eq!(summary["updated"], 1, "{summary}");
    assert_eq!(summary["memberships_removed"], 1, "{summary}");
    let jan = seen.get(&server, "/users/jan").await;
    assert_eq!(jan["display_name"], "Jan K. Kowalski");
    assert_eq!(jan["department"], "Front office");
    assert_eq!(jan["groups"], json!(["staff"]));
    let changed = server.events("directory.user_changed").await;
    let jan_changes = for_user(&changed, "jan");
    assert_eq!(
        jan_changes.len(),
        2,
        "created, then changed: {jan_changes:?}"
    );
    let fields = &jan_changes[1]["data"]["changed"];
    for f in ["display_name", "department", "groups"] {
        assert!(fields.as_array().unwrap().contains(&json!(f)), "{fields}");
    }
    assert_eq!(changed.len(), 5, "only jan changed");

    // Anna's account is locked (ppolicy), Piotr leaves.
    slapd.lock("anna");
    slapd.delete(&format!("uid=piotr,ou=people,{BASE_DN}"));
    slapd.modify(&format!(
        "dn: cn=it,ou=groups,{BASE_DN}\nchangetype: modify\nadd: member\nmember: uid=anna,ou=people,{BASE_DN}\n"
    ));
    let summary = seen.sync(&server).await;
    assert_eq!(summary["disabled"], 1, "{summary}");
    assert_eq!(summary["removed"], 1, "{summary}");
    let users = seen.get(&server, "/users").await;
    assert_eq!(users["total"], 4, "a removed user is kept: {users}");
    let anna = user(&users, "anna");
    assert_eq!(anna["disabled"], true);
    assert_eq!(anna["disabled_reason"], "disabled in the directory");
    let piotr = user(&users, "piotr");
    assert_eq!(piotr["disabled"], true);
    assert_eq!(piotr["disabled_reason"], "removed from the directory");
    assert_eq!(piotr["groups"], json!([]), "{piotr}");
    let disabled_events = server.events("directory.user_disabled").await;
    assert_eq!(for_user(&disabled_events, "anna").len(), 1);
    let removed = server.events("directory.user_removed").await;
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["data"]["username"], "piotr");

    // The off-boarding list: disabled and removed users with their devices.
    let offboarding = seen.get(&server, "/users?disabled=true").await;
    assert_eq!(names(&offboarding), vec!["anna", "piotr"]);
    let piotr = user(&offboarding, "piotr");
    assert_eq!(piotr["devices"][0]["id"], phone_id.as_str(), "{piotr}");
    let out = cli.run(&["users", "list", "--disabled"]).await;
    let text = seen.text(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("removed from the directory") && text.contains(&phone_id),
        "{text}"
    );

    // Unlocked: enabled again; the removed user stays flagged.
    slapd.unlock("anna");
    let summary = seen.sync(&server).await;
    assert_eq!(summary["enabled"], 1, "{summary}");
    let users = seen.get(&server, "/users?disabled=true").await;
    assert_eq!(names(&users), vec!["piotr"]);
    assert_eq!(server.events("directory.user_enabled").await.len(), 1);
    assert_eq!(
        seen.get(&server, "/groups/it").await["usernames"],
        json!(["anna"])
    );

    // The directory's users are the directory's.
    let (code, body) = seen
        .api(
            &server,
            "PATCH",
            "/users/jan",
            Some(json!({ "email": "x@example.org" })),
        )
        .await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    let (code, body) = seen.api(&server, "DELETE", "/users/piotr", None).await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");

    // The CLI shows the configuration and syncs; the status is recorded.
    for args in [
        &["directory", "show"][..],
        &["directory", "show", "--json"],
        &["directory", "sync"],
        &["users", "show", "zofia"],
        &["users", "groups"],
        &["events", "--kind", "directory.", "--json"],
        &["events", "--kind", "admin.", "--json"],
    ] {
        let out = cli.run(args).await;
        let text = seen.text(&out.stdout);
        seen.text(&out.stderr);
        assert!(out.status.success(), "{args:?}: {text}");
    }
    let source = seen.get(&server, "/directory/source").await;
    assert_eq!(source["last_sync_status"], "ok");
    assert_eq!(source["last_sync_counts"]["users"], 3);
    seen.get(&server, "/events?limit=1000").await;
    seen.assert_secret_kept(&slapd.reader_password, &log);
}

async fn a_wrong_bind_password_changes_nothing(backend: Backend) {
    let Some(slapd) = Slapd::start().await else {
        return;
    };
    let (server, _logdir, log) = server_with_log(backend).await;
    let mut seen = Seen::default();
    let wrong = "not-the-reader-password-4711";

    // Tried before it is saved: refused, clearly, and nothing stored.
    let (code, body) = seen
        .api(
            &server,
            "PUT",
            "/directory/source",
            Some(source_body(&slapd, wrong)),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.contains("refused the bind DN") && msg.contains("invalidCredentials"),
        "{msg}"
    );
    assert!(msg.contains("Nothing was saved"), "{msg}");
    assert!(!msg.contains(wrong), "{msg}");
    let (code, _) = seen.api(&server, "GET", "/directory/source", None).await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    // A good configuration, one sync.
    let (code, body) = seen
        .api(
            &server,
            "PUT",
            "/directory/source",
            Some(source_body(&slapd, &slapd.reader_password)),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(seen.sync(&server).await["created"], 4);

    // The password changes in the directory's favour, not ours: saved unverified.
    let mut body = source_body(&slapd, wrong);
    body["verify"] = json!(false);
    let (code, v) = seen
        .api(&server, "PUT", "/directory/source", Some(body))
        .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    slapd.delete(&format!("uid=zofia,ou=people,{BASE_DN}"));
    for _ in 0..2 {
        let (code, body) = seen.api(&server, "POST", "/directory/sync", None).await;
        assert_eq!(code, StatusCode::BAD_GATEWAY, "{body}");
        let msg = body["error"].as_str().unwrap();
        assert!(msg.contains("invalidCredentials"), "{msg}");
        assert!(msg.contains(READER_DN), "{msg}");
        assert!(!msg.contains(wrong), "{msg}");
    }
    // Nothing changed; one event for a lasting fault; the status says why.
    let users = seen.get(&server, "/users").await;
    assert_eq!(users["total"], 4);
    assert_eq!(user(&users, "zofia")["disabled"], false);
    let failed = server.events("directory.sync_failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0]["message"]
        .as_str()
        .unwrap()
        .contains("invalidCredentials"));
    let source = seen.get(&server, "/directory/source").await;
    assert_eq!(source["last_sync_status"], "failed");
    assert!(source["last_sync_error"]
        .as_str()
        .unwrap()
        .contains("invalidCredentials"));

    // The right password again: Zofia, gone from the directory, is flagged.
    let (code, body) = seen
        .api(
            &server,
            "PUT",
            "/directory/source",
            Some(source_body(&slapd, &slapd.reader_password)),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    // Omitting the password keeps the stored one.
    let mut keep = source_body(&slapd, "");
    keep.as_object_mut().unwrap().remove("bind_password");
    keep["interval_seconds"] = json!(3600);
    let (code, body) = seen
        .api(&server, "PUT", "/directory/source", Some(keep))
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["interval_seconds"], 3600);
    assert_eq!(seen.sync(&server).await["removed"], 1);
    let zofia = seen.get(&server, "/users/zofia").await;
    assert_eq!(zofia["disabled_reason"], "removed from the directory");
    // An empty password would bind anonymously: refused.
    let (code, body) = seen
        .api(
            &server,
            "PUT",
            "/directory/source",
            Some(source_body(&slapd, "")),
        )
        .await;
    assert!(
        matches!(
            code,
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
        ),
        "{body}"
    );
    seen.get(&server, "/events?limit=1000").await;
    seen.assert_secret_kept(&slapd.reader_password, &log);
    seen.assert_secret_kept(wrong, &log);
}

async fn tls_is_required_and_verified(backend: Backend) {
    let Some(slapd) = Slapd::start().await else {
        return;
    };
    let server = TestServer::start(backend).await;
    let put = |body: Value| {
        let server = &server;
        async move { server.api("PUT", "/directory/source", Some(body)).await }
    };
    let base = json!({
        "bind_dn": READER_DN, "bind_password": slapd.reader_password, "base_dn": BASE_DN,
        "interval_seconds": 0,
    });
    let with = |extra: Value| {
        let mut b = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };

    // LDAPS whose certificate another CA issued: refused, saying so.
    let (code, body) = put(with(
        json!({ "url": slapd.ldaps_url, "ca_pem": slapd.wrong_ca_pem }),
    ))
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.contains("TLS") && msg.contains("not issued by the configured CA"),
        "{msg}"
    );
    // StartTLS, same.
    let (code, body) = put(with(
        json!({ "url": slapd.ldap_url, "start_tls": true, "ca_pem": slapd.wrong_ca_pem }),
    ))
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // Without a CA, the system's roots do not know the test CA.
    let (code, body) = put(with(json!({ "url": slapd.ldaps_url }))).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("system's roots"),
        "{body}"
    );
    // Plain ldap:// without StartTLS: refused unless explicitly accepted.
    let (code, body) = put(with(json!({ "url": slapd.ldap_url }))).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("insecure_plaintext"),
        "{body}"
    );
    let (code, _) = server.api("GET", "/directory/source", None).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "nothing was saved");
    // Bad input is 400 with what is wrong.
    for (extra, word) in [
        (json!({ "url": "http://127.0.0.1" }), "ldaps://"),
        (
            json!({ "url": slapd.ldaps_url, "ca_pem": "not a certificate" }),
            "ca_pem",
        ),
        (
            json!({ "url": slapd.ldaps_url, "user_filter": "uid=*)(" }),
            "user_filter",
        ),
        (
            json!({ "url": slapd.ldaps_url, "interval_seconds": 1 }),
            "interval_seconds",
        ),
        (
            json!({ "url": slapd.ldaps_url, "flavor": "novell" }),
            "flavor",
        ),
    ] {
        let (code, body) = put(with(extra.clone())).await;
        assert!(
            matches!(
                code,
                StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
            ),
            "{extra}: {body}"
        );
        assert!(
            body["error"].as_str().unwrap().contains(word),
            "{extra}: {body}"
        );
    }

    // Explicitly plain: saved, and it says so.
    let (code, body) = put(with(
        json!({ "url": slapd.ldap_url, "insecure_plaintext": true }),
    ))
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["insecure_plaintext"], true);

    // LDAPS with the right CA: works.
    let (code, body) = put(with(
        json!({ "url": slapd.ldaps_url, "ca_pem": slapd.ca_pem }),
    ))
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["insecure_plaintext"], false);
    let (code, summary) = server.api("POST", "/directory/sync", None).await;
    assert_eq!(code, StatusCode::OK, "{summary}");
    assert_eq!(summary["users"], 4);

    // Saved unverified with the wrong CA: the sync refuses the connection.
    let mut body = with(json!({ "url": slapd.ldaps_url, "ca_pem": slapd.wrong_ca_pem }));
    body["verify"] = json!(false);
    let (code, _) = put(body).await;
    assert_eq!(code, StatusCode::OK);
    let (code, body) = server.api("POST", "/directory/sync", None).await;
    assert_eq!(code, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body["error"].as_str().unwrap().contains("TLS"), "{body}");
    assert_eq!(server.get("/users?disabled=true").await["total"], 0);
}

async fn the_schedule_syncs_by_itself(backend: Backend) {
    let Some(slapd) = Slapd::start().await else {
        return;
    };
    let server = TestServer::start(backend).await;
    let mut body = source_body(&slapd, &slapd.reader_password);
    body["interval_seconds"] = json!(5);
    let (code, v) = server.api("PUT", "/directory/source", Some(body)).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let wait_for = |what: &'static str, check: fn(&Value) -> bool| {
        let server = &server;
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let users = server.get("/users").await;
                if check(&users) {
                    return users;
                }
                assert!(Instant::now() < deadline, "{what}: {users}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    wait_for("the first scheduled sync", |u| u["total"] == 4).await;
    slapd.lock("jan");
    wait_for("jan locked at a later sync", |u| {
        u["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["username"] == "jan" && x["disabled"] == true)
    })
    .await;
    let done = server.events("directory.sync_completed").await;
    assert!(done.len() >= 2, "{done:?}");
    assert!(
        done.iter().all(|e| e["actor"] == "directory-schedule"),
        "{done:?}"
    );
    let source = server.get("/directory/source").await;
    assert_eq!(source["last_sync_status"], "ok");
    assert!(source["next_sync_at"].is_string(), "{source}");
}

const GOOD_CSV: &str = "username,upn,email,display_name,department,groups\n\
    ewa,ewa@town.example,ewa@town.example,Ewa Kowalczyk,Registry,front-desk;registry\n\
    marek,marek@town.example,marek@town.example,\"Lewandowski, Marek\",IT,it-helpdesk\n\
    zoe,zoe@town.example,zoe@town.example,Zoë Żak,,front-desk\n";

async fn post_csv(server: &TestServer, text: &str) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .post(server.url("/api/v1/users/import"))
        .bearer_auth(&server.admin_token)
        .header("Content-Type", "text/csv; charset=utf-8")
        .body(text.to_owned())
        .send()
        .await
        .unwrap();
    let code = resp.status();
    (code, resp.json().await.unwrap())
}

async fn csv_import_and_users_by_hand(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (code, summary) = post_csv(&server, GOOD_CSV).await;
    assert_eq!(code, StatusCode::OK, "{summary}");
    assert_eq!(summary["created"], 3, "{summary}");
    assert_eq!(summary["groups_created"], 3, "{summary}");
    let users = server.get("/users").await;
    assert_eq!(names(&users), vec!["ewa", "marek", "zoe"]);
    let zoe = user(&users, "zoe");
    assert_eq!(zoe["display_name"], "Zoë Żak");
    assert_eq!(zoe["department"], Value::Null);
    assert_eq!(zoe["source"], "csv");
    assert_eq!(user(&users, "marek")["display_name"], "Lewandowski, Marek");
    assert_eq!(
        server.get("/groups/front-desk").await["usernames"],
        json!(["ewa", "zoe"])
    );

    // A bad file: every problem with its row and column, and nothing written (the
    // good rows in it neither).
    let bad = "username,upn,email,display_name,department,groups\n\
        olga,olga@town.example,olga@town.example,Olga,,\n\
        adam,adam@town.example,adam-at-town,Adam,,\n\
        ,nobody@town.example,nobody@town.example,Nobody,,\n\
        olga,olga2@town.example,olga2@town.example,Olga Two,,\n\
        ewa,ewa@town.example,ewa@town.example,Ewa,Registry,front-desk,extra\n";
    let (code, body) = post_csv(&server, bad).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let errors: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    for expected in [
        "row 3, column email",
        "row 4, column username",
        "row 6: 7 fields",
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(expected)),
            "{expected} not in {errors:?}"
        );
    }
    assert_eq!(server.get("/users").await["total"], 3, "nothing written");
    let (code, body) = post_csv(&server, "username,upn,email,display_name\nolga,olga@town.example,olga@town.example,Olga\nolga,o@town.example,o@town.example,O\n").await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("row 3, column username"),
        "{body}"
    );
    assert_eq!(server.get("/users").await["total"], 3, "nothing written");

    // The same file again changes nothing; a changed name is one change.
    let (_, summary) = post_csv(&server, GOOD_CSV).await;
    assert_eq!(summary["unchanged"], 3, "{summary}");
    let changed_before = server.events("directory.user_changed").await.len();
    let (_, summary) = post_csv(&server, &GOOD_CSV.replace("Ewa Kowalczyk", "Ewa Nowak")).await;
    assert_eq!(summary["updated"], 1, "{summary}");
    let changed = server.events("directory.user_changed").await;
    assert_eq!(changed.len(), changed_before + 1);
    assert_eq!(changed.last().unwrap()["data"]["username"], "ewa");

    // The CLI imports a file too, and shows the errors of a bad one.
    let dir = TempDir::new("mdm-users-csv");
    let good = dir.0.join("users.csv");
    std::fs::write(
        &good,
        "username,upn,email,display_name\nlena,lena@town.example,lena@town.example,Lena\n",
    )
    .unwrap();
    let cli = server.clone_cli();
    let out = cli.run(&["users", "import", good.to_str().unwrap()]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 users created"));
    let badfile = dir.0.join("bad.csv");
    std::fs::write(&badfile, bad).unwrap();
    let out = cli
        .run(&["users", "import", badfile.to_str().unwrap()])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("row 3, column email"), "{err}");

    // By hand: add, disable (off-boarding list), enable, refuse bad input, delete.
    let out = cli
        .run(&[
            "users",
            "add",
            "kiosk",
            "--upn",
            "kiosk@town.example",
            "--email",
            "kiosk@town.example",
            "--display-name",
            "Lobby kiosk",
            "--group",
            "lobby",
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kiosk = server.get("/users/kiosk").await;
    assert_eq!(kiosk["source"], "manual");
    assert_eq!(kiosk["groups"], json!(["lobby"]));
    let (code, _) = server
        .api(
            "POST",
            "/users",
            Some(json!({ "username": "KIOSK", "upn": "k@town.example", "email": "k@town.example", "display_name": "K" })),
        )
        .await;
    assert_eq!(code, StatusCode::CONFLICT, "usernames ignore case");
    let (code, body) = server
        .api(
            "POST",
            "/users",
            Some(json!({ "username": "kiosk2", "upn": "k@town.example", "email": "k@town.example", "display_name": "" })),
        )
        .await;
    // Blank where the document asks for a text: the document's check (400).
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("display_name"),
        "{body}"
    );
    let (code, body) = server
        .api(
            "POST",
            "/users",
            Some(json!({ "username": "bad name", "upn": "x", "email": "x@y", "display_name": "Bad" })),
        )
        .await;
    // Well formed, and every field the service refuses named at once (422).
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let msg = body["error"].as_str().unwrap();
    for field in ["username", "upn"] {
        assert!(msg.contains(field), "{msg}");
    }
    let out = cli.run(&["users", "disable", "kiosk"]).await;
    assert!(out.status.success());
    let kiosk = server.get("/users/kiosk").await;
    assert_eq!(kiosk["disabled_reason"], "disabled by hand");
    assert_eq!(
        names(&server.get("/users?disabled=true").await),
        vec!["kiosk"]
    );
    let disabled = server.events("directory.user_disabled").await;
    assert_eq!(disabled.last().unwrap()["data"]["username"], "kiosk");
    assert_eq!(disabled.last().unwrap()["actor"], "env:MDM_ADMIN_TOKEN");
    let (code, v) = server
        .api(
            "PATCH",
            "/users/kiosk",
            Some(
                json!({ "disabled": false, "department": "Lobby", "email": "lobby@town.example" }),
            ),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["disabled"], false);
    assert_eq!(v["department"], "Lobby");
    let (code, v) = server
        .api("PATCH", "/users/kiosk", Some(json!({ "email": "nope" })))
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (code, v) = server
        .api("PATCH", "/users/kiosk", Some(json!({ "colour": "red" })))
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
    let (code, v) = server.api("DELETE", "/users/kiosk", None).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let (code, _) = server.api("GET", "/users/kiosk", None).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = server.api("DELETE", "/users/kiosk", None).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    // No directory configured: a sync says how to configure one.
    let (code, body) = server.api("POST", "/directory/sync", None).await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    assert!(body["error"].as_str().unwrap().contains("directory/source"));
}

on_every_backend!(
    directory_sync_follows_the_directory,
    a_wrong_bind_password_changes_nothing,
    tls_is_required_and_verified,
    the_schedule_syncs_by_itself,
    csv_import_and_users_by_hand,
);
