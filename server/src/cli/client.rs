//! The admin API client behind the CLI.

use super::ApiArgs;
use serde::Deserialize;
use serde_json::Value;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot reach the server: {0}")]
    Connect(String),
    #[error("{message} (HTTP {status})")]
    Api { status: u16, message: String },
}

impl ClientError {
    /// 1: the server refused or failed; 2: the command line was wrong; 3: no server.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Api { .. } => 1,
            ClientError::Usage(_) => 2,
            ClientError::Connect(_) => 3,
        }
    }
}

/// `~/.config/mdm/cli.toml` (or $MDM_CLI_CONFIG): server = "...", token = "...".
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CliFile {
    server: Option<String>,
    token: Option<String>,
    ca_cert: Option<PathBuf>,
}

fn cli_file() -> Result<CliFile, ClientError> {
    let path = std::env::var_os("MDM_CLI_CONFIG")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
                .map(|dir| dir.join("mdm").join("cli.toml"))
        });
    match path {
        Some(p) if p.exists() => {
            let text = std::fs::read_to_string(&p)
                .map_err(|e| ClientError::Usage(format!("cannot read {}: {e}", p.display())))?;
            toml::from_str(&text).map_err(|e| ClientError::Usage(format!("{}: {e}", p.display())))
        }
        _ => Ok(CliFile::default()),
    }
}

/// Percent-encodes one path segment.
pub fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// `mdm login`'s session: `session.toml` beside the CLI config file (mode 0600 in a
/// 0700 folder), or $MDM_SESSION_FILE.
#[derive(serde::Serialize, Deserialize, Default)]
pub struct SessionFile {
    pub server: String,
    pub token: String,
    pub admin: String,
    pub ca_cert: Option<PathBuf>,
    pub expires_at: Option<String>,
}

fn config_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MDM_CLI_CONFIG") {
        return PathBuf::from(p).parent().map(PathBuf::from);
    }
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|dir| dir.join("mdm"))
}

pub fn session_path() -> Option<PathBuf> {
    std::env::var_os("MDM_SESSION_FILE")
        .map(PathBuf::from)
        .or_else(|| config_dir().map(|d| d.join("session.toml")))
}

pub fn read_session() -> Option<SessionFile> {
    let path = session_path()?;
    let text = std::fs::read_to_string(path).ok()?;
    toml::from_str(&text).ok()
}

/// Writes the session file readable by its owner alone (created 0600, never wider).
pub fn write_session(session: &SessionFile) -> Result<PathBuf, ClientError> {
    let path = session_path().ok_or_else(|| {
        ClientError::Usage("no config folder: set HOME or MDM_SESSION_FILE".into())
    })?;
    let fail =
        |e: std::io::Error| ClientError::Usage(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
    }
    let text = toml::to_string(session).map_err(|e| ClientError::Usage(e.to_string()))?;
    let _ = std::fs::remove_file(&path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    let mut file = options.open(&path).map_err(fail)?;
    file.write_all(text.as_bytes()).map_err(fail)?;
    Ok(path)
}

pub fn remove_session() -> Option<PathBuf> {
    let path = session_path()?;
    std::fs::remove_file(&path).ok().map(|_| path)
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    pub fn from_args(args: &ApiArgs) -> Result<Self, ClientError> {
        Self::build(args, true)
    }

    /// A client without credentials (`mdm login`).
    pub fn anonymous(args: &ApiArgs) -> Result<Self, ClientError> {
        Self::build(args, false)
    }

    /// The server's base URL (without /api/v1).
    pub fn server(&self) -> &str {
        self.base.trim_end_matches("/api/v1")
    }

    fn build(args: &ApiArgs, with_token: bool) -> Result<Self, ClientError> {
        let file = cli_file()?;
        // The session `mdm login` kept, used when no token is given otherwise and it
        // belongs to the server in use.
        let session = read_session();
        let server = args
            .server
            .clone()
            .or_else(|| std::env::var("MDM_SERVER").ok())
            .or(file.server)
            .or_else(|| session.as_ref().map(|s| s.server.clone()))
            .ok_or_else(|| {
                ClientError::Usage("no server given: use --server URL or MDM_SERVER".into())
            })?;
        let session =
            session.filter(|s| s.server.trim_end_matches('/') == server.trim_end_matches('/'));
        let token = if with_token {
            std::env::var("MDM_TOKEN")
                .ok()
                .filter(|t| !t.is_empty())
                .or_else(|| session.as_ref().map(|s| s.token.clone()))
                .or(file.token)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    ClientError::Usage(
                        "no credentials: log in with `mdm login`, or set MDM_TOKEN to an API token"
                            .into(),
                    )
                })?
        } else {
            String::new()
        };
        let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(120));
        let ca = args
            .ca_cert
            .clone()
            .or_else(|| std::env::var_os("MDM_CA_CERT").map(PathBuf::from))
            .or(file.ca_cert)
            .or_else(|| session.as_ref().and_then(|s| s.ca_cert.clone()));
        if let Some(path) = ca {
            let pem = std::fs::read(&path)
                .map_err(|e| ClientError::Usage(format!("cannot read {}: {e}", path.display())))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| ClientError::Usage(format!("{}: {e}", path.display())))?;
            builder = builder.add_root_certificate(cert);
        }
        if args.insecure {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Usage(e.to_string()))?;
        Ok(Client {
            http,
            base: format!("{}/api/v1", server.trim_end_matches('/')),
            token,
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, ClientError> {
        let req = if self.token.is_empty() {
            req
        } else {
            req.bearer_auth(&self.token)
        };
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            Ok(body)
        } else {
            let message = body
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| body.to_string());
            Err(ClientError::Api {
                status: status.as_u16(),
                message,
            })
        }
    }

    /// A binary resource (QR images).
    pub async fn get_bytes(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        let req = self.http.get(format!("{}{path}", self.base));
        let req = if self.token.is_empty() {
            req
        } else {
            req.bearer_auth(&self.token)
        };
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        if !status.is_success() {
            return Err(ClientError::Api {
                status: status.as_u16(),
                message: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        Ok(bytes.to_vec())
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn get_query(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<Value, ClientError> {
        self.send(self.http.get(format!("{}{path}", self.base)).query(query))
            .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.send(self.http.patch(format!("{}{path}", self.base)).json(body))
            .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.send(self.http.put(format!("{}{path}", self.base)).json(body))
            .await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, ClientError> {
        self.send(self.http.delete(format!("{}{path}", self.base)))
            .await
    }
}
