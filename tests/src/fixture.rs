//! Starts the real server: the `mdm` binary, on a free loopback port, with a fresh
//! SQLite file or a fresh PostgreSQL database, and a device CA of its own.

use enrollment::identity::testing::TestCa;
use reqwest::StatusCode;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// URL of a PostgreSQL server database to create per-test databases from.
    Postgres(String),
}

impl Backend {
    pub fn postgres_from_env() -> Option<Backend> {
        std::env::var("MDM_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .map(Backend::Postgres)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }
}

/// The `mdm` binary next to the test executable (target/<profile>/mdm), built on
/// demand when a test runs alone.
/// The URL a started `mdm serve` (stdout piped) says it listens on, read from its
/// stdout by a thread; the receiver gets it once.
pub fn listening_url(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("mdm serve's stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        while let Some(Ok(line)) = lines.next() {
            if let Some(url) = line.strip_prefix("mdm listening on ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    rx
}

pub fn mdm_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("MDM_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let bin = profile_dir.join("mdm");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "mdm-server", "--bin", "mdm"]);
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "building the mdm binary failed");
    }
    bin
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    openssl::rand::rand_bytes(&mut b).unwrap();
    hex::encode(b)
}

/// Replaces the database name in a PostgreSQL URL.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..host_end], db);
    if let Some(q) = query {
        out = format!("{out}?{q}");
    }
    out
}

async fn admin_sql(url: &str, sql: &str) {
    use sea_orm::ConnectionTrait;
    let db = sea_orm::Database::connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {url}: {e}"));
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    db.close().await.ok();
}

pub struct ServerOptions {
    pub trust_client_cert_header: bool,
    pub max_body_bytes: Option<usize>,
    pub extra_args: Vec<String>,
    /// Whether to give the server the test device CA.
    pub with_device_ca: bool,
    /// Write the server's stderr (its log) into this file instead of the test's.
    pub stderr_to: Option<PathBuf>,
    /// RUST_LOG for the server instead of MDM_TEST_LOG (or "error").
    pub rust_log: Option<String>,
    /// Serve HTTPS with zero TLS configuration (the server's own TLS root) instead
    /// of --plain-http; the fixture's admin client then trusts that root alone.
    pub https: bool,
    /// With `https` and the admin's own certificate (--tls-cert in `extra_args`): the
    /// PEM root the fixture's client trusts instead of the server's own.
    pub https_root: Option<PathBuf>,
    /// HTTP workers (`--workers`); one unless a benchmark asks for more.
    pub workers: usize,
    /// The test device CA's key is RSA 2048, as the server's own CA's, instead of
    /// P-256 (quicker to make): for benchmarks, whose devices must cost what real
    /// ones do.
    pub rsa_device_ca: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            trust_client_cert_header: false,
            max_body_bytes: None,
            extra_args: Vec::new(),
            with_device_ca: true,
            stderr_to: None,
            rust_log: None,
            https: false,
            https_root: None,
            workers: 1,
            rsa_device_ca: false,
        }
    }
}

pub struct TestServer {
    pub base_url: String,
    pub database_url: String,
    pub data_dir: PathBuf,
    pub admin_token: String,
    pub ca: TestCa,
    pub backend: Backend,
    child: Child,
    admin_url: Option<(String, String)>,
    http: reqwest::Client,
    _tmp: TempDir,
}

/// A folder removed when dropped.
pub struct TempDir(pub PathBuf);
impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let p = std::env::temp_dir().join(format!("{prefix}-{}", random_hex(6)));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, ServerOptions::default()).await
    }

    pub async fn start_with(backend: Backend, options: ServerOptions) -> TestServer {
        let tmp = TempDir::new("mdm-test");
        let data_dir = tmp.0.join("data");
        let (database_url, admin_url) = match &backend {
            Backend::Sqlite => (
                format!("sqlite://{}?mode=rwc", tmp.0.join("mdm.sqlite").display()),
                None,
            ),
            Backend::Postgres(url) => {
                let db = format!("mdm_test_{}", random_hex(6));
                admin_sql(url, &format!("CREATE DATABASE \"{db}\"")).await;
                (with_database(url, &db), Some((url.clone(), db)))
            }
        };
        let ca = if options.rsa_device_ca {
            TestCa::new_rsa("Test Device CA")
        } else {
            TestCa::new("Test Device CA")
        };
        let ca_path = tmp.0.join("device-ca.pem");
        std::fs::write(&ca_path, ca.cert.to_pem().unwrap()).unwrap();
        let admin_token = format!("mdm_test_{}", random_hex(16));

        let mut cmd = Command::new(mdm_binary());
        cmd.arg("serve");
        if !options.https {
            cmd.arg("--plain-http");
        }
        cmd.args(["--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--database-url", &database_url])
            .args(["--public-url", "https://mdm.test.invalid"])
            .args(["--workers", &options.workers.to_string()])
            .args(["--maintenance-interval-secs", "1"]);
        if options.with_device_ca {
            cmd.arg("--device-ca").arg(&ca_path);
        }
        if options.trust_client_cert_header {
            cmd.arg("--trust-client-cert-header");
        }
        if let Some(max) = options.max_body_bytes {
            cmd.args(["--max-body-bytes", &max.to_string()]);
        }
        cmd.args(&options.extra_args);
        for var in [
            "MDM_DATABASE_URL",
            "MDM_CONFIG",
            "MDM_MASTER_KEY",
            "MDM_DATA_DIR",
        ] {
            cmd.env_remove(var);
        }
        let stderr = match &options.stderr_to {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("server log file")),
            None => Stdio::inherit(),
        };
        cmd.env("MDM_ADMIN_TOKEN", &admin_token)
            .env(
                "RUST_LOG",
                options.rust_log.clone().unwrap_or_else(|| {
                    std::env::var("MDM_TEST_LOG").unwrap_or_else(|_| "error".into())
                }),
            )
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = cmd.spawn().expect("start mdm serve");
        let rx = listening_url(&mut child);
        let base_url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("mdm serve did not start within 60 s (see its stderr above)");
            }
        };
        let http = if options.https {
            // The server wrote the root it issued its certificate from before it
            // listened: the admin client trusts that root and nothing else.
            let root_path = options
                .https_root
                .clone()
                .unwrap_or_else(|| data_dir.join("tls/root-ca.pem"));
            let root = std::fs::read(&root_path).expect("the HTTPS root");
            reqwest::Client::builder()
                .tls_built_in_root_certs(false)
                .add_root_certificate(reqwest::Certificate::from_pem(&root).unwrap())
                .build()
                .unwrap()
        } else {
            reqwest::Client::new()
        };
        TestServer {
            base_url,
            database_url,
            data_dir,
            admin_token,
            ca,
            backend,
            child,
            admin_url,
            http,
            _tmp: tmp,
        }
    }

    /// The server's process id (the hostile-input test reads its memory and state).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Admin API call with the server's admin token. Returns status and JSON body.
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.api_as(Some(&self.admin_token), method, path, body)
            .await
    }

    pub async fn api_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, self.url(&format!("/api/v1{path}")));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("API request");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.api("GET", path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// Queues a command through the API and returns its UUID.
    pub async fn queue(&self, device_id: &str, command: Value) -> String {
        let (status, body) = self
            .api(
                "POST",
                &format!("/devices/{device_id}/commands"),
                Some(command),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "queue: {body}");
        body["command_uuid"].as_str().unwrap().to_owned()
    }

    pub async fn command(&self, uuid: &str) -> Value {
        self.get(&format!("/commands/{uuid}")).await
    }

    pub async fn events(&self, kind: &str) -> Vec<Value> {
        self.get(&format!("/events?kind={kind}&limit=1000")).await["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// A direct connection to the server's database (seeding, at-rest checks).
    pub async fn store(&self) -> mdm_server::storage::SqlStore {
        mdm_server::storage::SqlStore::connect(&self.database_url)
            .await
            .expect("connect to the test database")
    }

    /// The `mdm` CLI, pointed at this server with its admin token.
    pub fn clone_cli(&self) -> Cli {
        Cli {
            server: self.base_url.clone(),
            token: self.admin_token.clone(),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some((admin, db)) = self.admin_url.take() {
            // Drop runs inside the test's runtime; a thread with its own runtime
            // can block on the cleanup.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(admin_sql(
                    &admin,
                    &format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"),
                ));
            })
            .join();
        }
    }
}

/// Another `mdm serve` on a [`TestServer`]'s database: its own data folder and port,
/// the same master key and bootstrap token, as instances of one deployment behind a
/// load balancer are. Killed when dropped.
pub struct Instance {
    pub base_url: String,
    child: Child,
    http: reqwest::Client,
    _tmp: TempDir,
}

impl TestServer {
    /// Starts a second instance on this server's database (PostgreSQL: SQLite is one
    /// server's file) with further `mdm serve` arguments.
    pub async fn second_instance(&self, extra_args: &[&str]) -> Instance {
        let tmp = TempDir::new("mdm-instance");
        let mut cmd = Command::new(mdm_binary());
        cmd.args(["serve", "--plain-http", "--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(tmp.0.join("data"))
            .args(["--database-url", &self.database_url])
            .args(["--public-url", "https://mdm.test.invalid"])
            .args(["--workers", "1"])
            .arg("--master-key-file")
            .arg(self.data_dir.join("master.key"))
            .args(extra_args);
        for var in [
            "MDM_DATABASE_URL",
            "MDM_CONFIG",
            "MDM_MASTER_KEY",
            "MDM_DATA_DIR",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("MDM_ADMIN_TOKEN", &self.admin_token)
            .env(
                "RUST_LOG",
                std::env::var("MDM_TEST_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("start a second mdm serve");
        let rx = listening_url(&mut child);
        let base_url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("the second mdm serve did not start within 60 s (see its stderr above)");
            }
        };
        Instance {
            base_url,
            child,
            http: reqwest::Client::new(),
            _tmp: tmp,
        }
    }
}

impl Instance {
    /// Admin API call with `token`. Returns status and JSON body.
    pub async fn api_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base_url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("API request");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the `mdm` binary as an admin would, with MDM_SERVER and MDM_TOKEN set.
pub struct Cli {
    server: String,
    token: String,
}

impl Cli {
    pub async fn run(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = tokio::process::Command::new(mdm_binary());
        cmd.args(args)
            .env("MDM_SERVER", &self.server)
            .env("MDM_TOKEN", &self.token)
            .env("MDM_CLI_CONFIG", "/nonexistent/cli.toml");
        cmd.output().await.expect("run mdm")
    }
}

/// The push topic test servers get with [`TestServer::upload_push_certificate`].
pub const TEST_PUSH_TOPIC: &str = "com.apple.mgmt.External.5c1a3a5e-8d4a-4b7f-9a53-0f1f4d2b6e77";

impl TestServer {
    /// Creates an enrollment (asserting 201) and returns it as the API shows it.
    pub async fn create_enrollment(&self, body: Value) -> Value {
        let (code, e) = self.api("POST", "/enrollments", Some(body)).await;
        assert_eq!(code, StatusCode::CREATED, "{e}");
        e
    }

    /// An enrollment's URL on this test server: the profile names the public URL
    /// (`--public-url https://mdm.test.invalid`), tests reach it on loopback.
    pub fn local_url(&self, enrollment: &Value) -> String {
        enrollment["url"]
            .as_str()
            .expect("the enrollment has a URL")
            .replace("https://mdm.test.invalid", &self.base_url)
    }

    /// The device CA as SCEP's GetCACert hands it out.
    pub async fn scep_ca(&self) -> openssl::x509::X509 {
        let der = reqwest::get(self.url("/scep?operation=GetCACert"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        openssl::x509::X509::from_der(&der).expect("GetCACert answers a DER certificate")
    }

    /// Uploads a push certificate (from a throw-away "Apple" CA) so that the server
    /// can put a topic into enrollment profiles. Nothing is pushed unless an APNs URL
    /// is configured and reachable.
    pub async fn upload_push_certificate(&self) {
        self.upload_push_certificate_from(&TestCa::new("Fake Apple Push CA"))
            .await;
    }

    /// [`Self::upload_push_certificate`], issued by `apple` (the CA a fake APNs
    /// checks client certificates against).
    pub async fn upload_push_certificate_from(&self, apple: &TestCa) {
        let (key, cert) = crate::fake_apns::make_push_certificate(apple, TEST_PUSH_TOPIC, 365);
        let (code, body) = self
            .api(
                "PUT",
                "/push-certificate",
                Some(serde_json::json!({
                    "certificate_pem": String::from_utf8(cert.to_pem().unwrap()).unwrap(),
                    "private_key_pem": String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap(),
                })),
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }
}
