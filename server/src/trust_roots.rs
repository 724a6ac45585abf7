//! The system's CA certificates, for the TLS clients that build their own trust store.
//!
//! The binary links OpenSSL built from source (the root Cargo.toml), and such an
//! OpenSSL looks for its default roots under its own build prefix (/usr/local/ssl),
//! which no system fills. So the roots are looked up where this system keeps them
//! (openssl-probe: /etc/ssl/certs on Debian, or `SSL_CERT_FILE` / `SSL_CERT_DIR` when
//! set), as native-tls already does for the clients built on it (APNs, Google's APIs,
//! LDAP, SMTP, PostgreSQL). A private CA in the tests would never show a missing
//! public root, hence the tests below.

use openssl::ssl::SslFiletype;
use openssl::x509::store::{X509Lookup, X509StoreBuilder};

/// A trust store holding the system's CA certificates (none on a system that has
/// none, with a warning: a configured CA file can still be added to it).
pub fn system_store() -> Result<X509StoreBuilder, String> {
    let mut store = X509StoreBuilder::new().map_err(|e| e.to_string())?;
    let probed = openssl_probe::probe();
    if let Some(file) = &probed.cert_file {
        let loaded = store
            .add_lookup(X509Lookup::file())
            .and_then(|lookup| lookup.load_cert_file(file, SslFiletype::PEM));
        if let Err(e) = loaded {
            tracing::warn!(
                "the system's CA bundle {} is unreadable: {e}",
                file.display()
            );
        }
    }
    for dir in &probed.cert_dir {
        // A directory of certificates named by subject hash, read when a chain asks.
        let Some(dir) = dir.to_str() else { continue };
        let added = store
            .add_lookup(X509Lookup::hash_dir())
            .and_then(|lookup| lookup.add_dir(dir, SslFiletype::PEM));
        if let Err(e) = added {
            tracing::warn!("the system's CA directory {dir} is unusable: {e}");
        }
    }
    if probed.cert_file.is_none() && probed.cert_dir.is_empty() {
        tracing::warn!(
            "no system CA certificates found (package ca-certificates, or SSL_CERT_FILE): \
             TLS to public servers will not verify"
        );
    }
    Ok(store)
}

/// Runs `body` in a copy of the test process without `SSL_CERT_FILE` and
/// `SSL_CERT_DIR`: set (as on many machines, and on ours), they hand any OpenSSL its
/// roots and would hide a missing lookup. `test` is the calling test's full path.
#[cfg(test)]
pub(crate) fn without_ssl_env(test: &str, body: impl FnOnce()) {
    const CHILD: &str = "MDM_TEST_WITHOUT_SSL_ENV";
    if std::env::var_os(CHILD).is_some() {
        assert!(std::env::var_os("SSL_CERT_FILE").is_none());
        return body();
    }
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env(CHILD, "1")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .status()
        .unwrap();
    assert!(
        status.success(),
        "{test}, run without SSL_CERT_FILE, failed"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::stack::Stack;
    use openssl::x509::{X509StoreContext, X509};

    /// Each root of the system's bundle verifies against the store: what a TLS
    /// client needs to reach a server with a public certificate.
    #[test]
    fn the_systems_roots_are_trusted() {
        without_ssl_env(
            "trust_roots::tests::the_systems_roots_are_trusted",
            roots_verify,
        );
    }

    fn roots_verify() {
        let Some(bundle) = openssl_probe::probe().cert_file else {
            eprintln!(
                "skipped: the_systems_roots_are_trusted: this machine has no CA bundle \
                 (Debian package ca-certificates)"
            );
            return;
        };
        let roots = X509::stack_from_pem(&std::fs::read(&bundle).unwrap()).unwrap();
        assert!(
            !roots.is_empty(),
            "{} holds no certificate",
            bundle.display()
        );
        let store = system_store().unwrap().build();
        let untrusted = Stack::new().unwrap();
        for root in roots.iter().take(10) {
            let mut context = X509StoreContext::new().unwrap();
            let verified = context
                .init(&store, root, &untrusted, |c| c.verify_cert())
                .unwrap();
            assert!(
                verified,
                "{:?} from {} is not trusted: {}",
                root.subject_name(),
                bundle.display(),
                context.error()
            );
        }
    }
}
