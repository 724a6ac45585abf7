//! The real `mdm` binary as a process a fault test can kill with SIGKILL and start
//! again on the same database and data folder, on any database URL (a private
//! PostgreSQL, an SQLite file on a small tmpfs). Its log goes to a file the test
//! reads. [`crate::fixture::TestServer`] is the fixture for everything else.

use crate::fixture::{listening_url, mdm_binary, TempDir};
use enrollment::identity::testing::TestCa;
use reqwest::StatusCode;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct RestartableServer {
    pub base_url: String,
    pub database_url: String,
    pub data_dir: PathBuf,
    pub admin_token: String,
    pub ca: TestCa,
    ca_path: PathBuf,
    log_path: PathBuf,
    device_ca: bool,
    /// Further `mdm serve` arguments, given at every start.
    pub extra_args: Vec<String>,
    /// Further environment variables of the server process.
    pub extra_env: Vec<(String, String)>,
    child: Option<Child>,
    http: reqwest::Client,
    _tmp: TempDir,
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    openssl::rand::rand_bytes(&mut b).unwrap();
    hex::encode(b)
}

impl RestartableServer {
    /// Starts `mdm serve` on `database_url`, with its data folder in `data_dir` (a
    /// fresh temporary one when None). With `device_ca` the server trusts the test
    /// CA's devices ([`crate::simulator::SimDevice`]); without, it uses its built-in
    /// CA, which SCEP needs.
    pub async fn start(
        database_url: &str,
        data_dir: Option<PathBuf>,
        device_ca: bool,
    ) -> RestartableServer {
        Self::start_with_args(database_url, data_dir, device_ca, Vec::new(), Vec::new()).await
    }

    /// As [`Self::start`], with further `mdm serve` arguments and environment (kept
    /// for restarts).
    pub async fn start_with_args(
        database_url: &str,
        data_dir: Option<PathBuf>,
        device_ca: bool,
        extra_args: Vec<String>,
        extra_env: Vec<(String, String)>,
    ) -> RestartableServer {
        let tmp = TempDir::new("mdm-restartable");
        let ca = TestCa::new("Test Device CA");
        let ca_path = tmp.0.join("device-ca.pem");
        std::fs::write(&ca_path, ca.cert.to_pem().unwrap()).unwrap();
        let mut server = RestartableServer {
            base_url: String::new(),
            database_url: database_url.to_owned(),
            data_dir: data_dir.unwrap_or_else(|| tmp.0.join("data")),
            admin_token: format!("mdm_test_{}", random_hex(16)),
            ca,
            ca_path,
            log_path: tmp.0.join("server.log"),
            device_ca,
            extra_args,
            extra_env,
            child: None,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
            _tmp: tmp,
        };
        server.restart().await;
        server
    }

    /// Starts the process (again, after [`Self::kill`]) and waits for its listening
    /// line; the port may change.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "the server is still running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap();
        let mut cmd = Command::new(mdm_binary());
        cmd.arg("serve")
            .arg("--plain-http")
            .args(["--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--database-url", &self.database_url])
            .args(["--public-url", "https://mdm.test.invalid"])
            .args(["--workers", "1"])
            // Nothing writes behind the test's back (expiry, pruning).
            .args(["--maintenance-interval-secs", "3600"]);
        if self.device_ca {
            cmd.arg("--device-ca").arg(&self.ca_path);
        }
        cmd.args(&self.extra_args);
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        for var in [
            "MDM_DATABASE_URL",
            "MDM_CONFIG",
            "MDM_MASTER_KEY",
            "MDM_DATA_DIR",
        ] {
            cmd.env_remove(var);
        }
        // Fault tests drive many requests from one address on purpose: the abuse
        // limits (tested on their own) stay out of the way. Environment, not flags,
        // so that a server without these settings ignores them.
        for var in [
            "MDM_DEVICE_RATE_PER_IDENTITY",
            "MDM_DEVICE_RATE_PER_ADDRESS",
            "MDM_ENROLL_RATE_PER_ADDRESS",
            "MDM_ENROLL_MAX_FAILURES",
        ] {
            cmd.env(var, "0");
        }
        cmd.env("MDM_ADMIN_TOKEN", &self.admin_token)
            .env(
                "RUST_LOG",
                std::env::var("MDM_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = cmd.spawn().expect("start mdm serve");
        let rx = listening_url(&mut child);
        let url = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
            .await
            .unwrap();
        match url {
            Ok(url) => self.base_url = url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "mdm serve did not start within 60 s; its log:\n{}",
                    self.log()
                );
            }
        }
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown handler, no flush, no rollback by the process itself.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL the server");
            child.wait().expect("reap the server");
        }
    }

    /// Whether the process is still running (it would have exited on a panic that
    /// aborts, or a crash).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => child.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// What the server wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Admin API call: status, Retry-After header and JSON body.
    pub async fn api_full(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Option<String>, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, self.url(&format!("/api/v1{path}")))
            .bearer_auth(&self.admin_token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("API request");
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get("Retry-After")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = resp.text().await.unwrap();
        (
            status,
            retry_after,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (status, _, body) = self.api_full(method, path, body).await;
        (status, body)
    }

    /// A direct connection to the server's database.
    pub async fn store(&self) -> mdm_server::storage::SqlStore {
        mdm_server::storage::SqlStore::connect(&self.database_url)
            .await
            .expect("connect to the test database")
    }
}

impl Drop for RestartableServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A database of a test's own, outliving server restarts: an SQLite file in a
/// temporary folder, or a fresh database on the PostgreSQL server, dropped at the end.
pub struct ScratchDatabase {
    pub url: String,
    postgres_server: Option<String>,
    _dir: TempDir,
}

impl ScratchDatabase {
    pub async fn new(backend: &crate::fixture::Backend) -> ScratchDatabase {
        let dir = TempDir::new("mdm-scratch-db");
        match backend {
            crate::fixture::Backend::Sqlite => ScratchDatabase {
                url: format!("sqlite://{}?mode=rwc", dir.0.join("mdm.sqlite").display()),
                postgres_server: None,
                _dir: dir,
            },
            crate::fixture::Backend::Postgres(server) => ScratchDatabase {
                url: create_postgres_database(server).await,
                postgres_server: Some(server.clone()),
                _dir: dir,
            },
        }
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        if let Some(server) = self.postgres_server.take() {
            let url = self.url.clone();
            // Drop runs inside the test's runtime: a thread with its own runtime can block.
            let _ = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(drop_postgres_database(&server, &url))
            })
            .join();
        }
    }
}

/// A fresh database on the PostgreSQL server at `server_url` (its URL), for a test
/// that runs its own server process.
pub async fn create_postgres_database(server_url: &str) -> String {
    use sea_orm::ConnectionTrait;
    let name = format!("mdm_test_{}", random_hex(6));
    let db = sea_orm::Database::connect(server_url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {server_url}: {e}"));
    db.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    db.close().await.ok();
    let (base, _) = server_url.rsplit_once('/').expect("a database URL");
    format!("{base}/{name}")
}

/// Drops a database made by [`create_postgres_database`].
pub async fn drop_postgres_database(server_url: &str, database_url: &str) {
    use sea_orm::ConnectionTrait;
    let Some((_, name)) = database_url.rsplit_once('/') else {
        return;
    };
    if let Ok(db) = sea_orm::Database::connect(server_url).await {
        let _ = db
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await;
        db.close().await.ok();
    }
}
