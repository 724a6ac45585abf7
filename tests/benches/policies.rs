//! Policy delivery benchmark: one policy for N devices (each with its own directory
//! user, whose attributes fill the profile), through the API of the real server:
//!
//! * assign: render N profiles, sign them, compare, queue N InstallProfile;
//! * deliver unchanged: render and compare N profiles, queue nothing;
//! * save unchanged: the same document again (nothing rendered, nothing queued);
//! * change: a new version, N profiles rendered, signed and re-queued.
//!
//! Run it so:
//!
//!   cargo bench -p mdm-tests --bench policies -- [--devices 1000,10000]
//!       [--backend sqlite|postgres|both]
//!
//! PostgreSQL needs MDM_TEST_POSTGRES_URL. Devices are enrolled directly in the store.

use mdm_server::storage::{AuthenticateRecord, DeviceStore};
use mdm_tests::fixture::{Backend, TestServer};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};
use std::time::Instant;

fn policy(min_length: u32) -> Value {
    json!({
        "name": "bench",
        "passcode": { "required": true, "min_length": min_length, "max_failed_attempts": 10, "auto_lock_minutes": 5 },
        "wifi": [{ "ssid": "Bench", "security": {
            "type": "enterprise", "eap": { "method": "peap", "inner": "mschapv2" },
            "radius_server_names": ["radius.bench.example"], "radius_ca_certificates": ["root"] } }],
        "mail": [{ "name": "Mail", "kind": "exchange", "host": "mail.bench.example" }],
        "certificates": [{ "name": "root", "pem": root_pem() }]
    })
}

fn root_pem() -> &'static str {
    static PEM: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PEM.get_or_init(|| {
        let ca = enrollment::identity::testing::TestCa::new("Bench RADIUS root");
        String::from_utf8(ca.cert.to_pem().unwrap()).unwrap()
    })
}

async fn timed(server: &TestServer, method: &str, path: &str, body: Option<Value>) -> (f64, Value) {
    let started = Instant::now();
    let (code, v) = server.api(method, path, body).await;
    let secs = started.elapsed().as_secs_f64();
    assert!(code.is_success(), "{method} {path}: {v}");
    (secs, v)
}

async fn bench(backend: Backend, fleet: usize) {
    let server = TestServer::start(backend.clone()).await;
    let store = server.store().await;
    let records = (0..fleet)
        .map(|i| AuthenticateRecord {
            udid: format!("BENCH-{i:07}"),
            serial_number: Some(format!("BN{i:07}")),
            os_family: "iOS".into(),
            identity_fingerprint: format!("{i:064}"),
            identity_subject: "CN=bench".into(),
            identity_not_after: "-".into(),
            ..Default::default()
        })
        .collect();
    store.insert_enrolled_devices(records).await.unwrap();
    let db = store.connection();
    db.execute(Statement::from_string(
        db.get_database_backend(),
        "UPDATE devices SET assigned_user = 'user' || substr(udid, 7), assigned_group = 'bench'"
            .to_owned(),
    ))
    .await
    .unwrap();
    let mut csv = String::from("username,upn,email,display_name,department,groups\n");
    for i in 0..fleet {
        csv += &format!(
            "user{i:07},user{i:07}@ad.bench.example,user{i:07}@bench.example,User {i},Bench,staff\n"
        );
    }
    timed(
        &server,
        "POST",
        "/users/import",
        Some(json!({ "csv": csv })),
    )
    .await;
    timed(
        &server,
        "POST",
        "/device-groups",
        Some(json!({ "name": "bench", "kind": "enrollment", "match": "bench" })),
    )
    .await;
    timed(
        &server,
        "PUT",
        "/policies/bench",
        Some(json!({ "document": policy(6) })),
    )
    .await;
    // The seeding wrote enrollment events; the policy watcher reads them (and would
    // deliver to those devices itself): let it catch up so the timings below are the
    // admin's requests alone.
    let scalar = |sql: &str| Statement::from_string(db.get_database_backend(), sql.to_owned());
    loop {
        let row = db
            .query_one(scalar(
                "SELECT (SELECT COALESCE(MAX(id), 0) FROM events) - (SELECT last_event_id FROM policy_event_cursor) AS behind",
            ))
            .await
            .unwrap()
            .unwrap();
        if row.try_get::<i64>("", "behind").unwrap() <= 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    let (assign, v) = timed(
        &server,
        "POST",
        "/policies/bench/assignments",
        Some(json!({ "group": "bench" })),
    )
    .await;
    assert_eq!(v["apple_installs"].as_u64().unwrap() as usize, fleet, "{v}");
    let (deliver_same, v) = timed(&server, "POST", "/policies/deliver", None).await;
    assert_eq!(v["apple_installs"], 0, "{v}");
    assert_eq!(v["apple_unchanged"].as_u64().unwrap() as usize, fleet);
    let (save_same, v) = timed(
        &server,
        "PUT",
        "/policies/bench",
        Some(json!({ "document": policy(6) })),
    )
    .await;
    assert_eq!(v["changed"], false);
    let (change, v) = timed(
        &server,
        "PUT",
        "/policies/bench",
        Some(json!({ "document": policy(8) })),
    )
    .await;
    assert_eq!(
        v["delivery"]["apple_installs"].as_u64().unwrap() as usize,
        fleet,
        "{v}"
    );
    // Each device got each version exactly once.
    let row = db
        .query_one(scalar(
            "SELECT COUNT(*) AS n FROM commands WHERE request_type = 'InstallProfile'",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<i64>("", "n").unwrap() as usize, 2 * fleet);
    println!(
        "| {} | {} | {:.2} | {:.2} | {:.3} | {:.2} | {:.0} | {:.3} |",
        backend.name(),
        fleet,
        assign,
        deliver_same,
        save_same,
        change,
        fleet as f64 / change,
        deliver_same / change,
    );
}

fn main() {
    let fleets = mdm_tests::bench::fleet_sizes("1000,10000");
    let backends = mdm_tests::bench::backends();
    let runtime = mdm_tests::bench::runtime();
    println!("| backend | devices | assign: render+sign+queue all (s) | deliver, unchanged (s) | save, unchanged (s) | change: new version to all (s) | devices/s on change | unchanged / change |");
    println!("|---|---|---|---|---|---|---|---|");
    for backend in &backends {
        for &fleet in &fleets {
            runtime.block_on(bench(backend.clone(), fleet));
        }
    }
}
