//! What checking one `Mdm-Signature` costs, in process: the short way (a certificate
//! whose chain verified before, its signature checked with the kept key), the full
//! way with the chain's verdict cached (openssl's PKCS#7 verification), and the bare
//! signature check for reference. P-256 (the test suite's devices) and RSA-2048
//! (what Apple devices get from SCEP).
//!
//!   cargo bench -p mdm-enrollment --bench signature

use enrollment::identity::testing::{p256_key, sign_detached, KeptChains, TestCa};
use enrollment::identity::DeviceCa;
use std::time::Instant;

fn per_call(n: u32, mut f: impl FnMut()) -> f64 {
    f();
    let started = Instant::now();
    for _ in 0..n {
        f();
    }
    started.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

fn main() {
    let ca = TestCa::new("Device CA");
    let trust = DeviceCa::from_certs(vec![ca.cert.clone()]).unwrap();
    let body = br#"<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>Status</key><string>Idle</string><key>UDID</key><string>0000-BENCH</string></dict></plist>"#;
    let rsa = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    println!("| key | short way µs | full way, chain cached µs | bare signature check µs |");
    println!("|---|---|---|---|");
    for (name, key) in [("P-256", p256_key()), ("RSA-2048", rsa)] {
        let cert = ca.issue_for("device", &key);
        let header = sign_detached(&key, &cert, body);
        let n = 20_000;
        let mut times = Vec::new();
        for kept in [KeptChains::default(), KeptChains::without_keys()] {
            times.push(per_call(n, || {
                trust
                    .verify_mdm_signature_with(&header, body, &kept)
                    .unwrap();
            }));
        }
        let public = cert.public_key().unwrap();
        let mut signer =
            openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
        let signature = signer.sign_oneshot_to_vec(body).unwrap();
        times.push(per_call(n, || {
            let mut verifier =
                openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &public)
                    .unwrap();
            assert!(verifier.verify_oneshot(&signature, body).unwrap());
        }));
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} |",
            times[0], times[1], times[2]
        );
    }
}
