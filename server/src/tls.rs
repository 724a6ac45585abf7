//! The server's HTTPS: the admin's certificate (`--tls-cert`), or one issued by the
//! built-in TLS root (services/pki.rs) for the public URL's host and loopback, and
//! renewed by the running server before it expires.
//!
//! Which roots phones must trust is decided here too ([`ServerTrust`]): the built-in
//! root, the private CA the admin names with `--tls-ca`, or none (a certificate from
//! a public CA, which phones already trust). The enrollment profile carries them.

use crate::config::ServeConfig;
use enrollment::server_tls::{self, ServerTlsAuthority};
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslAcceptorBuilder, SslContext, SslMethod};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509StoreContext, X509};
use std::path::Path;
use std::sync::{Arc, RwLock};

/// How often the running server checks whether its issued certificate is due.
const RENEWAL_CHECK: std::time::Duration = std::time::Duration::from_secs(3600);

/// The roots a phone must trust to reach this server over HTTPS, as the enrollment
/// profile installs them (DER).
#[derive(Debug, Clone, Default)]
pub struct ServerTrust {
    pub roots_der: Vec<Vec<u8>>,
}

/// The host names (and addresses) the issued certificate names: the public URL's
/// host, then loopback, which admins and health checks on the host itself use.
pub fn certified_hosts(public_url: &str) -> Vec<String> {
    let mut hosts = vec![crate::config::public_host(public_url)];
    for extra in ["localhost", "127.0.0.1", "::1"] {
        if !hosts.iter().any(|h| h == extra) {
            hosts.push(extra.to_owned());
        }
    }
    hosts
}

/// What phones must trust, read (and checked) at start.
pub fn server_trust(
    config: &ServeConfig,
    root: &ServerTlsAuthority,
) -> anyhow::Result<ServerTrust> {
    if let Some(path) = &config.tls_ca {
        let certs = read_ca_file(path)?;
        return Ok(ServerTrust {
            roots_der: certs.iter().map(|c| c.to_der()).collect::<Result<_, _>>()?,
        });
    }
    if config.tls.is_none() && !config.plain_http {
        return Ok(ServerTrust {
            roots_der: vec![root.cert().to_der()?],
        });
    }
    Ok(ServerTrust::default())
}

/// The CA certificates of `--tls-ca`: PEM, each one a CA.
fn read_ca_file(path: &Path) -> anyhow::Result<Vec<X509>> {
    let pem = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("--tls-ca {}: cannot read it: {e}", path.display()))?;
    let certs = X509::stack_from_pem(&pem)
        .ok()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| anyhow::anyhow!("--tls-ca {}: no PEM certificate in it", path.display()))?;
    for cert in &certs {
        if !server_tls::is_ca(cert) {
            anyhow::bail!(
                "--tls-ca {}: {} is not a CA certificate (basicConstraints CA:TRUE); give the root (or intermediate) that issued the server certificate",
                path.display(),
                enrollment::identity::name_to_string(cert.subject_name())
            );
        }
    }
    Ok(certs)
}

/// The HTTPS acceptor, with the certificate it serves kept current.
pub struct Https {
    pub acceptor: SslAcceptorBuilder,
    /// Present when the server issues its own certificate: renews it while running.
    pub renewer: Option<LeafRenewer>,
}

fn acceptor_builder() -> anyhow::Result<SslAcceptorBuilder> {
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls())?;
    // Mozilla's intermediate configuration names these groups; OpenSSL's default
    // list would also offer secp521r1 and X448.
    acceptor.set_groups_list("X25519:P-256:P-384")?;
    Ok(acceptor)
}

fn with_identity(chain: &[X509], key: &PKey<Private>) -> anyhow::Result<SslAcceptorBuilder> {
    let mut acceptor = acceptor_builder()?;
    let (leaf, extra) = chain
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("no certificate to serve"))?;
    acceptor.set_certificate(leaf)?;
    for cert in extra {
        acceptor.add_extra_chain_cert(cert.clone())?;
    }
    acceptor.set_private_key(key)?;
    acceptor.check_private_key()?;
    Ok(acceptor)
}

/// Sets up HTTPS: the admin's files (checked now, so that a mistake stops the start
/// rather than every handshake), or a certificate from the built-in root.
pub fn https(config: &ServeConfig, root: Arc<ServerTlsAuthority>) -> anyhow::Result<Https> {
    if let Some((cert_path, key_path)) = &config.tls {
        let chain = operator_chain(config, cert_path, key_path)?;
        return Ok(Https {
            acceptor: with_identity(&chain.0, &chain.1)?,
            renewer: None,
        });
    }
    let hosts = certified_hosts(&config.public_url);
    let issued = root
        .issue_server_certificate(&hosts)
        .map_err(|e| anyhow::anyhow!("issuing the HTTPS certificate: {e}"))?;
    write_public_copies(&config.data_dir, &root, &issued.cert)?;
    let mut acceptor = with_identity(std::slice::from_ref(&issued.cert), &issued.key)?;
    let current = Arc::new(RwLock::new(Current {
        cert: issued.cert.clone(),
        context: with_identity(std::slice::from_ref(&issued.cert), &issued.key)?
            .build()
            .into_context(),
    }));
    // Every handshake takes the newest certificate: OpenSSL calls this for each
    // ClientHello (with or without SNI), and swapping the context is how a running
    // server changes the certificate it presents without a restart.
    let serving = current.clone();
    acceptor.set_servername_callback(move |ssl, _alert| {
        if let Ok(now) = serving.read() {
            // Failing here keeps the certificate the connection started with.
            let _ = ssl.set_ssl_context(&now.context);
        }
        Ok(())
    });
    tracing::info!(hosts = ?hosts, fingerprint = %enrollment::identity::fingerprint(&issued.cert), "serving HTTPS with a certificate from the built-in TLS root");
    Ok(Https {
        acceptor,
        renewer: Some(LeafRenewer {
            root,
            hosts,
            data_dir: config.data_dir.clone(),
            current,
        }),
    })
}

struct Current {
    cert: X509,
    context: SslContext,
}

/// Replaces the issued certificate before it expires.
pub struct LeafRenewer {
    root: Arc<ServerTlsAuthority>,
    hosts: Vec<String>,
    data_dir: std::path::PathBuf,
    current: Arc<RwLock<Current>>,
}

impl LeafRenewer {
    /// Renews the certificate if it is due; returns whether it did.
    pub fn renew_if_due(&self) -> anyhow::Result<bool> {
        let due = {
            let now = self
                .current
                .read()
                .map_err(|_| anyhow::anyhow!("TLS state poisoned"))?;
            server_tls::needs_renewal(&now.cert, &self.hosts)
        };
        if !due {
            return Ok(false);
        }
        let issued = self.root.issue_server_certificate(&self.hosts)?;
        let context = with_identity(std::slice::from_ref(&issued.cert), &issued.key)?
            .build()
            .into_context();
        write_public_copies(&self.data_dir, &self.root, &issued.cert)?;
        let mut now = self
            .current
            .write()
            .map_err(|_| anyhow::anyhow!("TLS state poisoned"))?;
        now.cert = issued.cert;
        now.context = context;
        tracing::info!(fingerprint = %enrollment::identity::fingerprint(&now.cert), "renewed the HTTPS certificate");
        Ok(true)
    }

    /// The certificate new connections get.
    pub fn current(&self) -> X509 {
        self.current
            .read()
            .map(|c| c.cert.clone())
            .expect("TLS state is never poisoned: nothing panics while holding it")
    }

    pub fn spawn(self) {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RENEWAL_CHECK).await;
                if let Err(e) = self.renew_if_due() {
                    tracing::error!(error = %e, "renewing the HTTPS certificate failed; will retry");
                }
            }
        });
    }
}

/// The served certificate and the root, as public PEM files in the data folder, for
/// `mdm pki show` and for admins' tools (`mdm ... --ca-cert <data>/tls/root-ca.pem`).
fn write_public_copies(
    data_dir: &Path,
    root: &ServerTlsAuthority,
    leaf: &X509,
) -> anyhow::Result<()> {
    let dir = data_dir.join("tls");
    // In the private data folder, private like everything there (whatever the
    // umask), although only certificates are written.
    crate::keys::create_private_dir(&dir)?;
    for (name, pem) in [
        ("server.pem", leaf.to_pem()?),
        ("root-ca.pem", root.cert_pem()),
    ] {
        crate::keys::write_private(&dir.join(name), &pem)?;
    }
    // Earlier releases kept a self-signed certificate's sealed key here; it is unused.
    let _ = std::fs::remove_file(dir.join("server.key.sealed"));
    Ok(())
}

/// The admin's certificate chain and key, checked: readable, the key matches, not
/// expired, and (with --tls-ca) issued under that CA for the public host.
fn operator_chain(
    config: &ServeConfig,
    cert_path: &Path,
    key_path: &Path,
) -> anyhow::Result<(Vec<X509>, PKey<Private>)> {
    let pem = std::fs::read(cert_path)
        .map_err(|e| anyhow::anyhow!("--tls-cert {}: cannot read it: {e}", cert_path.display()))?;
    let chain = X509::stack_from_pem(&pem)
        .ok()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--tls-cert {}: no PEM certificate in it",
                cert_path.display()
            )
        })?;
    let key_pem = std::fs::read(key_path)
        .map_err(|e| anyhow::anyhow!("--tls-key {}: cannot read it: {e}", key_path.display()))?;
    let key = PKey::private_key_from_pem(&key_pem).map_err(|_| {
        anyhow::anyhow!(
            "--tls-key {}: not an unencrypted PEM private key",
            key_path.display()
        )
    })?;
    if !chain[0].public_key()?.public_eq(&key) {
        anyhow::bail!(
            "--tls-key {} does not belong to the certificate in --tls-cert {}",
            key_path.display(),
            cert_path.display()
        );
    }
    let left = server_tls::seconds_left(&chain[0]);
    if left <= 0 {
        anyhow::bail!(
            "--tls-cert {} expired on {}",
            cert_path.display(),
            chain[0].not_after()
        );
    }
    if left < 30 * 86_400 {
        tracing::warn!(path = %cert_path.display(), not_after = %chain[0].not_after(), "the TLS certificate expires within 30 days");
    }
    if let Some(ca_path) = &config.tls_ca {
        let cas = read_ca_file(ca_path)?;
        let host = crate::config::public_host(&config.public_url);
        verify_chain(&chain, &cas, &host).map_err(|reason| {
            anyhow::anyhow!(
                "--tls-cert {} does not verify under --tls-ca {} for {host} (the public URL's host): {reason}",
                cert_path.display(),
                ca_path.display()
            )
        })?;
    }
    Ok((chain, key))
}

/// Verifies `chain` (leaf first) under `roots` for `host`, as a phone would.
pub fn verify_chain(chain: &[X509], roots: &[X509], host: &str) -> Result<(), String> {
    let fail = |e: openssl::error::ErrorStack| e.to_string();
    let mut param = X509VerifyParam::new().map_err(fail)?;
    match host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        Ok(ip) => param.set_ip(ip).map_err(fail)?,
        Err(_) => param.set_host(host).map_err(fail)?,
    }
    let mut store = X509StoreBuilder::new().map_err(fail)?;
    for root in roots {
        store.add_cert(root.clone()).map_err(fail)?;
    }
    store.set_param(&param).map_err(fail)?;
    let store = store.build();
    let mut untrusted = Stack::new().map_err(fail)?;
    for cert in &chain[1..] {
        untrusted.push(cert.clone()).map_err(fail)?;
    }
    let mut ctx = X509StoreContext::new().map_err(fail)?;
    ctx.init(&store, &chain[0], &untrusted, |c| {
        if c.verify_cert()? {
            Ok(Ok(()))
        } else {
            Ok(Err(c.error().error_string().to_owned()))
        }
    })
    .map_err(fail)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ssl::{SslConnector, SslVerifyMode};
    use std::io::{Read, Write};

    /// A handshake with a client that trusts `root` only and sends no SNI (as for an
    /// IP address); returns the certificate the server presented.
    fn handshake(acceptor: SslAcceptor, root: &X509) -> X509 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let mut tls = acceptor.accept(tcp).unwrap();
            let mut byte = [0u8; 1];
            tls.read_exact(&mut byte).unwrap();
        });
        let mut connector = SslConnector::builder(SslMethod::tls()).unwrap();
        let mut store = X509StoreBuilder::new().unwrap();
        store.add_cert(root.clone()).unwrap();
        connector.set_cert_store(store.build());
        connector.set_verify(SslVerifyMode::PEER);
        let mut config = connector.build().configure().unwrap();
        config.set_use_server_name_indication(false);
        config
            .param_mut()
            .set_ip("127.0.0.1".parse().unwrap())
            .unwrap();
        let tcp = std::net::TcpStream::connect(addr).unwrap();
        let mut tls = config.connect("127.0.0.1", tcp).unwrap();
        let presented = tls.ssl().peer_certificate().unwrap();
        tls.write_all(b"x").unwrap();
        server.join().unwrap();
        presented
    }

    #[test]
    fn the_running_server_presents_the_renewed_certificate() {
        let dir = std::env::temp_dir().join(format!("mdm-tls-{}", uuid::Uuid::new_v4()));
        let root = Arc::new(ServerTlsAuthority::generate("Test Office").unwrap());
        let config = crate::config::ServeArgs {
            data_dir: Some(dir.clone()),
            public_url: Some("https://mdm.example.org".into()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        let https = https(&config, root.clone()).unwrap();
        let acceptor = https.acceptor.build();
        let mut renewer = https.renewer.expect("a generated certificate renews");
        let first = handshake(acceptor.clone(), root.cert());
        assert_eq!(first.to_der().unwrap(), renewer.current().to_der().unwrap());
        // Not due: nothing changes.
        assert!(!renewer.renew_if_due().unwrap());
        // Due (here: a host it does not name yet): a new certificate, presented by the
        // same acceptor from the next handshake on, without SNI, and written out.
        renewer.hosts.push("mdm2.example.org".into());
        assert!(renewer.renew_if_due().unwrap());
        let second = handshake(acceptor, root.cert());
        assert_ne!(second.to_der().unwrap(), first.to_der().unwrap());
        assert_eq!(
            second.to_der().unwrap(),
            renewer.current().to_der().unwrap()
        );
        assert!(!server_tls::needs_renewal(&second, &renewer.hosts));
        let written = std::fs::read(dir.join("tls/server.pem")).unwrap();
        assert_eq!(
            X509::from_pem(&written).unwrap().to_der().unwrap(),
            second.to_der().unwrap()
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
