//! Push benchmark: the server's APNs client pushing N notifications to the local fake
//! APNs on loopback, next to a bare HTTP/2 client (h2 directly) pushing the same number
//! to the same fake in the same run. The ratio is the figure.
//!
//!   cargo bench -p mdm-tests --bench push -- [--pushes 100000] [--connections 2] [--concurrency 500]

use enrollment::identity::testing::TestCa;
use mdm_server::push::apns::{ApnsClient, ApnsSettings, PushTarget};
use mdm_server::push::certificate::PushCertificate;
use mdm_tests::fake_apns::{bare_client_rate, make_push_certificate, FakeApns};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOPIC: &str = "com.apple.mgmt.External.5c1a3a5e-8d4a-4b7f-9a53-0f1f4d2b6e77";

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

fn main() {
    let pushes = arg("--pushes", 100_000);
    let connections = arg("--connections", 2);
    let concurrency = arg("--concurrency", 500);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let apple = TestCa::new("Fake Apple Push CA");
        let fake = FakeApns::start(&apple.cert).await;
        let (key, cert) = make_push_certificate(&apple, TOPIC, 365);
        let push_cert = PushCertificate::from_pem(
            &cert.to_pem().unwrap(),
            &key.private_key_to_pem_pkcs8().unwrap(),
            chrono::Utc::now(),
        )
        .unwrap();
        let client = Arc::new(
            ApnsClient::new(
                &push_cert,
                ApnsSettings {
                    url: fake.url(),
                    extra_ca_pem: Some(fake.server_ca_pem()),
                    connections,
                    concurrency,
                    max_attempts: 1,
                    retry_base: Duration::from_millis(10),
                    expiration: Duration::from_secs(3600),
                },
            )
            .unwrap(),
        );
        let targets: Vec<PushTarget> = (0..pushes)
            .map(|i| PushTarget {
                device_id: format!("device-{i}"),
                token_hex: format!("{i:064x}"),
                push_magic: format!("magic-{i}"),
            })
            .collect();
        // Warm up: open the connections.
        client.push_all(targets[..connections * 10].to_vec()).await;

        let started = Instant::now();
        let results = client.push_all(targets).await;
        let ours = pushes as f64 / started.elapsed().as_secs_f64();
        let delivered = results
            .iter()
            .filter(|r| r.outcome == mdm_server::push::apns::Outcome::Delivered)
            .count();
        assert_eq!(
            delivered, pushes,
            "every push must be delivered for the rate to mean anything"
        );

        let bare =
            bare_client_rate(&fake, &key, &cert, TOPIC, pushes, connections, concurrency).await;
        println!("pushes {pushes}, connections {connections}, concurrency {concurrency}");
        println!("| client | pushes/s |");
        println!("|---|---|");
        println!("| mdm ApnsClient (reqwest/hyper, retries, classification) | {ours:.0} |");
        println!("| bare h2 client | {bare:.0} |");
        println!("ratio (ours / bare): {:.2}", ours / bare);
        fake.stop();
    });
}
