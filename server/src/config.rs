//! `mdm serve` configuration: flags, environment variables and an optional TOML file,
//! in that order of precedence, resolved into one [`ServeConfig`].

use clap::Args;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Options of `mdm serve`. Every flag also reads an environment variable, and every
/// one can be set in the TOML file given by --config (same names, with underscores).
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML file with any of the options below (keys use underscores: data_dir = "...").
    #[arg(long, env = "MDM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Folder for the SQLite database, the master key and generated certificates.
    /// [default: ./mdm-data]
    #[arg(long, env = "MDM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: postgres://user@host/db for PostgreSQL, sqlite://path for SQLite.
    /// [default: SQLite in the data folder]
    #[arg(long, env = "MDM_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Address and port to listen on. [default: 0.0.0.0:8443]
    #[arg(long, env = "MDM_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Serve plain HTTP instead of HTTPS: behind a TLS-terminating proxy, or in tests.
    #[arg(long, env = "MDM_PLAIN_HTTP")]
    pub plain_http: bool,
    /// PEM certificate (chain) for HTTPS. Without it the server issues its own from
    /// its built-in TLS root, which enrollment profiles install on the phones.
    #[arg(long, env = "MDM_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "MDM_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM file with the private CA that issued --tls-cert (or the certificate of a
    /// TLS-terminating proxy, with --plain-http), for phones that do not know it:
    /// enrollment profiles then install it as a trusted root. Leave it out for a
    /// certificate from a public CA.
    #[arg(long, env = "MDM_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Base URL devices reach this server at; written into what devices receive.
    /// Must be https:// (Apple devices refuse http MDM and SCEP URLs), also with
    /// --plain-http behind a proxy. [default: https://<hostname>:<port>]
    #[arg(long, env = "MDM_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// PEM file with further CA certificate(s) device identity certificates may chain
    /// to, besides the built-in device CA (devices enrolled under another CA).
    #[arg(long, env = "MDM_DEVICE_CA")]
    pub device_ca: Option<PathBuf>,
    /// Name of the organisation, shown in enrollment profiles and generated
    /// certificates. [default: MDM]
    #[arg(long, env = "MDM_ORGANIZATION")]
    pub organization: Option<String>,
    /// Base URL of Google's Android Management API (tests point it at a fake).
    /// [default: https://androidmanagement.googleapis.com]
    #[arg(long, env = "MDM_ANDROID_API_URL")]
    pub android_api_url: Option<String>,
    /// Base URL of Google Cloud Pub/Sub, where Android notifications are pulled from.
    /// [default: https://pubsub.googleapis.com]
    #[arg(long, env = "MDM_PUBSUB_API_URL")]
    pub pubsub_api_url: Option<String>,
    /// Attempts per Google request when Google answers 429/5xx or cannot be reached.
    /// [default: 5]
    #[arg(long, env = "MDM_ANDROID_MAX_ATTEMPTS")]
    pub android_max_attempts: Option<u32>,
    /// First backoff before retrying a Google request, doubled per attempt (at least
    /// what Retry-After says). [default: 500]
    #[arg(long, env = "MDM_ANDROID_RETRY_BASE_MS")]
    pub android_retry_base_ms: Option<u64>,
    /// Pause between Pub/Sub pulls of Android notifications when none are waiting.
    /// [default: 1000]
    #[arg(long, env = "MDM_ANDROID_PULL_INTERVAL_MS")]
    pub android_pull_interval_ms: Option<u64>,
    /// Full sync of the Android devices (devices.list) every this many seconds, to
    /// repair missed notifications. [default: 900]
    #[arg(long, env = "MDM_ANDROID_SYNC_INTERVAL_SECS")]
    pub android_sync_interval_secs: Option<u64>,
    /// Accept the device certificate from an RFC 9440 Client-Cert header set by a
    /// TLS-terminating proxy (only behind a proxy that strips it from clients).
    #[arg(long, env = "MDM_TRUST_CLIENT_CERT_HEADER")]
    pub trust_client_cert_header: bool,
    /// What happens when a device that is still enrolled (no check-out, no wipe)
    /// authenticates with a new certificate: `hold` it until an admin approves the
    /// re-enrollment, or `refuse` it outright. [default: hold]
    #[arg(long, env = "MDM_REENROLLMENT")]
    pub reenrollment: Option<String>,
    /// TOML file of incident rules, response plans and playbooks (`[[rule]]`,
    /// `[[plan]]`, `[[playbook]]` tables) replacing the built-in ones
    /// (docs/incidents.md).
    #[arg(long, env = "MDM_INCIDENT_RULES")]
    pub incident_rules: Option<PathBuf>,
    /// Days before its expiry that a device certificate may be renewed over SCEP.
    /// [default: 60]
    #[arg(long, env = "MDM_RENEWAL_WINDOW_DAYS")]
    pub renewal_window_days: Option<i64>,
    /// File holding the 32-byte master key (base64) that encrypts secrets at rest.
    /// Created with mode 0600 on first start. [default: <data-dir>/master.key]
    #[arg(long, env = "MDM_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Largest request body a device may send to the MDM, SCEP and enrollment
    /// endpoints, in bytes. Real reports are kilobytes; a large macOS
    /// InstalledApplicationList a few hundred. [default: 1048576]
    #[arg(long, env = "MDM_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Largest request body of the admin API, in bytes (profiles travel inside it).
    /// [default: 8388608]
    #[arg(long, env = "MDM_MAX_API_BODY_BYTES")]
    pub max_api_body_bytes: Option<usize>,
    /// Days a command stays queued before it expires, unless the admin sets its
    /// expiry. [default: 30]
    #[arg(long, env = "MDM_COMMAND_TTL_DAYS")]
    pub command_ttl_days: Option<i64>,
    /// Days results of finished commands are kept. [default: 90]
    #[arg(long, env = "MDM_RESULT_RETENTION_DAYS")]
    pub result_retention_days: Option<i64>,
    /// Seconds between queue maintenance runs (expiry, pruning). [default: 60]
    #[arg(long, env = "MDM_MAINTENANCE_INTERVAL_SECS")]
    pub maintenance_interval_secs: Option<u64>,
    /// Worker threads for HTTP. [default: number of CPUs]
    #[arg(long, env = "MDM_WORKERS")]
    pub workers: Option<usize>,
    /// APNs endpoint: "production", "sandbox", or a URL. [default: production]
    #[arg(long, env = "MDM_APNS_URL")]
    pub apns_url: Option<String>,
    /// PEM CA to trust for the APNs endpoint's certificate, besides the system's.
    #[arg(long, env = "MDM_APNS_CA_CERT")]
    pub apns_ca_cert: Option<PathBuf>,
    /// TLS connections to APNs. [default: 2]
    #[arg(long, env = "MDM_APNS_CONNECTIONS")]
    pub apns_connections: Option<usize>,
    /// Pushes in flight at once. [default: 500]
    #[arg(long, env = "MDM_APNS_CONCURRENCY")]
    pub apns_concurrency: Option<usize>,
    /// Attempts per push on 429, 5xx and connection errors. [default: 5]
    #[arg(long, env = "MDM_APNS_MAX_ATTEMPTS")]
    pub apns_max_attempts: Option<u32>,
    /// First retry delay in milliseconds; doubles per attempt, with jitter. [default: 1000]
    #[arg(long, env = "MDM_APNS_RETRY_BASE_MS")]
    pub apns_retry_base_ms: Option<u64>,
    /// Commands queued within this many milliseconds share one push. [default: 250]
    #[arg(long, env = "MDM_PUSH_COALESCE_MS")]
    pub push_coalesce_ms: Option<u64>,
    /// Push again devices whose commands have waited this many seconds without the
    /// device connecting; 0 turns it off. [default: 900]
    #[arg(long, env = "MDM_REPUSH_INTERVAL_SECS")]
    pub repush_interval_secs: Option<u64>,
    /// Requests per minute one device identity may send to /mdm/checkin and
    /// /mdm/connect; past it 429. 0 turns it off. [default: 300]
    #[arg(long, env = "MDM_DEVICE_RATE_PER_IDENTITY")]
    pub device_rate_per_identity: Option<u32>,
    /// Requests per minute one address may send to /mdm/checkin and /mdm/connect
    /// (many devices may share a NAT address). 0 turns it off. [default: 30000]
    #[arg(long, env = "MDM_DEVICE_RATE_PER_ADDRESS")]
    pub device_rate_per_address: Option<u32>,
    /// Requests per minute one address may send to /enroll/... and /scep.
    /// 0 turns it off. [default: 300]
    #[arg(long, env = "MDM_ENROLL_RATE_PER_ADDRESS")]
    pub enroll_rate_per_address: Option<u32>,
    /// Wrong enrollment links or SCEP challenges one address may try per
    /// --enroll-failure-window-secs before its enrollment requests get 429.
    /// 0 turns it off. [default: 20]
    #[arg(long, env = "MDM_ENROLL_MAX_FAILURES")]
    pub enroll_max_failures: Option<u32>,
    /// The window of --enroll-max-failures, in seconds. [default: 600]
    #[arg(long, env = "MDM_ENROLL_FAILURE_WINDOW_SECS")]
    pub enroll_failure_window_secs: Option<u64>,
    /// Failed admin API authentications (wrong, revoked or missing bearer token) one
    /// address may make per 10 minutes before its admin API calls get 429.
    /// 0 turns it off. [default: 10]
    #[arg(long, env = "MDM_ADMIN_MAX_FAILURES")]
    pub admin_max_failures: Option<u32>,
    /// Count clients by the last address in X-Forwarded-For (only behind a proxy that
    /// appends the client's address to it), not by the TCP peer.
    #[arg(long, env = "MDM_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,
    /// Seconds a client has to send a complete request head. [default: 10]
    #[arg(long, env = "MDM_HEADER_TIMEOUT_SECS")]
    pub header_timeout_secs: Option<u64>,
    /// Seconds a client has to send a complete request body. [default: 30]
    #[arg(long, env = "MDM_BODY_TIMEOUT_SECS")]
    pub body_timeout_secs: Option<u64>,
    /// Seconds an idle kept-alive connection stays open; 0 turns keep-alive off.
    /// [default: 30]
    #[arg(long, env = "MDM_KEEP_ALIVE_SECS")]
    pub keep_alive_secs: Option<u64>,
    /// Seconds a closing connection gets to shut down. [default: 5]
    #[arg(long, env = "MDM_DISCONNECT_TIMEOUT_SECS")]
    pub disconnect_timeout_secs: Option<u64>,
    /// Open connections per HTTP worker; more wait to be accepted. [default: 10000]
    #[arg(long, env = "MDM_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Shortest admin password, in characters. The office's password policy asks at
    /// least 14 for administrative accounts: less is refused. [default: 14]
    #[arg(long, env = "MDM_PASSWORD_MIN_LENGTH")]
    pub password_min_length: Option<usize>,
    /// Days an admin password may be used; then it must change at the next login.
    /// The policy allows at most 20. [default: 20]
    #[arg(long, env = "MDM_PASSWORD_MAX_AGE_DAYS")]
    pub password_max_age_days: Option<i64>,
    /// How many of an admin's last passwords (the current one included) it may not
    /// choose again, 1 to 50. [default: 5]
    #[arg(long, env = "MDM_PASSWORD_HISTORY")]
    pub password_history: Option<u64>,
    /// An admin session ends after this long without a request: a duration such as
    /// 90s, 10m, 1h30m. At most 15m. [default: 15m]
    #[arg(long, env = "MDM_SESSION_IDLE_TIMEOUT")]
    pub session_idle_timeout: Option<String>,
    /// An admin session ends this long after its login however active it is (a
    /// duration, at least the idle timeout, at most 24h). [default: 12h]
    #[arg(long, env = "MDM_SESSION_LIFETIME")]
    pub session_lifetime: Option<String>,
    /// Failed logins in a row (wrong password or second factor) that lock an admin
    /// account, 1 to 100. [default: 5]
    #[arg(long, env = "MDM_LOGIN_LOCKOUT_THRESHOLD")]
    pub login_lockout_threshold: Option<i32>,
    /// How long the first lock lasts (a duration); each further failure doubles it.
    /// [default: 1m]
    #[arg(long, env = "MDM_LOGIN_LOCKOUT")]
    pub login_lockout: Option<String>,
    /// The longest lock (a duration, at most 24h). [default: 1h]
    #[arg(long, env = "MDM_LOGIN_LOCKOUT_MAX")]
    pub login_lockout_max: Option<String>,
    /// Days an API token lives when its creator does not say. [default: 90]
    #[arg(long, env = "MDM_TOKEN_DEFAULT_DAYS")]
    pub token_default_days: Option<i64>,
    /// The longest API token lifetime in days, at most 366 (access is reviewed
    /// yearly). [default: 366]
    #[arg(long, env = "MDM_TOKEN_MAX_DAYS")]
    pub token_max_days: Option<i64>,
    /// The audit chain's head is published as an `audit.anchor` event (forwarded to
    /// the SIEM) after this many new records... [default: 500]
    #[arg(long, env = "MDM_AUDIT_ANCHOR_RECORDS")]
    pub audit_anchor_records: Option<i64>,
    /// ...or this long after the last anchor when records were appended since (a
    /// duration, at most 24h). [default: 15m]
    #[arg(long, env = "MDM_AUDIT_ANCHOR_INTERVAL")]
    pub audit_anchor_interval: Option<String>,
}

/// The TOML file's shape: the same options, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    listen: Option<SocketAddr>,
    plain_http: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_ca: Option<PathBuf>,
    public_url: Option<String>,
    device_ca: Option<PathBuf>,
    organization: Option<String>,
    android_api_url: Option<String>,
    pubsub_api_url: Option<String>,
    android_max_attempts: Option<u32>,
    android_retry_base_ms: Option<u64>,
    android_pull_interval_ms: Option<u64>,
    android_sync_interval_secs: Option<u64>,
    trust_client_cert_header: Option<bool>,
    reenrollment: Option<String>,
    incident_rules: Option<PathBuf>,
    renewal_window_days: Option<i64>,
    master_key_file: Option<PathBuf>,
    max_body_bytes: Option<usize>,
    max_api_body_bytes: Option<usize>,
    command_ttl_days: Option<i64>,
    result_retention_days: Option<i64>,
    maintenance_interval_secs: Option<u64>,
    workers: Option<usize>,
    apns_url: Option<String>,
    apns_ca_cert: Option<PathBuf>,
    apns_connections: Option<usize>,
    apns_concurrency: Option<usize>,
    apns_max_attempts: Option<u32>,
    apns_retry_base_ms: Option<u64>,
    push_coalesce_ms: Option<u64>,
    repush_interval_secs: Option<u64>,
    device_rate_per_identity: Option<u32>,
    device_rate_per_address: Option<u32>,
    enroll_rate_per_address: Option<u32>,
    enroll_max_failures: Option<u32>,
    enroll_failure_window_secs: Option<u64>,
    admin_max_failures: Option<u32>,
    trust_forwarded_for: Option<bool>,
    header_timeout_secs: Option<u64>,
    body_timeout_secs: Option<u64>,
    keep_alive_secs: Option<u64>,
    disconnect_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    password_min_length: Option<usize>,
    password_max_age_days: Option<i64>,
    password_history: Option<u64>,
    session_idle_timeout: Option<String>,
    session_lifetime: Option<String>,
    login_lockout_threshold: Option<i32>,
    login_lockout: Option<String>,
    login_lockout_max: Option<String>,
    token_default_days: Option<i64>,
    token_max_days: Option<i64>,
    audit_anchor_records: Option<i64>,
    audit_anchor_interval: Option<String>,
}

/// Resolved configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub listen: SocketAddr,
    pub plain_http: bool,
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The private CA phones must be given for the admin's certificate (--tls-ca).
    pub tls_ca: Option<PathBuf>,
    pub public_url: String,
    pub device_ca: Option<PathBuf>,
    pub organization: String,
    /// Where Google's Android APIs are and how to retry them.
    pub android: crate::services::android::AndroidSettings,
    pub android_pull_interval: std::time::Duration,
    pub android_sync_interval: std::time::Duration,
    pub trust_client_cert_header: bool,
    pub reenrollment: crate::services::reenrollment::ReenrollmentPolicy,
    /// Incident rules, response plans and playbooks in force (built in, or
    /// --incident-rules), checked at start.
    pub incidents: crate::services::incident_rules::IncidentConfig,
    pub renewal_window: chrono::Duration,
    pub master_key_file: PathBuf,
    pub max_body_bytes: usize,
    pub max_api_body_bytes: usize,
    pub command_ttl: chrono::Duration,
    pub result_retention: chrono::Duration,
    pub maintenance_interval: std::time::Duration,
    pub workers: usize,
    pub apns: crate::push::apns::ApnsSettings,
    pub apns_ca_cert: Option<PathBuf>,
    pub push_coalesce: std::time::Duration,
    pub repush_interval: std::time::Duration,
    /// Rate limits, guessing lockout, connection timeouts.
    pub abuse: crate::http::limits::AbuseSettings,
    /// Admin passwords, sessions, lockout and token lifetimes (checked against the
    /// office's policy at start).
    pub admin: crate::services::admins::AdminSettings,
    /// When the audit chain's head is published.
    pub audit_anchors: crate::services::admins::audit::AnchorSettings,
}

/// Environment variables of the custom Android agent, which is no longer supported.
const REMOVED_ANDROID_AGENT_ENV: &[&str] = &[
    "MDM_ANDROID_AGENT_COMPONENT",
    "MDM_ANDROID_AGENT_DOWNLOAD_URL",
    "MDM_ANDROID_AGENT_CHECKSUM",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("config file {0}: {1}")]
    Parse(PathBuf, toml::de::Error),
    #[error("{0}")]
    Invalid(String),
}

pub fn sqlite_url(data_dir: &Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("mdm.sqlite").display()
    )
}

impl ServeArgs {
    pub fn resolve(&self) -> Result<ServeConfig, ConfigError> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::Read(path.clone(), e))?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| ConfigError::Parse(path.clone(), e))?
            }
            None => FileConfig::default(),
        };
        let abuse = self.abuse_settings(&file)?;
        let (admin, audit_anchors) = self.admin_settings(&file)?;
        let data_dir = self
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("mdm-data"));
        let database_url = self
            .database_url
            .clone()
            .or(file.database_url)
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| sqlite_url(&data_dir));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid(format!(
                "database URL must start with sqlite:, postgres:// or postgresql://, got {:?}",
                database_url.split(':').next().unwrap_or_default()
            )));
        }
        let listen = self
            .listen
            .or(file.listen)
            .unwrap_or_else(|| "0.0.0.0:8443".parse().expect("valid default address"));
        let plain_http = self.plain_http || file.plain_http.unwrap_or(false);
        let tls = match (
            self.tls_cert.clone().or(file.tls_cert),
            self.tls_key.clone().or(file.tls_key),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid(
                    "tls_cert and tls_key go together".into(),
                ))
            }
        };
        let tls_ca = self.tls_ca.clone().or(file.tls_ca);
        if tls_ca.is_some() && tls.is_none() && !plain_http {
            return Err(ConfigError::Invalid(
                "--tls-ca (MDM_TLS_CA, tls_ca) names the CA of --tls-cert or of a TLS-terminating proxy (--plain-http); without either the server's own TLS root is used".into(),
            ));
        }
        // https even behind a proxy: the URL is what devices are given, and Apple
        // devices refuse http MDM and SCEP URLs.
        let public_url = self
            .public_url
            .clone()
            .or(file.public_url)
            .unwrap_or_else(|| {
                let host = hostname().unwrap_or_else(|| "localhost".into());
                match listen.port() {
                    // Port 0 picks a free port at bind time: the URL cannot name it.
                    0 => format!("https://{host}"),
                    port => format!("https://{host}:{port}"),
                }
            });
        let public_url = public_url.trim_end_matches('/').to_owned();
        check_public_url(&public_url)?;
        let days =
            |v: Option<i64>, name: &str, default: i64| -> Result<chrono::Duration, ConfigError> {
                let d = v.unwrap_or(default);
                if d <= 0 {
                    return Err(ConfigError::Invalid(format!(
                        "{name} must be at least 1 day"
                    )));
                }
                Ok(chrono::Duration::days(d))
            };
        let reenrollment = match self.reenrollment.clone().or(file.reenrollment).as_deref() {
            None => crate::services::reenrollment::ReenrollmentPolicy::Hold,
            Some(text) => crate::services::reenrollment::ReenrollmentPolicy::parse(text)
                .ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "reenrollment must be hold or refuse, not {text:?}"
                    ))
                })?,
        };
        let incidents = match self.incident_rules.clone().or(file.incident_rules) {
            Some(path) => {
                crate::services::incident_rules::load_config(&path).map_err(ConfigError::Invalid)?
            }
            None => crate::services::incident_rules::IncidentConfig::default(),
        };
        let max_body_bytes = self
            .max_body_bytes
            .or(file.max_body_bytes)
            .unwrap_or(1024 * 1024);
        let max_api_body_bytes = self
            .max_api_body_bytes
            .or(file.max_api_body_bytes)
            .unwrap_or(8 * 1024 * 1024);
        for (name, value) in [
            ("max_body_bytes", max_body_bytes),
            ("max_api_body_bytes", max_api_body_bytes),
        ] {
            if !(4096..=256 * 1024 * 1024).contains(&value) {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be between 4096 and 268435456"
                )));
            }
        }
        let apns_url = match self.apns_url.clone().or(file.apns_url).as_deref() {
            None | Some("production") => crate::push::apns::PRODUCTION_URL.to_owned(),
            Some("sandbox") | Some("development") => crate::push::apns::SANDBOX_URL.to_owned(),
            Some(url) if url.starts_with("https://") => url.trim_end_matches('/').to_owned(),
            Some(other) => {
                return Err(ConfigError::Invalid(format!(
                    "apns_url must be production, sandbox or an https:// URL, got {other:?}"
                )))
            }
        };
        let apns = crate::push::apns::ApnsSettings {
            url: apns_url,
            extra_ca_pem: None,
            connections: self
                .apns_connections
                .or(file.apns_connections)
                .unwrap_or(2)
                .clamp(1, 16),
            concurrency: self
                .apns_concurrency
                .or(file.apns_concurrency)
                .unwrap_or(500)
                .max(1),
            max_attempts: self
                .apns_max_attempts
                .or(file.apns_max_attempts)
                .unwrap_or(5)
                .clamp(1, 20),
            retry_base: std::time::Duration::from_millis(
                self.apns_retry_base_ms
                    .or(file.apns_retry_base_ms)
                    .unwrap_or(1000),
            ),
            expiration: std::time::Duration::from_secs(24 * 3600),
        };
        // The custom-agent options are gone (Android enrolls through Android
        // Enterprise); left in the environment they would be silently ignored, and
        // the admin would wonder why the QR code changed.
        if let Some(name) = REMOVED_ANDROID_AGENT_ENV
            .iter()
            .find(|name| std::env::var_os(name).is_some())
        {
            return Err(ConfigError::Invalid(format!(
                "{name} is no longer read: Android devices enroll through Android Enterprise (run `mdm android connect`); unset it"
            )));
        }
        let organization = self
            .organization
            .clone()
            .or(file.organization)
            .map(|o| o.trim().to_owned())
            .filter(|o| !o.is_empty())
            .unwrap_or_else(|| "MDM".into());
        let admin = crate::services::admins::AdminSettings {
            issuer: format!("MDM {organization}").trim().to_owned(),
            ..admin
        };
        let google_url =
            |flag: &Option<String>, file: Option<String>, name: &str, default: &str| {
                let url = flag.clone().or(file).unwrap_or_else(|| default.to_owned());
                if url.starts_with("https://") || url.starts_with("http://") {
                    Ok(url.trim_end_matches('/').to_owned())
                } else {
                    Err(ConfigError::Invalid(format!(
                        "{name} must be an http(s) URL, got {url:?}"
                    )))
                }
            };
        let android = crate::services::android::AndroidSettings {
            api_url: google_url(
                &self.android_api_url,
                file.android_api_url,
                "android_api_url",
                crate::android::amapi::DEFAULT_BASE_URL,
            )?,
            pubsub_url: google_url(
                &self.pubsub_api_url,
                file.pubsub_api_url,
                "pubsub_api_url",
                crate::android::pubsub::DEFAULT_BASE_URL,
            )?,
            retry: crate::android::google::RetryPolicy {
                max_attempts: self
                    .android_max_attempts
                    .or(file.android_max_attempts)
                    .unwrap_or(5)
                    .clamp(1, 20),
                base: std::time::Duration::from_millis(
                    self.android_retry_base_ms
                        .or(file.android_retry_base_ms)
                        .unwrap_or(500),
                ),
                max_delay: std::time::Duration::from_secs(60),
            },
            ..Default::default()
        };
        let android_pull_interval = std::time::Duration::from_millis(
            self.android_pull_interval_ms
                .or(file.android_pull_interval_ms)
                .unwrap_or(1000)
                .max(10),
        );
        let android_sync_interval = std::time::Duration::from_secs(
            self.android_sync_interval_secs
                .or(file.android_sync_interval_secs)
                .unwrap_or(900)
                .max(1),
        );
        Ok(ServeConfig {
            abuse,
            admin,
            audit_anchors,
            organization,
            android,
            android_pull_interval,
            android_sync_interval,
            apns,
            apns_ca_cert: self.apns_ca_cert.clone().or(file.apns_ca_cert),
            push_coalesce: std::time::Duration::from_millis(
                self.push_coalesce_ms
                    .or(file.push_coalesce_ms)
                    .unwrap_or(250),
            ),
            repush_interval: std::time::Duration::from_secs(
                self.repush_interval_secs
                    .or(file.repush_interval_secs)
                    .unwrap_or(900),
            ),
            master_key_file: self
                .master_key_file
                .clone()
                .or(file.master_key_file)
                .unwrap_or_else(|| data_dir.join("master.key")),
            data_dir,
            database_url,
            listen,
            plain_http,
            tls,
            tls_ca,
            public_url,
            device_ca: self.device_ca.clone().or(file.device_ca),
            trust_client_cert_header: self.trust_client_cert_header
                || file.trust_client_cert_header.unwrap_or(false),
            reenrollment,
            incidents,
            renewal_window: days(
                self.renewal_window_days.or(file.renewal_window_days),
                "renewal_window_days",
                60,
            )?,
            max_body_bytes,
            max_api_body_bytes,
            command_ttl: days(
                self.command_ttl_days.or(file.command_ttl_days),
                "command_ttl_days",
                30,
            )?,
            result_retention: days(
                self.result_retention_days.or(file.result_retention_days),
                "result_retention_days",
                90,
            )?,
            maintenance_interval: std::time::Duration::from_secs(
                self.maintenance_interval_secs
                    .or(file.maintenance_interval_secs)
                    .unwrap_or(60)
                    .max(1),
            ),
            workers: self
                .workers
                .or(file.workers)
                .unwrap_or_else(|| {
                    std::thread::available_parallelism()
                        .map(|n| n.get())
                        .unwrap_or(2)
                })
                .max(1),
        })
    }
}

impl ServeArgs {
    /// The abuse limits and connection timeouts (http/limits.rs).
    fn abuse_settings(
        &self,
        file: &FileConfig,
    ) -> Result<crate::http::limits::AbuseSettings, ConfigError> {
        use std::time::Duration;
        let d = crate::http::limits::AbuseSettings::default();
        let secs = |v: Option<u64>, name: &str, default: Duration, min: u64| {
            let s = v.unwrap_or(default.as_secs());
            if s < min || s > 86_400 {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be between {min} and 86400 seconds"
                )));
            }
            Ok(Duration::from_secs(s))
        };
        let max_connections = self
            .max_connections
            .or(file.max_connections)
            .unwrap_or(d.max_connections);
        if max_connections == 0 {
            return Err(ConfigError::Invalid(
                "max_connections must be at least 1".into(),
            ));
        }
        Ok(crate::http::limits::AbuseSettings {
            device_per_identity: self
                .device_rate_per_identity
                .or(file.device_rate_per_identity)
                .unwrap_or(d.device_per_identity),
            device_per_address: self
                .device_rate_per_address
                .or(file.device_rate_per_address)
                .unwrap_or(d.device_per_address),
            enroll_per_address: self
                .enroll_rate_per_address
                .or(file.enroll_rate_per_address)
                .unwrap_or(d.enroll_per_address),
            enroll_max_failures: self
                .enroll_max_failures
                .or(file.enroll_max_failures)
                .unwrap_or(d.enroll_max_failures),
            enroll_failure_window: secs(
                self.enroll_failure_window_secs
                    .or(file.enroll_failure_window_secs),
                "enroll_failure_window_secs",
                d.enroll_failure_window,
                1,
            )?,
            admin_max_failures: self
                .admin_max_failures
                .or(file.admin_max_failures)
                .unwrap_or(d.admin_max_failures),
            admin_failure_window: d.admin_failure_window,
            trust_forwarded_for: self.trust_forwarded_for
                || file.trust_forwarded_for.unwrap_or(false),
            header_timeout: secs(
                self.header_timeout_secs.or(file.header_timeout_secs),
                "header_timeout_secs",
                d.header_timeout,
                1,
            )?,
            body_timeout: secs(
                self.body_timeout_secs.or(file.body_timeout_secs),
                "body_timeout_secs",
                d.body_timeout,
                1,
            )?,
            keep_alive: secs(
                self.keep_alive_secs.or(file.keep_alive_secs),
                "keep_alive_secs",
                d.keep_alive,
                0,
            )?,
            disconnect_timeout: secs(
                self.disconnect_timeout_secs
                    .or(file.disconnect_timeout_secs),
                "disconnect_timeout_secs",
                d.disconnect_timeout,
                1,
            )?,
            max_connections,
        })
    }
}

impl ServeArgs {
    /// Admin passwords, sessions, lockout, token lifetimes and audit anchors: the
    /// policy's numbers by default; a value weaker than the office's policy (where
    /// its requirements give a number) or meaningless refuses the start.
    fn admin_settings(
        &self,
        file: &FileConfig,
    ) -> Result<
        (
            crate::services::admins::AdminSettings,
            crate::services::admins::audit::AnchorSettings,
        ),
        ConfigError,
    > {
        use crate::services::admins::audit::AnchorSettings;
        use crate::services::admins::password::PasswordPolicy;
        use crate::services::admins::AdminSettings;
        let d = AdminSettings::default();
        let p = PasswordPolicy::default();
        let bad = |flag: &str, why: String| {
            let key = flag.replace('-', "_");
            ConfigError::Invalid(format!(
                "--{flag} (MDM_{}, {key}) {why}",
                key.to_uppercase()
            ))
        };
        let duration = |flag: &str,
                        value: Option<String>,
                        default: chrono::Duration|
         -> Result<chrono::Duration, ConfigError> {
            match value {
                None => Ok(default),
                Some(text) => parse_duration(&text).map_err(|e| bad(flag, e)),
            }
        };
        let min_chars = self
            .password_min_length
            .or(file.password_min_length)
            .unwrap_or(p.min_chars);
        if min_chars < p.min_chars {
            return Err(bad(
                "password-min-length",
                format!(
                    "is {min_chars}: the office's password policy asks at least {} characters for administrative accounts",
                    p.min_chars
                ),
            ));
        }
        if min_chars > 1024 {
            return Err(bad(
                "password-min-length",
                format!("is {min_chars}: a password has at most 1024 characters"),
            ));
        }
        let max_age_days = self
            .password_max_age_days
            .or(file.password_max_age_days)
            .unwrap_or(p.max_age_days);
        if !(1..=p.max_age_days).contains(&max_age_days) {
            return Err(bad(
                "password-max-age-days",
                format!(
                    "is {max_age_days}: it must be 1 to {} days (the office's password policy: an administrative password is at most {} days old)",
                    p.max_age_days, p.max_age_days
                ),
            ));
        }
        let history = self
            .password_history
            .or(file.password_history)
            .unwrap_or(p.history);
        if !(1..=50).contains(&history) {
            return Err(bad(
                "password-history",
                format!("is {history}: it must be 1 to 50 (the passwords not to be used again, the current one included)"),
            ));
        }
        let idle_timeout = duration(
            "session-idle-timeout",
            self.session_idle_timeout
                .clone()
                .or(file.session_idle_timeout.clone()),
            d.idle_timeout,
        )?;
        if idle_timeout > d.idle_timeout {
            return Err(bad(
                "session-idle-timeout",
                format!(
                    "is {}: an admin session left idle must end within {} (the policy's clean-screen rule; 15 minutes at most)",
                    show_duration(idle_timeout),
                    show_duration(d.idle_timeout)
                ),
            ));
        }
        let session_lifetime = duration(
            "session-lifetime",
            self.session_lifetime
                .clone()
                .or(file.session_lifetime.clone()),
            d.session_lifetime,
        )?;
        if session_lifetime < idle_timeout || session_lifetime > chrono::Duration::hours(24) {
            return Err(bad(
                "session-lifetime",
                format!(
                    "is {}: it must be at least the idle timeout ({}) and at most 24h",
                    show_duration(session_lifetime),
                    show_duration(idle_timeout)
                ),
            ));
        }
        let threshold = self
            .login_lockout_threshold
            .or(file.login_lockout_threshold)
            .unwrap_or(p.lockout.threshold);
        if !(1..=100).contains(&threshold) {
            return Err(bad(
                "login-lockout-threshold",
                format!("is {threshold}: it must be 1 to 100 failed logins (NIST SP 800-63B allows at most 100)"),
            ));
        }
        let lock_base = duration(
            "login-lockout",
            self.login_lockout.clone().or(file.login_lockout.clone()),
            chrono::Duration::seconds(p.lockout.base_secs),
        )?;
        let lock_max = duration(
            "login-lockout-max",
            self.login_lockout_max
                .clone()
                .or(file.login_lockout_max.clone()),
            chrono::Duration::seconds(p.lockout.max_secs),
        )?;
        if lock_base > chrono::Duration::hours(24) {
            return Err(bad(
                "login-lockout",
                format!("is {}: at most 24h", show_duration(lock_base)),
            ));
        }
        if lock_max < lock_base || lock_max > chrono::Duration::hours(24) {
            return Err(bad(
                "login-lockout-max",
                format!(
                    "is {}: it must be at least --login-lockout ({}) and at most 24h",
                    show_duration(lock_max),
                    show_duration(lock_base)
                ),
            ));
        }
        let token_max_days = self
            .token_max_days
            .or(file.token_max_days)
            .unwrap_or(d.token_max_days);
        if !(1..=366).contains(&token_max_days) {
            return Err(bad(
                "token-max-days",
                format!("is {token_max_days}: it must be 1 to 366 days (access is reviewed yearly: no token outlives a review)"),
            ));
        }
        let token_default_days = self
            .token_default_days
            .or(file.token_default_days)
            .unwrap_or(d.token_default_days.min(token_max_days));
        if !(1..=token_max_days).contains(&token_default_days) {
            return Err(bad(
                "token-default-days",
                format!(
                    "is {token_default_days}: it must be 1 to --token-max-days ({token_max_days})"
                ),
            ));
        }
        let anchors = AnchorSettings::default();
        let anchor_records = self
            .audit_anchor_records
            .or(file.audit_anchor_records)
            .unwrap_or(anchors.records);
        if !(1..=1_000_000).contains(&anchor_records) {
            return Err(bad(
                "audit-anchor-records",
                format!("is {anchor_records}: it must be 1 to 1000000 records"),
            ));
        }
        let anchor_every = duration(
            "audit-anchor-interval",
            self.audit_anchor_interval
                .clone()
                .or(file.audit_anchor_interval.clone()),
            anchors.every,
        )?;
        if anchor_every > chrono::Duration::hours(24) {
            return Err(bad(
                "audit-anchor-interval",
                format!("is {}: at most 24h", show_duration(anchor_every)),
            ));
        }
        Ok((
            AdminSettings {
                policy: PasswordPolicy {
                    min_chars,
                    max_age_days,
                    history,
                    lockout: crate::storage::LockoutRule {
                        threshold,
                        base_secs: lock_base.num_seconds(),
                        max_secs: lock_max.num_seconds(),
                    },
                },
                idle_timeout,
                session_lifetime,
                token_default_days,
                token_max_days,
                ..d
            },
            AnchorSettings {
                every: anchor_every,
                records: anchor_records,
            },
        ))
    }
}

/// A duration as the admin options take it: numbers with a unit each, `s`, `m`, `h`
/// or `d` ("90s", "15m", "1h30m", "20d"). Zero, a bare number and anything else are
/// refused: a unit must be said.
pub fn parse_duration(text: &str) -> Result<chrono::Duration, String> {
    let refuse =
        || format!("is {text:?}: give a duration with a unit, such as 90s, 15m, 1h30m or 2d");
    let mut total: i64 = 0;
    let mut number = String::new();
    let mut any = false;
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: i64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(refuse()),
        };
        if number.is_empty() || number.len() > 9 {
            return Err(refuse());
        }
        let n: i64 = number.parse().map_err(|_| refuse())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(refuse)?;
        number.clear();
        any = true;
    }
    if !number.is_empty() || !any {
        return Err(refuse());
    }
    if total <= 0 {
        return Err(format!("is {text:?}: it must be longer than zero"));
    }
    Ok(chrono::Duration::seconds(total))
}

/// A duration as [`parse_duration`] reads it (1h30m, 90s).
pub fn show_duration(d: chrono::Duration) -> String {
    let mut secs = d.num_seconds();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, len) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= len {
            out += &format!("{}{unit}", secs / len);
            secs %= len;
        }
    }
    out
}

/// The public URL must be what Apple devices accept as MDM and SCEP URLs: https, a
/// host, no credentials, query or fragment. Checked at start, so that a mistake is a
/// refusal to start, never a 500 when a phone enrolls.
fn check_public_url(url: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| {
        ConfigError::Invalid(format!(
            "--public-url (MDM_PUBLIC_URL, public_url) {url:?} {why}"
        ))
    };
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(bad(
            "must be an https:// URL: Apple devices refuse http MDM and SCEP URLs. Behind a TLS-terminating proxy, give --plain-http with the proxy's https:// URL",
        ));
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("contains whitespace"));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return Err(bad("must not carry a user name or password"));
    }
    if rest.contains(['?', '#']) {
        return Err(bad("must not have a query or fragment"));
    }
    let host = public_host(url);
    if host.is_empty() {
        return Err(bad("has no host name"));
    }
    let port = if authority.starts_with('[') {
        authority.rsplit_once("]:").map(|(_, p)| p)
    } else {
        authority.split_once(':').map(|(_, p)| p)
    };
    if let Some(port) = port {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(bad("has an invalid port"));
        }
    }
    let valid_host = host.parse::<std::net::IpAddr>().is_ok()
        || host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if !valid_host {
        return Err(bad("has an invalid host name"));
    }
    Ok(())
}

/// The host of a URL (an IPv6 address without its brackets), lower-cased.
pub fn public_host(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    host.to_ascii_lowercase()
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_devices_accept_and_refuse() {
        for good in [
            "https://mdm.example.org",
            "https://mdm.example.org:8443",
            "https://10.0.0.5:8443/mdm",
            "https://[::1]:8443",
        ] {
            assert!(check_public_url(good).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("http://mdm.example.org", "https://"),
            ("mdm.example.org", "https://"),
            ("https://", "no host"),
            ("https://:8443", "no host"),
            ("https://user:pw@mdm.example.org", "user name"),
            ("https://mdm.example.org?x=1", "query"),
            ("https://mdm.example.org:99999", "port"),
            ("https://mdm example.org", "whitespace"),
            ("https://mdm_bad.example.org", "host name"),
        ] {
            let e = check_public_url(bad).unwrap_err().to_string();
            assert!(e.contains("--public-url") && e.contains(why), "{bad}: {e}");
        }
        assert_eq!(public_host("https://[::1]:8443/x"), "::1");
        assert_eq!(public_host("https://MDM.example.org:1/"), "mdm.example.org");
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(
            parse_duration("90s").unwrap(),
            chrono::Duration::seconds(90)
        );
        assert_eq!(
            parse_duration("15m").unwrap(),
            chrono::Duration::minutes(15)
        );
        assert_eq!(
            parse_duration("1h30m").unwrap(),
            chrono::Duration::minutes(90)
        );
        assert_eq!(parse_duration("2d").unwrap(), chrono::Duration::days(2));
        for bad in ["", "15", "0s", "-5m", "1x", "m", "1.5h", "99999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(show_duration(chrono::Duration::minutes(90)), "1h30m");
        assert_eq!(show_duration(chrono::Duration::seconds(45)), "45s");
    }

    /// The policy's numbers by default; what is weaker than the office's policy, or
    /// meaningless, refuses the start and names the option.
    #[test]
    fn admin_settings_keep_the_policy_floor() {
        let base = || ServeArgs {
            public_url: Some("https://mdm.example.org".into()),
            ..Default::default()
        };
        let c = base().resolve().unwrap();
        assert_eq!(c.admin.policy.min_chars, 14);
        assert_eq!(c.admin.policy.max_age_days, 20);
        assert_eq!(c.admin.idle_timeout, chrono::Duration::minutes(15));
        assert_eq!(c.admin.token_default_days, 90);
        let c = ServeArgs {
            password_min_length: Some(16),
            session_idle_timeout: Some("90s".into()),
            ..base()
        }
        .resolve()
        .unwrap();
        assert_eq!(c.admin.policy.min_chars, 16);
        assert_eq!(c.admin.idle_timeout, chrono::Duration::seconds(90));
        for (args, flag) in [
            (
                ServeArgs {
                    password_min_length: Some(12),
                    ..base()
                },
                "--password-min-length (MDM_PASSWORD_MIN_LENGTH",
            ),
            (
                ServeArgs {
                    password_max_age_days: Some(30),
                    ..base()
                },
                "--password-max-age-days",
            ),
            (
                ServeArgs {
                    password_max_age_days: Some(0),
                    ..base()
                },
                "--password-max-age-days",
            ),
            (
                ServeArgs {
                    password_history: Some(0),
                    ..base()
                },
                "--password-history",
            ),
            (
                ServeArgs {
                    session_idle_timeout: Some("16m".into()),
                    ..base()
                },
                "--session-idle-timeout",
            ),
            (
                ServeArgs {
                    session_idle_timeout: Some("0s".into()),
                    ..base()
                },
                "--session-idle-timeout",
            ),
            (
                ServeArgs {
                    session_lifetime: Some("2d".into()),
                    ..base()
                },
                "--session-lifetime",
            ),
            (
                ServeArgs {
                    login_lockout_threshold: Some(0),
                    ..base()
                },
                "--login-lockout-threshold",
            ),
            (
                ServeArgs {
                    login_lockout: Some("2h".into()),
                    ..base()
                },
                "--login-lockout-max",
            ),
            (
                ServeArgs {
                    token_max_days: Some(400),
                    ..base()
                },
                "--token-max-days",
            ),
            (
                ServeArgs {
                    token_default_days: Some(-1),
                    ..base()
                },
                "--token-default-days",
            ),
            (
                ServeArgs {
                    audit_anchor_records: Some(0),
                    ..base()
                },
                "--audit-anchor-records",
            ),
        ] {
            let e = args.resolve().unwrap_err().to_string();
            assert!(e.contains(flag), "{flag}: {e}");
        }
    }

    #[test]
    fn http_public_url_is_refused_even_behind_a_proxy() {
        let args = ServeArgs {
            plain_http: true,
            public_url: Some("http://mdm.example.org".into()),
            ..Default::default()
        };
        let e = args.resolve().unwrap_err().to_string();
        assert!(e.contains("--public-url") && e.contains("https://"), "{e}");
        let args = ServeArgs {
            tls_ca: Some("/nonexistent".into()),
            ..Default::default()
        };
        assert!(args.resolve().unwrap_err().to_string().contains("--tls-ca"));
    }
}
