//! The device cache stays correct across instances: several servers on one
//! PostgreSQL, each answering idle devices from its own cache, see a command queued
//! or an identity revoked on another at the device's very next request (LISTEN/NOTIFY,
//! server/src/storage/sql/notify.rs); with the listening connection gone, the cache
//! is bypassed until it is back. On SQLite (one instance) the same scenarios run on
//! one server.

use mdm_tests::fixture::Backend;
use mdm_tests::restartable::{RestartableServer, ScratchDatabase};
use mdm_tests::simulator::SimDevice;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use std::time::Duration;

/// Instance A, which the device talks to, and instance B, where admins act (None on
/// SQLite: A is the only instance and admins act there too).
struct Instances {
    a: RestartableServer,
    b: Option<RestartableServer>,
    _database: ScratchDatabase,
}

impl Instances {
    async fn start(backend: &Backend) -> Instances {
        let database = ScratchDatabase::new(backend).await;
        let a = RestartableServer::start(&database.url, None, true).await;
        let b = match backend {
            Backend::Sqlite => None,
            // The same data folder: the same master key, as instances of one
            // deployment share it.
            Backend::Postgres(_) => {
                Some(RestartableServer::start(&database.url, Some(a.data_dir.clone()), true).await)
            }
        };
        let instances = Instances {
            a,
            b,
            _database: database,
        };
        instances.wait_until_listening().await;
        instances
    }

    fn admin(&self) -> &RestartableServer {
        self.b.as_ref().unwrap_or(&self.a)
    }

    /// Until both listen (their cache is bypassed before: the scenarios would pass
    /// without testing anything). A's log says so at `info`; the fixture logs at
    /// `warn`, so this waits for the absence of the "bypassed" warning after a
    /// moment instead, and for a NOTIFY round trip through the database.
    async fn wait_until_listening(&self) {
        if self.b.is_none() {
            return;
        }
        let db = sea_orm::Database::connect(&self.a.database_url)
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let row = db
                .query_one(Statement::from_string(
                    db.get_database_backend(),
                    "SELECT COUNT(*) AS n FROM pg_stat_activity \
                     WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                        .to_owned(),
                ))
                .await
                .unwrap()
                .unwrap();
            if row.try_get::<i64>("", "n").unwrap() >= 2 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the instances do not listen"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The cache turns live right after LISTEN returns.
        tokio::time::sleep(Duration::from_millis(200)).await;
        db.close().await.ok();
    }
}

async fn device_id(server: &RestartableServer, device: &SimDevice) -> String {
    let (code, body) = server
        .api("GET", &format!("/devices?udid={}", device.udid), None)
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body["items"][0]["id"]
        .as_str()
        .expect("the device")
        .to_owned()
}

/// An enrolled device whose empty queue and certificate A has cached: it answered
/// two Idles with an empty 200.
async fn warm_device(instances: &Instances) -> (SimDevice, String) {
    let device = SimDevice::iphone(&instances.a.base_url, &instances.a.ca);
    device.enroll().await;
    assert!(device.idle().await.is_none());
    assert!(device.idle().await.is_none());
    let id = device_id(&instances.a, &device).await;
    (device, id)
}

async fn a_command_queued_anywhere_reaches_the_next_idle(backend: Backend) {
    let instances = Instances::start(&backend).await;
    let (device, id) = warm_device(&instances).await;
    for round in 0..3 {
        let (code, body) = instances
            .admin()
            .api(
                "POST",
                &format!("/devices/{id}/commands"),
                Some(json!({ "type": "SecurityInfo" })),
            )
            .await;
        assert_eq!(code, StatusCode::ACCEPTED, "{body}");
        let uuid = body["command_uuid"].as_str().unwrap();
        // The very next Idle, at once: no waiting for the notification.
        let got = device.idle().await;
        assert_eq!(
            got.as_ref().map(|c| c.uuid.as_str()),
            Some(uuid),
            "round {round}: the command queued on the other instance was not delivered"
        );
        assert!(device.acknowledge(uuid).await.is_none());
        // Empty again, and cached again.
        assert!(device.idle().await.is_none());
        assert!(device.idle().await.is_none());
    }
    // A fan-out past what one notification lists reaches it too.
    let store = instances.admin().store().await;
    let mut ids = mdm_server::storage::DeviceStore::insert_enrolled_devices(
        &store,
        (0..1500)
            .map(|i| mdm_server::storage::AuthenticateRecord {
                udid: format!("FANOUT-{i}"),
                os_family: "iOS".into(),
                identity_fingerprint: format!("{i:064}"),
                identity_subject: "CN=fan-out".into(),
                identity_not_after: "-".into(),
                ..Default::default()
            })
            .collect(),
    )
    .await
    .unwrap();
    ids.push(id.clone());
    let (code, body) = instances
        .admin()
        .api(
            "POST",
            "/commands",
            Some(json!({ "device_ids": ids, "type": "DeviceInformation" })),
        )
        .await;
    assert_eq!(code, StatusCode::ACCEPTED, "{body}");
    let got = device.idle().await.expect("the fan-out's command");
    assert_eq!(got.request_type, "DeviceInformation");
}

async fn a_revocation_anywhere_refuses_the_next_request(backend: Backend) {
    let instances = Instances::start(&backend).await;
    let (device, id) = warm_device(&instances).await;
    let (code, body) = instances
        .admin()
        .api("POST", &format!("/devices/{id}/revoke"), None)
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let reply = device.report_raw("Idle", None, Default::default()).await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "a revoked certificate was accepted: {}",
        reply.text()
    );
    // And a check-in message alike.
    assert_eq!(device.token_update().await.status, StatusCode::UNAUTHORIZED);
}

mdm_tests::on_every_backend!(
    a_command_queued_anywhere_reaches_the_next_idle,
    a_revocation_anywhere_refuses_the_next_request,
);

/// The listening connection of both instances is killed: until each listens again,
/// its cache is bypassed, so a command queued meanwhile still reaches the device at
/// once; once back, the cache is live and kept current again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listener_bypasses_the_cache_until_it_is_back() {
    let Some(backend) = Backend::postgres_from_env() else {
        eprintln!("SKIPPED: MDM_TEST_POSTGRES_URL is not set");
        return;
    };
    let instances = Instances::start(&backend).await;
    let (device, id) = warm_device(&instances).await;
    let db = sea_orm::Database::connect(&instances.a.database_url)
        .await
        .unwrap();
    db.execute_unprepared(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .await
    .unwrap();
    let queue = |kind: &'static str| {
        let admin = instances.admin();
        let id = id.clone();
        async move {
            let (code, body) = admin
                .api(
                    "POST",
                    &format!("/devices/{id}/commands"),
                    Some(json!({ "type": kind })),
                )
                .await;
            assert_eq!(code, StatusCode::ACCEPTED, "{body}");
            body["command_uuid"].as_str().unwrap().to_owned()
        }
    };
    let uuid = queue("SecurityInfo").await;
    assert_eq!(device.idle().await.map(|c| c.uuid), Some(uuid.clone()));
    assert!(device.acknowledge(&uuid).await.is_none());
    // Back: the cache is used again, and still told of what the other queues.
    instances.wait_until_listening().await;
    assert!(device.idle().await.is_none());
    assert!(device.idle().await.is_none());
    let uuid = queue("DeviceInformation").await;
    assert_eq!(device.idle().await.map(|c| c.uuid), Some(uuid));
    assert!(
        instances.a.log().contains("device cache bypassed"),
        "the lost listener is logged"
    );
    db.close().await.ok();
}
