//! Faults the server must survive without losing or half-writing anything:
//!
//! * `kill -9` during a 10,000-device fan-out and during SCEP enrollments: after a
//!   restart on the same database, a fan-out is in it whole or not at all, and no
//!   challenge is consumed without its certificate row (or the reverse);
//! * a private PostgreSQL stopped and started while devices connect: 503 with
//!   Retry-After within a bound, then 200 again without restarting the server;
//! * SQLite locked by another process under concurrent device and admin writers:
//!   success or 503 with Retry-After, never a 500, nothing acknowledged lost;
//! * a full disk under the SQLite database: 503 saying the storage is full, then
//!   normal service once space is freed, and `PRAGMA integrity_check` says ok.
//!
//! Each runs the real binary as a process the test can kill and restart
//! ([`RestartableServer`]).

use enrollment::identity::testing::{sign_detached, TestCa};
use enrollment::scep::client::{build_request, parse_cert_rep, CertRepOutcome, RequestOptions};
use mdm_server::storage::{AuthenticateRecord, DeviceStore};
use mdm_tests::enroll::{fetch_profile, rsa_key};
use mdm_tests::fixture::{Backend, TempDir};
use mdm_tests::on_every_backend;
use mdm_tests::private_postgres::{server_binaries, PrivatePostgres};
use mdm_tests::restartable::{create_postgres_database, RestartableServer, ScratchDatabase};
use mdm_tests::simulator::SimDevice;
use openssl::nid::Nid;
use openssl::x509::{X509Name, X509};
use plist::{Dictionary, Value as PlistValue};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const FLEET: usize = 10_000;

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .expect("one row");
    row.try_get_by_index::<i64>(0)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Watches the server's database from outside for an open write transaction, so a
/// kill can land inside one, not just somewhere near it.
enum WriteWatch {
    /// A connection of our own with no busy timeout: `BEGIN IMMEDIATE` fails with
    /// SQLITE_BUSY exactly while another connection holds the write lock.
    Sqlite(sea_orm::sqlx::SqliteConnection),
    /// pg_stat_activity shows the server's session inside a transaction.
    Postgres(DatabaseConnection),
}

impl WriteWatch {
    async fn new(database_url: &str) -> WriteWatch {
        use sea_orm::sqlx::Connection;
        if database_url.starts_with("sqlite:") {
            use std::str::FromStr;
            let options = sea_orm::sqlx::sqlite::SqliteConnectOptions::from_str(database_url)
                .unwrap()
                .busy_timeout(Duration::ZERO);
            let conn = sea_orm::sqlx::SqliteConnection::connect_with(&options)
                .await
                .expect("watch connection");
            WriteWatch::Sqlite(conn)
        } else {
            WriteWatch::Postgres(sea_orm::Database::connect(database_url).await.unwrap())
        }
    }

    async fn in_write(&mut self) -> bool {
        match self {
            WriteWatch::Sqlite(conn) => {
                match sea_orm::sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut *conn)
                    .await
                {
                    Ok(_) => {
                        sea_orm::sqlx::query("ROLLBACK")
                            .execute(&mut *conn)
                            .await
                            .unwrap();
                        false
                    }
                    Err(e) => {
                        let busy = e
                            .as_database_error()
                            .and_then(|d| d.code())
                            .and_then(|c| c.parse::<i32>().ok())
                            .is_some_and(|c| c & 0xff == 5);
                        assert!(busy, "watching the write lock: {e}");
                        true
                    }
                }
            }
            WriteWatch::Postgres(db) => {
                count(
                    db,
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND pid <> pg_backend_pid() \
                     AND (state = 'idle in transaction' \
                          OR (state = 'active' AND query ILIKE 'INSERT INTO%'))",
                )
                .await
                    > 0
            }
        }
    }

    /// Polls until a write transaction is seen (true) or `done` says the requests
    /// are over (false).
    async fn wait(&mut self, done: impl Fn() -> bool) -> bool {
        while !done() {
            if self.in_write().await {
                return true;
            }
            // Our probe takes the lock for an instant: leave the server room to get it.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        false
    }
}

/// Enrolled devices straight into the database, as the benchmark seeds them.
async fn seed(server: &RestartableServer, n: usize) -> Vec<String> {
    let records = (0..n)
        .map(|i| AuthenticateRecord {
            udid: format!("FAULT-{i:07}"),
            serial_number: Some(format!("FT{i:07}")),
            os_family: "iOS".into(),
            identity_fingerprint: format!("{i:064}"),
            identity_subject: "CN=fault".into(),
            identity_not_after: "-".into(),
            ..Default::default()
        })
        .collect();
    server
        .store()
        .await
        .insert_enrolled_devices(records)
        .await
        .unwrap()
}

/// Every device holds exactly `fan_outs` commands (none twice, none missing) and
/// the audit trail has one event per fan-out.
async fn assert_whole_fan_outs(db: &DatabaseConnection, fan_outs: i64, when: &str) {
    let per_device = |agg: &str| {
        format!("SELECT COALESCE({agg}(n), 0) FROM (SELECT device_id, COUNT(*) AS n FROM commands GROUP BY device_id) t")
    };
    let total = count(db, "SELECT COUNT(*) FROM commands").await;
    assert_eq!(
        total,
        fan_outs * FLEET as i64,
        "{when}: {total} commands, expected {fan_outs} whole fan-outs of {FLEET}"
    );
    if fan_outs > 0 {
        assert_eq!(count(db, &per_device("MIN")).await, fan_outs, "{when}");
        assert_eq!(count(db, &per_device("MAX")).await, fan_outs, "{when}");
        assert_eq!(
            count(db, "SELECT COUNT(DISTINCT device_id) FROM commands").await,
            FLEET as i64,
            "{when}"
        );
    }
    assert_eq!(
        count(
            db,
            "SELECT COUNT(*) FROM events WHERE kind = 'admin.command_queued'"
        )
        .await,
        fan_outs,
        "{when}: one audit event per fan-out in the database, committed with it"
    );
}

#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// While the server's write transaction is open (seen from outside).
    InWrite,
    /// This long after the request was sent.
    After(Duration),
}

async fn kill_during_fan_out(backend: Backend) {
    let database = ScratchDatabase::new(&backend).await;
    let mut server = RestartableServer::start(&database.url, None, true).await;
    let ids = seed(&server, FLEET).await;
    let body = json!({ "device_ids": ids, "type": "DeviceInformation" });
    let db = server.store().await.connection().clone();

    // One uninterrupted fan-out: it works, and its duration places the timed kills.
    let started = Instant::now();
    let (code, answer) = server.api("POST", "/commands", Some(body.clone())).await;
    let uninterrupted = started.elapsed();
    assert_eq!(code, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["count"], FLEET);
    let mut whole = 1;
    assert_whole_fan_outs(&db, whole, "uninterrupted").await;

    let mut points = vec![
        KillPoint::InWrite,
        KillPoint::InWrite,
        KillPoint::InWrite,
        KillPoint::After(Duration::ZERO),
        KillPoint::After(Duration::from_millis(5)),
    ];
    for fraction in [0.25, 0.5, 0.75, 0.9, 1.0] {
        points.push(KillPoint::After(uninterrupted.mul_f64(fraction)));
    }
    let http = reqwest::Client::new();
    let mut watch = WriteWatch::new(&database.url).await;
    let mut caught_in_write = 0;
    let mut outcomes = Vec::new();
    for point in points {
        let request = tokio::spawn(
            http.post(server.url("/api/v1/commands"))
                .bearer_auth(&server.admin_token)
                .json(&body)
                .send(),
        );
        match point {
            KillPoint::InWrite => {
                if watch.wait(|| request.is_finished()).await {
                    caught_in_write += 1;
                }
            }
            KillPoint::After(delay) => tokio::time::sleep(delay).await,
        }
        server.kill();
        let answered = request.await.unwrap().map(|r| r.status()).ok();
        server.restart().await;

        let total = count(&db, "SELECT COUNT(*) FROM commands").await;
        let added = total - whole * FLEET as i64;
        assert!(
            added == 0 || added == FLEET as i64,
            "kill {point:?}: {added} of {FLEET} commands survived; a fan-out must be all or nothing"
        );
        if answered == Some(StatusCode::ACCEPTED) {
            assert_eq!(
                added, FLEET as i64,
                "an answered fan-out is in the database"
            );
        }
        if added > 0 {
            whole += 1;
        }
        assert_whole_fan_outs(&db, whole, &format!("after kill {point:?}")).await;
        outcomes.push(format!(
            "{point:?}: {}",
            if added > 0 { "all" } else { "none" }
        ));
    }
    eprintln!(
        "{} fan-out of {FLEET} took {uninterrupted:?}; kills: {}",
        backend.name(),
        outcomes.join(", ")
    );
    assert!(
        caught_in_write > 0,
        "no kill landed inside the fan-out's write transaction"
    );

    // The server still queues after all this.
    let (code, answer) = server.api("POST", "/commands", Some(body)).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{answer}");
    assert_whole_fan_outs(&db, whole + 1, "after the kills").await;
}

/// The enrollment profile carries the push topic: a push certificate goes first.
async fn upload_push_certificate(server: &RestartableServer) {
    let apple = TestCa::new("Fake Apple Push CA");
    let (key, cert) = mdm_tests::fake_apns::make_push_certificate(
        &apple,
        mdm_tests::fixture::TEST_PUSH_TOPIC,
        365,
    );
    let (code, body) = server
        .api(
            "PUT",
            "/push-certificate",
            Some(json!({
                "certificate_pem": String::from_utf8(cert.to_pem().unwrap()).unwrap(),
                "private_key_pem": String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap(),
            })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
}

/// A device's PKCSReq, built before the clock runs, with its challenge.
struct PendingEnrollment {
    request: enrollment::scep::client::ClientRequest,
}

#[derive(Debug)]
enum ScepAnswer {
    Issued(X509),
    Refused,
    /// No answer: the server died first.
    Lost,
}

/// One PKIOperation: the CertRep's bytes; None when no answer came (the server
/// died) or a clean 503 did (the database could not serve in time on a loaded
/// machine), so the device asks again later. Never panics: it runs in a task.
async fn post_scep(
    http: &reqwest::Client,
    url: &str,
    der: &[u8],
) -> Result<Option<Vec<u8>>, String> {
    let Ok(resp) = http
        .post(url)
        .header("Content-Type", "application/x-pki-message")
        .body(der.to_vec())
        .send()
        .await
    else {
        return Ok(None);
    };
    match resp.status() {
        StatusCode::OK => Ok(resp.bytes().await.ok().map(|b| b.to_vec())),
        StatusCode::SERVICE_UNAVAILABLE if resp.headers().contains_key("Retry-After") => Ok(None),
        other => Err(format!(
            "SCEP answered {other}, not a CertRep: {}",
            resp.text().await.unwrap_or_default()
        )),
    }
}

fn read_answer(body: Option<Vec<u8>>, pending: &PendingEnrollment, ca: &X509) -> ScepAnswer {
    match body {
        None => ScepAnswer::Lost,
        Some(body) => match parse_cert_rep(&body, &pending.request, ca).expect("a CertRep") {
            CertRepOutcome::Success(cert) => ScepAnswer::Issued(cert),
            CertRepOutcome::Failure(_) => ScepAnswer::Refused,
            CertRepOutcome::Pending => panic!("this server never answers PENDING"),
        },
    }
}

/// Challenges consumed and certificates issued through the enrollment agree:
/// nothing is half-issued. (Enrollment uses count devices at their first
/// Authenticate, not certificates, so they are not part of this.)
async fn assert_no_half_issued(db: &DatabaseConnection, enrollment_id: &str, when: &str) -> i64 {
    let used = count(
        db,
        &format!(
            "SELECT COUNT(*) FROM scep_challenges WHERE enrollment_id = '{enrollment_id}' \
             AND used_at IS NOT NULL"
        ),
    )
    .await;
    let issued = count(
        db,
        &format!(
            "SELECT COUNT(*) FROM issued_certificates WHERE enrollment_id = '{enrollment_id}' \
             AND renewed_from IS NULL"
        ),
    )
    .await;
    assert_eq!(
        used, issued,
        "{when}: consumed challenges and issued certificates must agree"
    );
    issued
}

#[derive(Debug, Clone, Copy)]
enum EnrollKill {
    AfterFirstAnswer,
    AfterHalfAnswered,
    InWrite,
    Immediately,
}

async fn kill_during_enrollment(backend: Backend) {
    const DEVICES: usize = 16;
    let database = ScratchDatabase::new(&backend).await;
    let mut server = RestartableServer::start(&database.url, None, false).await;
    upload_push_certificate(&server).await;
    let (code, e) = server
        .api(
            "POST",
            "/enrollments",
            Some(json!({ "platform": "apple", "name": "Kill test" })),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{e}");
    let enrollment_id = e["id"].as_str().unwrap().to_owned();
    let enrollment_path = e["url"]
        .as_str()
        .unwrap()
        .replace("https://mdm.test.invalid", "");
    let db = server.store().await.connection().clone();
    let http = reqwest::Client::new();
    let mut watch = WriteWatch::new(&database.url).await;
    let mut issued_to_clients: Vec<X509> = Vec::new();
    let mut caught_in_write = 0;

    for round in [
        EnrollKill::AfterFirstAnswer,
        EnrollKill::InWrite,
        EnrollKill::AfterHalfAnswered,
        EnrollKill::InWrite,
        EnrollKill::Immediately,
    ] {
        // Each device downloads the profile (a challenge of its own), as an iPhone does.
        let ca_der = reqwest::get(server.url("/scep?operation=GetCACert"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let ca = X509::from_der(&ca_der).unwrap();
        let mut pending = Vec::new();
        for _ in 0..DEVICES {
            let profile = fetch_profile(&server.url(&enrollment_path)).await;
            let key = rsa_key();
            let mut name = X509Name::builder().unwrap();
            name.append_entry_by_nid(Nid::COMMONNAME, &profile.subject_cn)
                .unwrap();
            let name = name.build();
            let mut opts = RequestOptions::new(&key, &name, &ca);
            opts.challenge = Some(&profile.challenge);
            pending.push(Arc::new(PendingEnrollment {
                request: build_request(&opts).unwrap(),
            }));
        }

        // All at once; the server dies while they are in flight.
        let scep_url = server.url("/scep?operation=PKIOperation");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for (i, p) in pending.iter().enumerate() {
            let (http, url, p, tx) = (http.clone(), scep_url.clone(), p.clone(), tx.clone());
            tasks.push(tokio::spawn(async move {
                let body = post_scep(&http, &url, &p.request.der).await;
                let _ = tx.send(());
                (i, body)
            }));
        }
        // Only the tasks hold senders now: when all are done, recv() ends.
        drop(tx);
        match round {
            EnrollKill::AfterFirstAnswer => {
                rx.recv().await;
            }
            EnrollKill::AfterHalfAnswered => {
                for _ in 0..DEVICES / 2 {
                    rx.recv().await;
                }
            }
            EnrollKill::InWrite => {
                if watch.wait(|| tasks.iter().all(|t| t.is_finished())).await {
                    caught_in_write += 1;
                }
            }
            EnrollKill::Immediately => {}
        }
        server.kill();
        let mut answers = HashMap::new();
        for t in tasks {
            let (i, body) = t.await.unwrap();
            let body = body.unwrap_or_else(|e| panic!("{e}"));
            answers.insert(i, read_answer(body, &pending[i], &ca));
        }
        server.restart().await;
        let when = format!("after kill {round:?}");
        assert_no_half_issued(&db, &enrollment_id, &when).await;

        // What a client received is on record; what it did not receive, it asks again:
        // a challenge that was consumed is refused, any other is served now.
        let scep_url = server.url("/scep?operation=PKIOperation");
        let mut lost = 0;
        for (i, answer) in answers {
            match answer {
                ScepAnswer::Issued(cert) => issued_to_clients.push(cert),
                ScepAnswer::Refused => panic!("{when}: a fresh challenge was refused"),
                ScepAnswer::Lost => {
                    lost += 1;
                    // Asked again until answered (a 503 on a loaded machine is a
                    // "later", as for a device).
                    let deadline = Instant::now() + Duration::from_secs(120);
                    let body = loop {
                        let body = post_scep(&http, &scep_url, &pending[i].request.der)
                            .await
                            .unwrap_or_else(|e| panic!("{e}"));
                        if body.is_some() {
                            break body;
                        }
                        assert!(
                            Instant::now() < deadline,
                            "{when}: SCEP unavailable for 2 min"
                        );
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    };
                    if let ScepAnswer::Issued(cert) = read_answer(body, &pending[i], &ca) {
                        issued_to_clients.push(cert);
                    }
                }
            }
        }
        eprintln!(
            "{} {when}: {lost} of {DEVICES} requests unanswered",
            backend.name()
        );
        let issued = assert_no_half_issued(&db, &enrollment_id, &format!("{when}, retried")).await;
        assert!(issued >= issued_to_clients.len() as i64);
    }
    for cert in &issued_to_clients {
        let fingerprint = enrollment::identity::fingerprint(cert);
        assert_eq!(
            count(
                &db,
                &format!(
                    "SELECT COUNT(*) FROM issued_certificates WHERE fingerprint = '{fingerprint}'"
                ),
            )
            .await,
            1,
            "a certificate a device received is on record"
        );
    }
    assert!(
        caught_in_write > 0,
        "no kill landed inside an enrollment's write transaction"
    );
}

on_every_backend!(kill_during_fan_out, kill_during_enrollment);

/// What a device request got: status, Retry-After and body.
struct DeviceAnswer {
    status: StatusCode,
    retry_after: Option<String>,
    body: Vec<u8>,
}

impl DeviceAnswer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The CommandUUID of the command in a 200 answer, if any.
    fn command(&self) -> Option<String> {
        if self.status != StatusCode::OK || self.body.is_empty() {
            return None;
        }
        let d: Dictionary = plist::from_bytes(&self.body).expect("a command plist");
        d.get("CommandUUID")
            .and_then(PlistValue::as_string)
            .map(str::to_owned)
    }
}

/// A signed report to /mdm/connect, as the device would send it: Idle, or
/// Acknowledged for `uuid`.
async fn report(
    http: &reqwest::Client,
    base_url: &str,
    device: &SimDevice,
    uuid: Option<&str>,
) -> DeviceAnswer {
    let mut d = Dictionary::new();
    d.insert("UDID".into(), device.udid.clone().into());
    match uuid {
        Some(u) => {
            d.insert("Status".into(), "Acknowledged".into());
            d.insert("CommandUUID".into(), u.into());
        }
        None => {
            d.insert("Status".into(), "Idle".into());
        }
    }
    let mut body = Vec::new();
    PlistValue::Dictionary(d).to_writer_xml(&mut body).unwrap();
    let resp = http
        .put(format!("{base_url}/mdm/connect"))
        .header(
            "Mdm-Signature",
            sign_detached(&device.key, &device.cert, &body),
        )
        .body(body)
        .send()
        .await
        .expect("the server answers");
    DeviceAnswer {
        status: resp.status(),
        retry_after: resp
            .headers()
            .get("Retry-After")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: resp.bytes().await.unwrap().to_vec(),
    }
}

async fn enrolled_devices(server: &RestartableServer, n: usize) -> Vec<SimDevice> {
    let devices: Vec<SimDevice> = (0..n)
        .map(|_| SimDevice::iphone(&server.base_url, &server.ca))
        .collect();
    for d in &devices {
        d.enroll().await;
    }
    devices
}

/// The server's id of each device (the API addresses devices by id).
async fn ids_of(server: &RestartableServer, devices: &[SimDevice]) -> Vec<String> {
    let (code, body) = server.api("GET", "/devices?limit=1000", None).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let items = body["items"].as_array().expect("a page of devices");
    devices
        .iter()
        .map(|d| {
            items
                .iter()
                .find(|i| i["udid"] == d.udid.as_str())
                .unwrap_or_else(|| panic!("device {} not listed: {body}", d.udid))["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

async fn queue_one(server: &RestartableServer, device_id: &str) -> String {
    let (code, body) = server
        .api(
            "POST",
            &format!("/devices/{device_id}/commands"),
            Some(json!({ "type": "SecurityInfo" })),
        )
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    body["command_uuid"].as_str().unwrap().to_owned()
}

async fn command_status(db: &DatabaseConnection, uuid: &str) -> String {
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT status FROM commands WHERE uuid = '{uuid}'"),
        ))
        .await
        .unwrap();
    row.map(|r| r.try_get_by_index::<String>(0).unwrap())
        .unwrap_or_else(|| "missing".into())
}

/// A 503 that says why and when to come back.
fn assert_clean_503(status: StatusCode, retry_after: &Option<String>, text: &str, what: &str) {
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {text}");
    let secs: u32 = retry_after
        .as_deref()
        .unwrap_or_else(|| panic!("{what}: 503 without Retry-After"))
        .parse()
        .expect("Retry-After in seconds");
    assert!(secs > 0, "{what}");
    assert!(
        text.contains("database") || text.contains("storage"),
        "{what}: the message says what is wrong: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_while_devices_connect() {
    let Some(bin) = server_binaries() else {
        eprintln!(
            "SKIPPED postgres_restarted_while_devices_connect: PostgreSQL server binaries not \
             installed (apt-get install postgresql)"
        );
        return;
    };
    let pg = PrivatePostgres::start(&bin).expect("a private PostgreSQL");
    let url = create_postgres_database(&pg.url("postgres")).await;
    let mut server = RestartableServer::start(&url, None, true).await;
    let devices = enrolled_devices(&server, 6).await;
    let ids = ids_of(&server, &devices).await;
    let http = reqwest::Client::new();

    // Connected: each device takes its command and acknowledges it.
    for (d, id) in devices.iter().zip(&ids) {
        let uuid = queue_one(&server, id).await;
        let got = report(&http, &server.base_url, d, None).await;
        assert_eq!(
            got.command().as_deref(),
            Some(uuid.as_str()),
            "{}",
            got.text()
        );
        let done = report(&http, &server.base_url, d, Some(&uuid)).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    }
    let waiting: Vec<String> =
        futures::future::join_all(ids.iter().map(|id| queue_one(&server, id))).await;

    pg.stop().expect("stop PostgreSQL");
    // Down: every request answers 503 with Retry-After, within the bound, and the
    // server stays up. Devices and the admin API at once.
    let bound = Duration::from_secs(20);
    let answers = tokio::time::timeout(
        bound,
        futures::future::join_all(
            devices
                .iter()
                .map(|d| report(&http, &server.base_url, d, None)),
        ),
    )
    .await
    .expect("device requests answered within the bound while PostgreSQL is down");
    for a in &answers {
        assert_clean_503(
            a.status,
            &a.retry_after,
            &a.text(),
            "device Idle, database down",
        );
    }
    let (status, retry_after, body) =
        tokio::time::timeout(bound, server.api_full("GET", "/devices", None))
            .await
            .expect("admin request answered within the bound");
    assert_clean_503(
        status,
        &retry_after,
        &body.to_string(),
        "admin GET /devices, database down",
    );
    let (status, retry_after, body) = tokio::time::timeout(
        bound,
        server.api_full(
            "POST",
            &format!("/devices/{}/commands", ids[0]),
            Some(json!({ "type": "SecurityInfo" })),
        ),
    )
    .await
    .expect("admin write answered within the bound");
    assert_clean_503(
        status,
        &retry_after,
        &body.to_string(),
        "admin POST, database down",
    );
    assert!(server.is_running(), "the server survives the outage");

    pg.start_again().expect("start PostgreSQL again");
    // The test's own look into the database, connected after the restart: one opened
    // before it may hold a connection PostgreSQL terminated at shutdown (57P01 on its
    // next query). The server's recovery is what is under test, not the test's pool.
    let db = server.store().await.connection().clone();
    // Recovered without a restart: each device, retrying as devices do after a 503,
    // gets its waiting command and acknowledges it.
    for (d, uuid) in devices.iter().zip(&waiting) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let got = loop {
            let a = report(&http, &server.base_url, d, None).await;
            if a.status == StatusCode::OK {
                break a;
            }
            assert_clean_503(
                a.status,
                &a.retry_after,
                &a.text(),
                "device Idle, recovering",
            );
            assert!(Instant::now() < deadline, "no recovery within 60 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(got.command().as_deref(), Some(uuid.as_str()));
        let done = report(&http, &server.base_url, d, Some(uuid)).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert_eq!(command_status(&db, uuid).await, "acknowledged");
    }
    let (status, body) = server.api("GET", "/devices", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        server.log().contains("database unavailable"),
        "the outage is logged"
    );
    server.kill();
}

/// Holds SQLite's write lock from outside the server, as a second writer would.
async fn hold_write_lock(database_url: &str, hold: Duration) {
    use sea_orm::sqlx::Connection;
    use std::str::FromStr;
    let options = sea_orm::sqlx::sqlite::SqliteConnectOptions::from_str(database_url)
        .unwrap()
        .busy_timeout(Duration::from_secs(60));
    let mut conn = sea_orm::sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    sea_orm::sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut conn)
        .await
        .unwrap();
    tokio::time::sleep(hold).await;
    sea_orm::sqlx::query("ROLLBACK")
        .execute(&mut conn)
        .await
        .unwrap();
}

#[derive(Default)]
struct Tally {
    statuses: HashMap<u16, usize>,
    /// Commands a device's acknowledgement was answered 200 for.
    acknowledged: Vec<String>,
    /// Commands the admin API answered 202 for.
    queued: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_busy_under_concurrent_writers() {
    let database = ScratchDatabase::new(&Backend::Sqlite).await;
    let server = Arc::new(RestartableServer::start(&database.url, None, true).await);
    let db = server.store().await.connection().clone();
    let devices = enrolled_devices(&server, 12).await;
    let ids = Arc::new(ids_of(&server, &devices).await);
    let devices = Arc::new(devices);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tally = Arc::new(std::sync::Mutex::new(Tally::default()));
    let http = reqwest::Client::new();

    let mut writers = Vec::new();
    for i in 0..devices.len() {
        let (devices, server, stop, tally, http) = (
            devices.clone(),
            server.clone(),
            stop.clone(),
            tally.clone(),
            http.clone(),
        );
        writers.push(tokio::spawn(async move {
            let device = &devices[i];
            let mut pending: Option<String> = None;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let a = report(&http, &server.base_url, device, pending.as_deref()).await;
                {
                    let mut t = tally.lock().unwrap();
                    *t.statuses.entry(a.status.as_u16()).or_default() += 1;
                    match a.status {
                        StatusCode::OK => {
                            if let Some(done) = pending.take() {
                                t.acknowledged.push(done);
                            }
                            pending = a.command();
                        }
                        s => assert_clean_503(s, &a.retry_after, &a.text(), "device report"),
                    }
                }
                if pending.is_none() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }
    for _ in 0..3 {
        let (ids, server, stop, tally) = (ids.clone(), server.clone(), stop.clone(), tally.clone());
        writers.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (status, retry_after, body) = server
                    .api_full(
                        "POST",
                        "/commands",
                        Some(json!({ "device_ids": *ids, "type": "SecurityInfo" })),
                    )
                    .await;
                let mut t = tally.lock().unwrap();
                *t.statuses.entry(status.as_u16()).or_default() += 1;
                if status == StatusCode::ACCEPTED {
                    for c in body["commands"].as_array().unwrap() {
                        t.queued
                            .push(c["command_uuid"].as_str().unwrap().to_owned());
                    }
                } else {
                    assert_clean_503(status, &retry_after, &body.to_string(), "admin fan-out");
                }
            }
        }));
    }

    // A second writer holds the lock shorter than the server's busy timeout (writers
    // wait, then pass), then longer (writers give up with 503 + Retry-After).
    tokio::time::sleep(Duration::from_millis(500)).await;
    hold_write_lock(&database.url, Duration::from_secs(2)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    hold_write_lock(&database.url, Duration::from_secs(12)).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.expect("no writer saw a 500 or an unclean 503");
    }

    // The devices drain what is left, as they would on their next connection.
    for d in devices.iter() {
        let mut pending = None;
        loop {
            let a = report(&http, &server.base_url, d, pending.as_deref()).await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.text());
            if let Some(done) = pending.take() {
                tally.lock().unwrap().acknowledged.push(done);
            }
            pending = a.command();
            if pending.is_none() {
                break;
            }
        }
    }

    let t = std::mem::take(&mut *tally.lock().unwrap());
    eprintln!("answers by status: {:?}", t.statuses);
    assert!(
        t.statuses.keys().all(|s| [200, 202, 503].contains(s)),
        "only success or 503: {:?}",
        t.statuses
    );
    assert!(
        t.statuses.get(&503).copied().unwrap_or(0) > 0,
        "a lock held past the busy timeout gives 503s"
    );
    assert!(t.statuses.get(&202).copied().unwrap_or(0) > 0);
    // Nothing acknowledged is lost: each queued command is in the database, each
    // acknowledged result too, and in the end every command was answered.
    for uuid in &t.acknowledged {
        assert_eq!(command_status(&db, uuid).await, "acknowledged", "{uuid}");
    }
    for uuid in &t.queued {
        assert_ne!(command_status(&db, uuid).await, "missing", "{uuid}");
    }
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM commands WHERE status <> 'acknowledged'"
        )
        .await,
        0,
        "every queued command was delivered and its result stored"
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM commands").await,
        t.queued.len() as i64,
        "exactly the commands the API acknowledged"
    );
}

/// A tmpfs of `size` mounted on a temporary folder, unmounted when dropped.
struct SmallFilesystem {
    dir: TempDir,
}

impl SmallFilesystem {
    fn mount(size: &str) -> Result<SmallFilesystem, String> {
        let dir = TempDir::new("mdm-small-fs");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir.0)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(SmallFilesystem { dir })
    }

    /// Writes a file until the filesystem is full.
    fn fill(&self, name: &str) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.dir.0.join(name)).unwrap();
        for chunk in [64 * 1024, 4096, 512, 1] {
            let data = vec![0x5a_u8; chunk];
            while f.write_all(&data).and_then(|_| f.flush()).is_ok() {}
        }
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.dir.0)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk() {
    let fs = match SmallFilesystem::mount("24m") {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIPPED full_disk: needs root to mount a small tmpfs ({why})");
            return;
        }
    };
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        fs.dir.0.join("mdm.sqlite").display()
    );
    let mut server =
        RestartableServer::start(&database_url, Some(fs.dir.0.join("data")), true).await;
    let db = server.store().await.connection().clone();
    let devices = enrolled_devices(&server, 4).await;
    let ids = ids_of(&server, &devices).await;
    let http = reqwest::Client::new();
    let fan_out = json!({ "device_ids": ids, "type": "SecurityInfo" });
    let mut queued = Vec::new();

    let filled = Instant::now();
    fs.fill("filler");
    // Writes until the database needs space it cannot get (what is left in the WAL
    // is used first): then a 503 that says the storage is full, never a 500.
    let mut full = 0;
    for _ in 0..2000 {
        let (status, retry_after, body) = server
            .api_full("POST", "/commands", Some(fan_out.clone()))
            .await;
        if status == StatusCode::ACCEPTED {
            for c in body["commands"].as_array().unwrap() {
                queued.push(c["command_uuid"].as_str().unwrap().to_owned());
            }
            continue;
        }
        assert_clean_503(
            status,
            &retry_after,
            &body.to_string(),
            "admin write, disk full",
        );
        assert!(
            body["error"].as_str().unwrap().contains("storage is full"),
            "{body}; server log:\n{}",
            server.log()
        );
        full += 1;
        if full == 5 {
            break;
        }
    }
    assert_eq!(full, 5, "a full disk turns into 503s");
    // Devices reporting meanwhile: success where no space is needed, else the same 503.
    for d in &devices {
        let a = report(&http, &server.base_url, d, None).await;
        if a.status != StatusCode::OK {
            assert_clean_503(
                a.status,
                &a.retry_after,
                &a.text(),
                "device report, disk full",
            );
            assert!(a.text().contains("storage is full"), "{}", a.text());
        }
    }
    // Reading needs no space.
    let (status, body) = server.api("GET", "/devices", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(server.is_running(), "no panic, no exit");
    let logged = server.log().matches("database storage is full").count();
    let minutes = filled.elapsed().as_secs() / 60;
    assert!(
        logged >= 1 && logged as u64 <= 1 + minutes,
        "logged once (per minute), not per request: {logged} lines"
    );

    // Space freed: the server works again, without a restart.
    std::fs::remove_file(fs.dir.0.join("filler")).unwrap();
    let (status, body) = server.api("POST", "/commands", Some(fan_out)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    for c in body["commands"].as_array().unwrap() {
        queued.push(c["command_uuid"].as_str().unwrap().to_owned());
    }
    for d in &devices {
        let mut pending = None;
        loop {
            let a = report(&http, &server.base_url, d, pending.as_deref()).await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.text());
            pending = a.command();
            if pending.is_none() {
                break;
            }
        }
    }
    for uuid in &queued {
        assert_eq!(command_status(&db, uuid).await, "acknowledged", "{uuid}");
    }
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM commands").await,
        queued.len() as i64,
        "every acknowledged fan-out, nothing else"
    );
    server.kill();
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "PRAGMA integrity_check".to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get_by_index::<String>(0).unwrap(), "ok");
    db.close().await.ok();
}
