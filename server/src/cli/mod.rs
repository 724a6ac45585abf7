//! The `mdm` command line: `serve`, `token`, `admin` and `pki` act on the server host;
//! every other command talks to a running server over the admin API.

mod admins;
mod android;
mod audit;
mod client;
mod commands;
mod devices;
mod directory;
mod incidents;
mod login;
mod output;
mod policies;
mod push_cert;
mod roles;

use crate::config::ServeArgs;
use clap::{Args, Parser, Subcommand};
use client::{Client, ClientError};
use serde_json::{json, Value};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "mdm",
    version,
    about = "Mobile device management server for Apple and Android devices"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (embedded SQLite in ./mdm-data unless told otherwise).
    Serve(ServeArgs),
    /// Admin API tokens (run on the server host: talks to the database directly).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Admin accounts on the server host (talks to the database directly): the first
    /// owner, and changes without a running server.
    Admin {
        #[command(subcommand)]
        command: admins::AdminCommand,
    },
    /// Admin accounts through the API.
    Admins {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: admins::AdminsCommand,
    },
    /// Log in (password, then the second factor); the session is kept in the config
    /// folder (mode 0600) and used by the other commands.
    Login {
        #[command(flatten)]
        api: ApiArgs,
        #[command(flatten)]
        args: login::LoginArgs,
    },
    /// End the session and forget it.
    Logout {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Change your password.
    Passwd {
        #[command(flatten)]
        api: ApiArgs,
        /// Read the current and the new password from standard input (two lines).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Your second factor.
    Mfa {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: login::MfaCommand,
    },
    /// Your sessions (--all: everyone's, with admins.read).
    Sessions {
        #[command(flatten)]
        api: ApiArgs,
        #[arg(long)]
        all: bool,
    },
    /// Roles, the role matrix, and which admin groups hold which roles.
    Roles {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: roles::RolesCommand,
    },
    /// The audit trail: list, verify, export; the yearly access review.
    Audit {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Off-board a user: each of their devices retired or wiped; --status ID shows
    /// how an off-boarding is going.
    Offboard {
        #[command(flatten)]
        api: ApiArgs,
        user: String,
        /// For devices not named with --device: retire or wipe.
        #[arg(long, value_parser = ["retire", "wipe"])]
        default: Option<String>,
        /// DEVICE_ID=retire or DEVICE_ID=wipe (repeatable).
        #[arg(long = "device")]
        devices: Vec<String>,
        /// Show an off-boarding instead of starting one.
        #[arg(long)]
        status: Option<String>,
    },
    /// Android Enterprise: the link to Google's Android Management API.
    Android {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: android::AndroidCommand,
    },
    /// Enrolled devices.
    Devices {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: devices::DeviceCommand,
    },
    /// The office's LDAP directory: where it is, how to read it, sync now.
    Directory {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: directory::DirectoryCommand,
    },
    /// Users devices belong to (from the directory, CSV imports or by hand) and their
    /// groups.
    Users {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: directory::UsersCommand,
    },
    /// Queued commands and their results.
    Commands {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: commands::CommandsCommand,
    },
    /// Enrollments: the QR codes devices enroll with.
    Enroll {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: EnrollCommand,
    },
    /// The built-in PKI (run on the server host: talks to the database directly).
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
    /// The MDM push certificate (from Apple's Push Certificates Portal).
    PushCert {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: PushCertCommand,
    },
    /// Policies (passcode, Wi-Fi, mail, certificates) for Apple and Android.
    Policy {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: policies::PolicyCommand,
    },
    /// Device groups that policies are assigned to.
    Groups {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: policies::GroupCommand,
    },
    /// The incident register: the office's 0-5 levels and register columns.
    Incidents {
        #[command(flatten)]
        api: ApiArgs,
        #[command(subcommand)]
        command: incidents::IncidentCommand,
    },
    /// The event stream: device, security and admin events.
    Events {
        #[command(flatten)]
        api: ApiArgs,
        /// Only events of this device.
        #[arg(long)]
        device: Option<String>,
        /// A kind (device.enrolled) or a prefix ending in '.' (security.).
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a service account's API token; it is printed once and stored only as a
    /// hash.
    Create {
        /// Who or what uses the token (e.g. "siem-export").
        #[arg(long)]
        name: String,
        /// The role the token carries.
        #[arg(long, default_value = "owner")]
        role: String,
        /// Days until it expires, at most --token-max-days. [default: --token-default-days]
        #[arg(long)]
        expires_in_days: Option<i64>,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// List active tokens (names, creation, last use; never the secrets).
    List {
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Revoke a token by id, or every token with a name.
    Revoke {
        id_or_name: String,
        #[command(flatten)]
        serve: ServeArgs,
    },
}

/// How to reach the server. The token comes from MDM_TOKEN or the config file, never
/// from a flag, so that it does not show in the process list or shell history.
#[derive(Args, Clone)]
pub struct ApiArgs {
    /// Server base URL. [env: MDM_SERVER; or `server` in the CLI config file]
    #[arg(long, global = true)]
    server: Option<String>,
    /// PEM CA certificate to trust for the server's TLS certificate. [env: MDM_CA_CERT]
    #[arg(long, global = true)]
    ca_cert: Option<std::path::PathBuf>,
    /// Skip TLS verification (only for a first look at a self-signed test server).
    #[arg(long, global = true)]
    insecure: bool,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum EnrollCommand {
    /// Create an enrollment; prints its URL and draws its QR code in the terminal.
    Create {
        #[arg(long, value_parser = ["apple", "android"])]
        platform: String,
        /// What it is for, e.g. "Front office phones".
        #[arg(long, default_value = "Enrollment")]
        name: String,
        /// Person the enrolled devices are assigned to.
        #[arg(long)]
        user: Option<String>,
        /// Group the enrolled devices are assigned to.
        #[arg(long)]
        group: Option<String>,
        /// Hours until the enrollment expires. [default: 168]
        #[arg(long)]
        expires_in_hours: Option<i64>,
        /// How many devices may enroll with it.
        #[arg(long)]
        max_uses: Option<i32>,
        /// Android: JSON of the Wi-Fi to join during setup, e.g.
        /// '{"ssid":"TownHall","security_type":"EAP","eap_method":"PEAP","phase2_auth":"MSCHAPV2","domain":"radius.town.example"}'.
        #[arg(long)]
        wifi: Option<String>,
        /// Android: locale, e.g. pl_PL.
        #[arg(long)]
        locale: Option<String>,
        /// Android: time zone, e.g. Europe/Warsaw.
        #[arg(long)]
        time_zone: Option<String>,
        /// Android Enterprise: a work profile (personal use allowed) instead of a
        /// fully managed device.
        #[arg(long)]
        work_profile: bool,
        /// Also write the QR code as PNG (or SVG if the name ends in .svg) here.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// List enrollments (active ones; --all for expired, revoked and used up too).
    List {
        #[arg(long)]
        all: bool,
    },
    /// Revoke an enrollment: its QR code admits no more devices.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Show the device CA, the profile signing identity, the server's TLS root (which
    /// enrollment profiles install on phones) and HTTPS certificate, and when they
    /// expire.
    Show {
        #[command(flatten)]
        serve: ServeArgs,
        #[arg(long)]
        json: bool,
    },
    /// Replace the device CA or the profile signing identity with your own (e.g. a
    /// signing certificate from a public CA, so iOS shows profiles as verified).
    Import {
        #[arg(value_parser = ["device-ca", "profile-signing", "server-tls-ca"])]
        what: String,
        #[arg(long)]
        cert: std::path::PathBuf,
        #[arg(long)]
        key: std::path::PathBuf,
        /// Intermediate certificates (PEM), for the profile signing identity.
        #[arg(long)]
        chain: Option<std::path::PathBuf>,
        #[command(flatten)]
        serve: ServeArgs,
    },
}

#[derive(Subcommand)]
enum PushCertCommand {
    /// Create the push key (kept on the server) and the request for Apple's Push
    /// Certificates Portal: signed with your vendor certificate, through
    /// mdmcert.download, or the CSR alone. A renewal reuses the key in use. Runs on
    /// the server host (talks to the database directly).
    Request(Box<push_cert::RequestArgs>),
    /// Open the file mdmcert.download mailed into the request to upload at Apple's
    /// portal, with the key the server kept. Runs on the server host.
    Decrypt(Box<push_cert::DecryptArgs>),
    /// Upload or renew the push certificate: the PEM certificate alone (its key is the
    /// one `request` kept), PEM certificate and key, or a PKCS#12 file whose password
    /// is read from the environment variable named by --password-env (never from the
    /// command line).
    Upload {
        #[arg(long, conflicts_with = "pkcs12")]
        cert: Option<std::path::PathBuf>,
        #[arg(long, requires = "cert")]
        key: Option<std::path::PathBuf>,
        #[arg(long)]
        pkcs12: Option<std::path::PathBuf>,
        /// Environment variable holding the PKCS#12 password.
        #[arg(long, default_value = "MDM_PKCS12_PASSWORD")]
        password_env: String,
    },
    /// Show the certificate in use, its topic and when it expires.
    Show,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(matches!(cli.command, Command::Serve(_)));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve(args) => {
            let config = match args.resolve() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            // A weak bootstrap token is a configuration error, refused before anything starts.
            if let Err(e) = crate::services::tokens::check_env_token(
                std::env::var("MDM_ADMIN_TOKEN").ok().as_deref(),
            ) {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            // actix-web wants its own system; run it on a plain thread with the runtime.
            match actix_web::rt::System::new().block_on(crate::serve::run(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Token { command } => runtime.block_on(async move {
            match token(command).await {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }),
        Command::Admin { command } => runtime.block_on(async move {
            match admins::host(command).await {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }),
        Command::Admins { api, command } => {
            run_api(&runtime, &api, |c| admins::admins_api(c, command))
        }
        Command::Login { api, args } => {
            let api2 = api.clone();
            run_output(
                &runtime,
                &api,
                async move { login::login(&api2, args).await },
            )
        }
        Command::Logout { api } => run_api(&runtime, &api, login::logout),
        Command::Passwd {
            api,
            password_stdin,
        } => run_api(&runtime, &api, move |c| login::passwd(c, password_stdin)),
        Command::Mfa { api, command } => run_api(&runtime, &api, |c| login::mfa(c, command)),
        Command::Sessions { api, all } => run_api(&runtime, &api, move |c| login::sessions(c, all)),
        Command::Roles { api, command } => run_api(&runtime, &api, |c| roles::roles(c, command)),
        Command::Audit { api, command } => {
            let client = match Client::from_args(&api) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let mut intact = true;
            let code = run_output(&runtime, &api, async {
                let (out, ok) = audit::audit(client, command).await?;
                intact = ok;
                Ok(out)
            });
            if code == ExitCode::SUCCESS && !intact {
                ExitCode::FAILURE
            } else {
                code
            }
        }
        Command::Offboard {
            api,
            user,
            default,
            devices,
            status,
        } => run_api(&runtime, &api, move |c| {
            audit::offboard(c, user, default, devices, status)
        }),
        Command::Android { api, command } => {
            run_api(&runtime, &api, |c| android::android(c, command))
        }
        Command::Devices { api, command } => {
            run_api(&runtime, &api, |c| devices::devices(c, command))
        }
        Command::Directory { api, command } => {
            run_api(&runtime, &api, |c| directory::directory(c, command))
        }
        Command::Users { api, command } => {
            run_api(&runtime, &api, |c| directory::users(c, command))
        }
        Command::Incidents { api, command } => {
            run_api(&runtime, &api, |c| incidents::incidents(c, command))
        }
        Command::Policy {
            command: policies::PolicyCommand::Init { file },
            ..
        } => match policies::init(file.as_deref()) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Policy {
            command: policies::PolicyCommand::Check { file },
            ..
        } => {
            let (text, ok) = policies::check(&file);
            print!("{text}");
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Policy { api, command } => {
            run_api(&runtime, &api, |c| policies::policy(c, command))
        }
        Command::Groups { api, command } => {
            run_api(&runtime, &api, |c| policies::groups(c, command))
        }
        Command::Commands { api, command } => {
            run_api(&runtime, &api, |c| commands::commands(c, command))
        }
        Command::PushCert {
            command: PushCertCommand::Request(args),
            ..
        } => push_cert::run_request(&runtime, args),
        Command::PushCert {
            command: PushCertCommand::Decrypt(args),
            ..
        } => push_cert::run_decrypt(&runtime, args),
        Command::PushCert { api, command } => run_api(&runtime, &api, |c| push_cert(c, command)),
        Command::Enroll { api, command } => run_api(&runtime, &api, |c| enroll(c, command)),
        Command::Pki { command } => runtime.block_on(async move {
            match pki(command).await {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }),
        Command::Events {
            api,
            device,
            kind,
            limit,
        } => run_api(&runtime, &api, move |c| async move {
            let mut query = vec![("limit".to_owned(), limit.to_string())];
            if let Some(d) = device {
                query.push(("device_id".into(), d));
            }
            if let Some(k) = kind {
                query.push(("kind".into(), k));
            }
            let v = c.get_query("/events", &query).await?;
            Ok(Output::Table(output::events(&v), v))
        }),
    }
}

fn init_logging(server: bool) {
    let default = if server { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn token(command: TokenCommand) -> anyhow::Result<String> {
    let serve = match &command {
        TokenCommand::Create { serve, .. }
        | TokenCommand::List { serve }
        | TokenCommand::Revoke { serve, .. } => serve,
    };
    let config = serve.resolve()?;
    let store: std::sync::Arc<dyn crate::storage::Storage> =
        std::sync::Arc::new(crate::serve::open_store(&config).await?);
    let service = crate::services::tokens::TokenService::new(store);
    let fail = |e: crate::services::ServiceError| anyhow::anyhow!("{e}");
    match command {
        TokenCommand::Create {
            name,
            role,
            expires_in_days,
            ..
        } => {
            let (_, secret) = service
                .create(
                    &name,
                    &role,
                    expires_in_days.unwrap_or(config.admin.token_default_days),
                    config.admin.token_max_days,
                )
                .await
                .map_err(fail)?;
            eprintln!(
                "Token {name:?} created. It is shown only this once; store it safely (MDM_TOKEN)."
            );
            Ok(format!("{secret}\n"))
        }
        TokenCommand::List { .. } => {
            let tokens = service.list().await.map_err(fail)?;
            Ok(output::table(
                &[
                    "ID",
                    "NAME",
                    "ROLE",
                    "OWNER",
                    "CREATED",
                    "EXPIRES",
                    "LAST USED",
                ],
                tokens
                    .into_iter()
                    .map(|t| {
                        vec![
                            t.id,
                            t.name,
                            t.role,
                            t.admin_name.unwrap_or_else(|| "(service account)".into()),
                            t.created_at.to_rfc3339(),
                            t.expires_at
                                .map(|at| at.to_rfc3339())
                                .unwrap_or_else(|| "never".into()),
                            t.last_used_at
                                .map(|at| at.to_rfc3339())
                                .unwrap_or_else(|| "-".into()),
                        ]
                    })
                    .collect(),
            ))
        }
        TokenCommand::Revoke { id_or_name, .. } => {
            let n = service.revoke(&id_or_name).await.map_err(fail)?;
            Ok(format!("{n} token(s) revoked\n"))
        }
    }
}

/// What a command prints: a table for people, or the JSON for scripts.
enum Output {
    Table(String, Value),
}

/// Runs a command that builds its own client (or none) and prints its output.
fn run_output<Fut>(runtime: &tokio::runtime::Runtime, api: &ApiArgs, f: Fut) -> ExitCode
where
    Fut: std::future::Future<Output = Result<Output, ClientError>>,
{
    match runtime.block_on(f) {
        Ok(Output::Table(table, json)) => {
            if api.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json).unwrap_or_default()
                );
            } else {
                print!("{table}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run_api<F, Fut>(runtime: &tokio::runtime::Runtime, api: &ApiArgs, f: F) -> ExitCode
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = Result<Output, ClientError>>,
{
    let client = match Client::from_args(api) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(f(client)) {
        Ok(Output::Table(table, json)) => {
            if api.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json).unwrap_or_default()
                );
            } else {
                print!("{table}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn enroll(c: Client, command: EnrollCommand) -> Result<Output, ClientError> {
    match command {
        EnrollCommand::Create {
            platform,
            name,
            user,
            group,
            expires_in_hours,
            max_uses,
            wifi,
            locale,
            time_zone,
            work_profile,
            out,
        } => {
            let mut body = json!({
                "platform": platform, "name": name, "user": user, "group": group,
                "expires_in_hours": expires_in_hours, "max_uses": max_uses,
            });
            if wifi.is_some() || locale.is_some() || time_zone.is_some() || work_profile {
                let wifi: Option<Value> = wifi
                    .map(|w| {
                        serde_json::from_str(&w)
                            .map_err(|e| ClientError::Usage(format!("--wifi is not JSON: {e}")))
                    })
                    .transpose()?;
                let mut android = json!({ "wifi": wifi, "locale": locale, "time_zone": time_zone });
                if work_profile {
                    android["work_profile"] = true.into();
                }
                body["android"] = strip_nulls(android);
            }
            let v = c.post("/enrollments", &strip_nulls(body)).await?;
            let payload = v["qr_payload"].as_str().unwrap_or_default().to_owned();
            let qr = enrollment::qr::terminal(&payload)
                .map_err(|e| ClientError::Usage(e.to_string()))?;
            if let Some(path) = out {
                let id = v["id"].as_str().unwrap_or_default();
                let (ext, bytes) = if path.extension().is_some_and(|e| e == "svg") {
                    (
                        "svg",
                        c.get_bytes(&format!("/enrollments/{id}/qr.svg")).await?,
                    )
                } else {
                    (
                        "png",
                        c.get_bytes(&format!("/enrollments/{id}/qr.png")).await?,
                    )
                };
                std::fs::write(&path, bytes).map_err(|e| {
                    ClientError::Usage(format!("cannot write {}: {e}", path.display()))
                })?;
                eprintln!("QR code written to {} ({ext})", path.display());
            }
            Ok(Output::Table(
                format!("{}\n{qr}", output::enrollment(&v)),
                v,
            ))
        }
        EnrollCommand::List { all } => {
            let v = c
                .get_query("/enrollments", &[("all".into(), all.to_string())])
                .await?;
            Ok(Output::Table(output::enrollment_list(&v), v))
        }
        EnrollCommand::Revoke { id } => {
            let v = c
                .delete(&format!("/enrollments/{}", client::segment(&id)))
                .await?;
            Ok(Output::Table(output::enrollment(&v), v))
        }
    }
}

async fn pki(command: PkiCommand) -> anyhow::Result<String> {
    let open = |serve: &ServeArgs| {
        let serve = serve.clone();
        async move {
            let config = serve.resolve()?;
            let sealer = crate::keys::load_master_key(&config.master_key_file)?;
            let store: std::sync::Arc<dyn crate::storage::Storage> =
                std::sync::Arc::new(crate::serve::open_store(&config).await?);
            anyhow::Ok((config, sealer, store))
        }
    };
    match command {
        PkiCommand::Show { serve, json } => {
            let (config, sealer, store) = open(&serve).await?;
            let pki = crate::services::pki::load(&store, &sealer)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut summary = pki.summary;
            // The HTTPS certificate of this host: the admin's, or the one the server
            // last issued from its TLS root (server_tls_ca above) and wrote here.
            let tls_path = config
                .tls
                .as_ref()
                .map(|(cert, _)| cert.clone())
                .unwrap_or_else(|| config.data_dir.join("tls").join("server.pem"));
            if let Some(cert) = std::fs::read(&tls_path)
                .ok()
                .and_then(|pem| openssl::x509::X509::from_pem(&pem).ok())
            {
                summary.push(crate::services::pki::summarize(
                    "tls",
                    &cert,
                    config.tls.is_some(),
                    chrono::Utc::now(),
                ));
            }
            // The admin's private CA that enrollment profiles install (--tls-ca).
            if let Some(path) = &config.tls_ca {
                let pem = std::fs::read(path)
                    .map_err(|e| anyhow::anyhow!("--tls-ca {}: {e}", path.display()))?;
                for cert in openssl::x509::X509::stack_from_pem(&pem).unwrap_or_default() {
                    summary.push(crate::services::pki::summarize(
                        "tls_ca",
                        &cert,
                        true,
                        chrono::Utc::now(),
                    ));
                }
            }
            if json {
                return Ok(serde_json::to_string_pretty(&summary)? + "\n");
            }
            Ok(output::pki(&serde_json::to_value(&summary)?))
        }
        PkiCommand::Import {
            what,
            cert,
            key,
            chain,
            serve,
        } => {
            let (_, sealer, store) = open(&serve).await?;
            let read = |p: &std::path::Path| {
                std::fs::read(p).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))
            };
            let name = match what.as_str() {
                "device-ca" => crate::services::pki::DEVICE_CA,
                "server-tls-ca" => crate::services::pki::SERVER_TLS_CA,
                _ => crate::services::pki::PROFILE_SIGNING,
            };
            let chain = chain.as_deref().map(read).transpose()?;
            crate::services::pki::import(
                &store,
                &sealer,
                name,
                &read(&cert)?,
                &read(&key)?,
                chain.as_deref(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            store
                .record(
                    crate::domain::NewEvent::new(
                        crate::domain::event::kinds::ADMIN_PKI_IMPORTED,
                        format!("{what} imported"),
                    )
                    .actor("server-host"),
                )
                .await?;
            Ok(format!(
                "{what} imported; restart the server instances to use it\n"
            ))
        }
    }
}

async fn push_cert(c: Client, command: PushCertCommand) -> Result<Output, ClientError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|e| ClientError::Usage(format!("cannot read {}: {e}", path.display())))
    };
    match command {
        PushCertCommand::Upload {
            cert,
            key,
            pkcs12,
            password_env,
        } => {
            let body = match (cert, key, pkcs12) {
                (Some(cert), None, None) => json!({
                    "certificate_pem": String::from_utf8_lossy(&read(&cert)?),
                }),
                (Some(cert), Some(key), None) => json!({
                    "certificate_pem": String::from_utf8_lossy(&read(&cert)?),
                    "private_key_pem": String::from_utf8_lossy(&read(&key)?),
                }),
                (None, None, Some(p12)) => {
                    use base64::Engine;
                    json!({
                        "pkcs12_base64": base64::engine::general_purpose::STANDARD.encode(read(&p12)?),
                        "password": std::env::var(&password_env).unwrap_or_default(),
                    })
                }
                _ => return Err(ClientError::Usage(
                    "give --cert (with --key, or alone for the key the server kept), or --pkcs12"
                        .into(),
                )),
            };
            let v = c.put("/push-certificate", &body).await?;
            Ok(Output::Table(output::push_certificate(&v), v))
        }
        PushCertCommand::Show => {
            let v = c.get("/push-certificate").await?;
            Ok(Output::Table(output::push_certificate(&v), v))
        }
        PushCertCommand::Request(_) | PushCertCommand::Decrypt(_) => Err(ClientError::Usage(
            "request and decrypt run on the server host, not through the API".into(),
        )),
    }
}

fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect())
        }
        other => other,
    }
}
