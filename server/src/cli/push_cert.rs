//! `mdm push-cert request` and `mdm push-cert decrypt`: getting the MDM push
//! certificate without leaving the tool.
//!
//! Both run on the server host against the database, as `mdm pki` does, not through
//! the admin API: the push key is made where it is kept (sealed with the master key
//! this host reads) and never crosses the network, not even to an admin's laptop; the
//! mdmcert.download API key is an operator's secret of this host; and the step
//! happens once a year, by whoever runs the server. The upload of the certificate
//! Apple returns goes through the admin API like any other (`mdm push-cert upload
//! --cert`), and the server pairs it with the kept key.

use crate::config::ServeArgs;
use crate::push::{mdmcert, request, vendor};
use crate::services::push_cert;
use crate::storage::Storage;
use clap::Args;
use enrollment::seal::Sealer;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Environment variable with the mdmcert.download API key (never a flag: it would
/// show in the process list and the shell history).
pub const API_KEY_ENV: &str = "MDM_MDMCERT_API_KEY";
const DEFAULT_REQUEST_OUT: &str = "push-request.b64";
const DEFAULT_CSR_OUT: &str = "push.csr";

#[derive(Args)]
pub struct RequestArgs {
    /// Common name in the CSR (Apple replaces the subject; this only helps you
    /// recognise the request). [default: "<organization> MDM push"]
    #[arg(long)]
    cn: Option<String>,
    /// Mail address: the one registered at mdmcert.download (required with
    /// --mdmcert), otherwise only written into the CSR.
    #[arg(long)]
    email: Option<String>,
    /// Two-letter country code for the CSR (e.g. PL).
    #[arg(long)]
    country: Option<String>,
    /// Your own MDM vendor certificate ("MDM CSR" type, PEM or DER) to sign the request.
    #[arg(long, requires = "vendor_key", conflicts_with_all = ["vendor_pkcs12", "mdmcert"])]
    vendor_cert: Option<PathBuf>,
    /// PEM private key of --vendor-cert.
    #[arg(long, requires = "vendor_cert")]
    vendor_key: Option<PathBuf>,
    /// The vendor certificate and key as PKCS#12 (Keychain export); its password is
    /// read from the environment variable named by --vendor-password-env.
    #[arg(long, conflicts_with = "mdmcert")]
    vendor_pkcs12: Option<PathBuf>,
    #[arg(long, default_value = "MDM_VENDOR_PKCS12_PASSWORD")]
    vendor_password_env: String,
    /// Apple's certificates completing the vendor chain (repeat): the WWDR
    /// intermediate and Apple Root CA, PEM or DER, from
    /// https://www.apple.com/certificateauthority/.
    #[arg(long = "apple-cert")]
    apple_certs: Vec<PathBuf>,
    /// No vendor certificate: have mdmcert.download sign the request and mail it to
    /// --email (API key from MDM_MDMCERT_API_KEY).
    #[arg(long, requires = "email")]
    mdmcert: bool,
    /// The mdmcert.download API endpoint.
    #[arg(long, env = "MDM_MDMCERT_URL", default_value = mdmcert::DEFAULT_URL)]
    mdmcert_url: String,
    /// Where to write the result: the signed request (with a vendor certificate;
    /// default push-request.b64) or the CSR alone (default push.csr).
    #[arg(long, conflicts_with = "mdmcert")]
    out: Option<PathBuf>,
    /// Write the new push key to this file (mode 0600) instead of keeping it sealed
    /// in the database; the upload then needs --key.
    #[arg(long)]
    key_out: Option<PathBuf>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Args)]
pub struct DecryptArgs {
    /// The file mdmcert.download mailed (mdm_signed_request.<date>.plist.b64.p7).
    file: PathBuf,
    /// Where to write the request to upload at Apple's portal.
    #[arg(long, default_value = DEFAULT_REQUEST_OUT)]
    out: PathBuf,
    /// The key file written by `request --key-out`, if the key is not kept on the server.
    #[arg(long)]
    key: Option<PathBuf>,
    #[command(flatten)]
    serve: ServeArgs,
}

/// Why a command failed: 2 for what the admin must correct in the command or its
/// configuration, 1 for everything refused or failed later.
enum Failure {
    Usage(String),
    Failed(String),
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Failed(e.to_string())
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure::Usage(message.into())
}

pub fn run_request(runtime: &tokio::runtime::Runtime, args: Box<RequestArgs>) -> ExitCode {
    finish(runtime.block_on(request(*args)))
}

pub fn run_decrypt(runtime: &tokio::runtime::Runtime, args: Box<DecryptArgs>) -> ExitCode {
    finish(runtime.block_on(decrypt(*args)))
}

fn finish(result: Result<String, Failure>) -> ExitCode {
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(Failure::Usage(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(m)) => {
            eprintln!("error: {m}");
            ExitCode::FAILURE
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))
}

/// The database and master key of this host.
async fn open(serve: &ServeArgs) -> Result<(Arc<dyn Storage>, Sealer), Failure> {
    let config = serve.resolve().map_err(|e| usage(e.to_string()))?;
    // Pointed at the wrong folder, opening would create a new master key and database
    // there, and the key kept in them would never reach the server.
    if std::env::var_os("MDM_MASTER_KEY").is_none() && !config.master_key_file.exists() {
        return Err(usage(format!(
            "no master key at {}: run this on the server host with the server's --data-dir, \
             --database-url and --master-key-file (or MDM_MASTER_KEY), after it started once",
            config.master_key_file.display()
        )));
    }
    let sealer = crate::keys::load_master_key(&config.master_key_file).map_err(|e| {
        Failure::Failed(format!(
            "{e:#}; run this on the server host, with the server's data folder or MDM_MASTER_KEY"
        ))
    })?;
    let store: Arc<dyn Storage> = Arc::new(
        crate::serve::open_store(&config)
            .await
            .map_err(|e| Failure::Failed(format!("{e:#}")))?,
    );
    if store
        .pki_object(crate::services::pki::DEVICE_CA)
        .await?
        .is_none()
    {
        return Err(usage(
            "this database holds no server yet (no device CA): point --database-url at the server's database, \
             or start the server once first",
        ));
    }
    Ok((store, sealer))
}

enum Flow {
    Vendor(request::VendorIdentity),
    Mdmcert { url: reqwest::Url, api_key: String },
    CsrOnly,
}

async fn request(args: RequestArgs) -> Result<String, Failure> {
    // Everything the admin gave is checked before a key exists or anything is sent.
    let organization = args
        .serve
        .resolve()
        .map_err(|e| usage(e.to_string()))?
        .organization;
    let subject = request::CsrSubject {
        common_name: args
            .cn
            .clone()
            .unwrap_or_else(|| format!("{organization} MDM push")),
        email: args.email.clone(),
        country: args.country.clone(),
    };
    if let Some(email) = &subject.email {
        request::check_email(email).map_err(|e| usage(e.to_string()))?;
    }
    let flow = flow(&args)?;
    let out = match &flow {
        Flow::Vendor(_) => Some(
            args.out
                .clone()
                .unwrap_or_else(|| DEFAULT_REQUEST_OUT.into()),
        ),
        Flow::CsrOnly => Some(args.out.clone().unwrap_or_else(|| DEFAULT_CSR_OUT.into())),
        Flow::Mdmcert { .. } => None,
    };
    for path in out.iter().chain(args.key_out.iter()) {
        refuse_existing(path)?;
    }

    // The key: the one in use for a renewal (the topic stays with it), else a new one.
    let opened = match args.key_out {
        Some(_) => None,
        None => Some(open(&args.serve).await?),
    };
    let (key, renewal_topic) = match &opened {
        Some((store, sealer)) => match push_cert::active_key(store, sealer).await? {
            Some((key, topic)) => (key, Some(topic)),
            None => (request::generate_key()?, None),
        },
        None => (request::generate_key()?, None),
    };
    let csr = request::make_csr(&key, &subject).map_err(|e| usage(e.to_string()))?;
    // The request kept before, if any: its key is replaced unless it is this one, and
    // then its exchange certificate is kept too, so that its mail still opens (PKCS#7
    // names the recipient by certificate). One that cannot be read is just replaced.
    let previous = match &opened {
        Some((store, sealer)) => push_cert::kept(store, sealer).await.ok().flatten(),
        None => None,
    };
    let exchange = match &previous {
        Some(p) if p.key.public_eq(&key) => p.exchange_cert.clone(),
        _ => mdmcert::exchange_certificate(&key)?,
    };
    let replaced = previous
        .as_ref()
        .filter(|p| !p.key.public_eq(&key))
        .map(|p| p.created_at);

    // Files are staged first and put in place only once everything else worked.
    let key_file = match &args.key_out {
        Some(path) => Some(Staged::write(path, &key_file_pem(&key, &exchange)?, 0o600)?),
        None => None,
    };
    let result_file = match (&flow, &out) {
        (Flow::Vendor(vendor), Some(path)) => {
            let signed = request::sign_request(&csr, vendor)?;
            Some(Staged::write(path, signed.as_bytes(), 0o644)?)
        }
        (Flow::CsrOnly, Some(path)) => Some(Staged::write(path, &csr.to_pem()?, 0o644)?),
        _ => None,
    };
    if let Flow::Mdmcert { url, api_key } = &flow {
        let email = subject.email.as_deref().unwrap_or_default();
        let body = mdmcert::sign_request(&csr, email, api_key, &exchange)?;
        mdmcert::submit(url, &body).await?;
    }
    if let Some((store, sealer)) = &opened {
        push_cert::keep(store, sealer, &key, &exchange, &csr).await?;
        store
            .record(
                crate::domain::NewEvent::new(
                    crate::domain::event::kinds::ADMIN_PUSH_REQUEST_CREATED,
                    match &renewal_topic {
                        Some(topic) => format!("push certificate renewal request for {topic}"),
                        None => "push certificate request with a new push key".to_owned(),
                    },
                )
                .actor("server-host")
                .data(serde_json::json!({
                    "renewal": renewal_topic.is_some(),
                    "topic": renewal_topic,
                    "flow": match &flow { Flow::Vendor(_) => "vendor", Flow::Mdmcert { .. } => "mdmcert", Flow::CsrOnly => "csr" },
                })),
            )
            .await?;
    }
    for staged in key_file.into_iter().chain(result_file) {
        staged.commit()?;
    }
    let mut text = String::new();
    if let Some(at) = replaced {
        text.push_str(&format!(
            "This replaces the push key of the request made on {}: a certificate or mail answering that request can no longer be used.\n",
            at.date_naive()
        ));
    }
    text.push_str(&report(
        &args,
        &flow,
        out.as_deref(),
        renewal_topic.as_deref(),
    ));
    Ok(text)
}

fn flow(args: &RequestArgs) -> Result<Flow, Failure> {
    let now = chrono::Utc::now().timestamp();
    let mut apple = Vec::new();
    for path in &args.apple_certs {
        apple.extend(
            vendor::read_certificates(&read(path)?, &path.display().to_string())
                .map_err(|e| usage(e.to_string()))?,
        );
    }
    let bad = |e: request::RequestError| usage(e.to_string());
    if let (Some(cert), Some(key)) = (&args.vendor_cert, &args.vendor_key) {
        return Ok(Flow::Vendor(
            vendor::from_files(&read(cert)?, &read(key)?, apple, now).map_err(bad)?,
        ));
    }
    if let Some(p12) = &args.vendor_pkcs12 {
        let password = std::env::var(&args.vendor_password_env).unwrap_or_default();
        return Ok(Flow::Vendor(
            vendor::from_pkcs12(&read(p12)?, &password, apple, now).map_err(bad)?,
        ));
    }
    if !apple.is_empty() {
        return Err(usage(
            "--apple-cert completes a vendor certificate's chain: give --vendor-cert/--vendor-key or --vendor-pkcs12 too",
        ));
    }
    if args.mdmcert {
        let url = mdmcert::check_url(&args.mdmcert_url).map_err(|e| usage(e.to_string()))?;
        let api_key = std::env::var(API_KEY_ENV)
            .ok()
            .map(|k| k.trim().to_owned())
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                usage(format!(
                    "{API_KEY_ENV} is not set: mdmcert.download gives each product an API key \
                     (ask its administrators; see docs/push.md), and it is read from the environment only"
                ))
            })?;
        return Ok(Flow::Mdmcert { url, api_key });
    }
    Ok(Flow::CsrOnly)
}

/// What the admin reads after `request`: what happened and the next step.
fn report(args: &RequestArgs, flow: &Flow, out: Option<&Path>, renewal: Option<&str>) -> String {
    let mut text = String::new();
    match renewal {
        Some(topic) => text.push_str(&format!(
            "Renewal: the request reuses the key of the push certificate in use (topic {topic}).\n\
             At Apple's Push Certificates Portal, sign in with the same Apple ID and choose \"Renew\" on that certificate.\n"
        )),
        None => match &args.key_out {
            Some(path) => text.push_str(&format!(
                "New push key written to {} (mode 0600): keep it; the upload needs it (--key).\n",
                path.display()
            )),
            None => text.push_str("New push key created and kept on the server (sealed with the master key).\n"),
        },
    }
    let upload = if args.key_out.is_some() {
        "mdm push-cert upload --cert MDM_Certificate.pem --key <key file>"
    } else {
        "mdm push-cert upload --cert MDM_Certificate.pem"
    };
    match flow {
        Flow::Vendor(vendor) => text.push_str(&format!(
            "Signed push certificate request written to {} (vendor: {}).\n\
             Next: upload it at https://identity.apple.com/pushcert, download the certificate, then run\n  {upload}\n",
            out.map(|p| p.display().to_string()).unwrap_or_default(),
            enrollment::identity::name_to_string(vendor.certificate().subject_name()),
        )),
        Flow::Mdmcert { .. } => text.push_str(&format!(
            "Request sent to mdmcert.download. It mails the signed request to {} as an encrypted attachment\n\
             (mdm_signed_request.<date>.plist.b64.p7). Next:\n  mdm push-cert decrypt <that file>{}\n",
            args.email.as_deref().unwrap_or_default(),
            if args.key_out.is_some() { " --key <key file>" } else { "" },
        )),
        Flow::CsrOnly => text.push_str(&format!(
            "CSR written to {}. Give it to your MDM vendor to sign; upload the request they return at\n\
             https://identity.apple.com/pushcert, then run\n  {upload}\n",
            out.map(|p| p.display().to_string()).unwrap_or_default(),
        )),
    }
    text
}

async fn decrypt(args: DecryptArgs) -> Result<String, Failure> {
    refuse_existing(&args.out)?;
    let file = read(&args.file)?;
    let (key, exchange) = match &args.key {
        Some(path) => read_key_file(&read(path)?)?,
        None => {
            let (store, sealer) = open(&args.serve).await?;
            let kept = push_cert::kept(&store, &sealer).await?.ok_or_else(|| {
                Failure::Failed(
                    "no push key is kept on this server: run `mdm push-cert request --mdmcert` first \
                     (or give --key if the request wrote the key to a file)"
                        .into(),
                )
            })?;
            (kept.key, kept.exchange_cert)
        }
    };
    let request = mdmcert::decrypt_mailed(&file, &key, &exchange)?;
    Staged::write(&args.out, request.as_bytes(), 0o644)?.commit()?;
    Ok(format!(
        "Decrypted: the push certificate request is in {}.\n\
         Next: upload it at https://identity.apple.com/pushcert (Create a Certificate, or Renew for a renewal),\n\
         download the certificate, then run\n  mdm push-cert upload --cert MDM_Certificate.pem{}\n",
        args.out.display(),
        if args.key.is_some() {
            " --key <key file>"
        } else {
            ""
        }
    ))
}

/// The key file of `--key-out`: the push key and the certificate mdmcert.download
/// encrypts its mail to, so that `decrypt --key` can open the mail.
fn key_file_pem(key: &PKey<Private>, exchange: &X509) -> Result<Vec<u8>, Failure> {
    let mut pem = key.private_key_to_pem_pkcs8()?;
    pem.extend(exchange.to_pem()?);
    Ok(pem)
}

fn read_key_file(pem: &[u8]) -> Result<(PKey<Private>, X509), Failure> {
    let key = PKey::private_key_from_pem(pem)
        .map_err(|_| usage("the key file holds no readable PEM private key"))?;
    let exchange = X509::from_pem(pem).map_err(|_| {
        usage("the key file holds no certificate: use the file `mdm push-cert request --key-out` wrote")
    })?;
    if !exchange.public_key()?.public_eq(&key) {
        return Err(usage(
            "the key file's certificate is not for its key: use the file `mdm push-cert request --key-out` wrote",
        ));
    }
    Ok((key, exchange))
}

fn refuse_existing(path: &Path) -> Result<(), Failure> {
    if path.exists() {
        return Err(usage(format!(
            "{} exists; refusing to overwrite it (move it away or choose another name)",
            path.display()
        )));
    }
    Ok(())
}

/// A file written whole under a temporary name next to its destination, and put in
/// place (never over an existing file) only by `commit`; dropped uncommitted, it is
/// removed. So a failed command leaves no half-written file behind.
struct Staged {
    tmp: PathBuf,
    path: PathBuf,
    committed: bool,
}

impl Staged {
    fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<Staged, Failure> {
        use std::io::Write;
        let name = path
            .file_name()
            .ok_or_else(|| usage(format!("{} is not a file name", path.display())))?;
        let mut suffix = [0u8; 6];
        openssl::rand::rand_bytes(&mut suffix)?;
        let tmp = path.with_file_name(format!(
            ".{}.{}.tmp",
            name.to_string_lossy(),
            hex::encode(suffix)
        ));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let staged = Staged {
            tmp: tmp.clone(),
            path: path.to_owned(),
            committed: false,
        };
        let mut file = options
            .open(&tmp)
            .map_err(|e| usage(format!("cannot write {}: {e}", path.display())))?;
        file.write_all(bytes)
            .and_then(|_| file.sync_all())
            .map_err(|e| Failure::Failed(format!("cannot write {}: {e}", path.display())))?;
        Ok(staged)
    }

    fn commit(mut self) -> Result<(), Failure> {
        // A hard link never replaces an existing file, unlike a rename.
        std::fs::hard_link(&self.tmp, &self.path)
            .map_err(|e| Failure::Failed(format!("cannot create {}: {e}", self.path.display())))?;
        self.committed = true;
        let _ = std::fs::remove_file(&self.tmp);
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
