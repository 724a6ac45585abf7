//! Secrets at rest: the private data folder and database files (created for the
//! owner alone, whatever the umask), the master key that seals secrets, and the
//! server's TLS identity.

use base64::Engine;
use enrollment::seal::{Sealer, KEY_LEN};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509Builder, X509NameBuilder};
use std::io::Write;
use std::path::{Path, PathBuf};

const TLS_KEY_PURPOSE: &str = "server.tls_key";
/// The TLS key is a file, not a row: one per data folder, bound to its file name.
const TLS_KEY_ROW: &str = "tls/server.key.sealed";

/// Lifetime of the self-signed certificate: within the 366 days that Mozilla's
/// intermediate TLS configuration (and browsers) accept for a server certificate.
const SELF_SIGNED_LIFETIME_DAYS: u32 = 365;
/// A self-signed certificate this close to its expiry is replaced at start-up.
const RENEW_DAYS_BEFORE_EXPIRY: u32 = 30;

/// Whether the self-signed certificate in `pem` can be served on: valid for `days`
/// more, and no longer-lived than clients accept (earlier releases made 825-day ones).
fn still_valid_for(pem: &[u8], days: u32) -> anyhow::Result<bool> {
    let cert = openssl::x509::X509::from_pem(pem)?;
    let horizon = Asn1Time::days_from_now(days)?;
    let lifetime = cert.not_before().diff(cert.not_after())?;
    Ok(cert.not_after() > horizon && lifetime.days <= SELF_SIGNED_LIFETIME_DAYS as i32 + 1)
}

/// Makes sure the data folder exists and only its owner can read or enter it. A
/// missing one is created 0700 (whatever the umask); an existing one that others can
/// read or enter is refused, as a readable master key file is: it holds the
/// database, the master key and the TLS key.
pub fn private_data_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::metadata(dir) {
        Ok(meta) => {
            if !meta.is_dir() {
                anyhow::bail!("data folder {} is not a folder", dir.display());
            }
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = meta.permissions().mode();
                if mode & 0o077 != 0 {
                    anyhow::bail!(
                        "data folder {} is readable by others (mode {:o}); it holds the database and keys: run chmod 700 on it",
                        dir.display(),
                        mode & 0o777
                    );
                }
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_private_dir(dir),
        Err(e) => anyhow::bail!("cannot read data folder {}: {e}", dir.display()),
    }
}

/// Creates `dir` (and missing parents) with mode 0700 if it does not exist yet.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| anyhow::anyhow!("cannot create folder {}: {e}", dir.display()))?;
    // The mode given to mkdir is narrowed by the umask, never widened; setting it
    // again makes it exactly 0700 whatever the umask was.
    set_mode(dir, 0o700)
}

/// Creates the SQLite database file of `url` (mode 0600) before SQLite opens it, so
/// that the database and its -wal and -shm files (which SQLite creates with the
/// database file's mode) are the owner's alone; an existing database file, -wal or
/// -shm that others can read (made by an earlier release) is narrowed to 0600.
/// Does nothing for PostgreSQL or an in-memory database.
pub fn private_sqlite_file(url: &str) -> anyhow::Result<()> {
    let Some(path) = sqlite_path(url) else {
        return Ok(());
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(&path) {
        Ok(_) => set_mode(&path, 0o600)?,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => anyhow::bail!("cannot create database file {}: {e}", path.display()),
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        narrow_to_owner(&file)?;
    }
    Ok(())
}

/// The file an `sqlite:` URL names, unless it is in memory or opened read-only.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = path.is_empty()
        || path == ":memory:"
        || query
            .split('&')
            .any(|p| p == "mode=memory" || p == "mode=ro");
    (!in_memory).then(|| PathBuf::from(path))
}

/// Narrows an existing file that others can read to 0600.
fn narrow_to_owner(file: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::metadata(file) else {
            return Ok(());
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            set_mode(file, 0o600)?;
            tracing::warn!(path = %file.display(), old_mode = format!("{mode:o}"), "database file was readable by others: narrowed to 0600");
        }
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| anyhow::anyhow!("cannot set mode {mode:o} on {}: {e}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Writes a file that only the owner can read (0600, whatever the umask).
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    set_mode(path, 0o600)
}

/// Loads the master key: `MDM_MASTER_KEY` (base64) if set, else the key file, which
/// is created (mode 0600) when missing. A key file others can read is refused.
pub fn load_master_key(file: &Path) -> anyhow::Result<Sealer> {
    if let Ok(b64) = std::env::var("MDM_MASTER_KEY") {
        let key = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| anyhow::anyhow!("MDM_MASTER_KEY is not base64"))?;
        return Ok(Sealer::new(&key)?);
    }
    if file.exists() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(file)?.permissions().mode();
            if mode & 0o077 != 0 {
                anyhow::bail!(
                    "master key file {} is readable by others (mode {:o}); run chmod 600 on it",
                    file.display(),
                    mode & 0o777
                );
            }
        }
        let text = std::fs::read_to_string(file)?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| anyhow::anyhow!("master key file {} is not base64", file.display()))?;
        return Ok(Sealer::new(&key)?);
    }
    let key: [u8; KEY_LEN] = Sealer::generate_key();
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(file)?;
    writeln!(
        f,
        "{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )?;
    tracing::info!(path = %file.display(), "created a new master key; back it up: without it sealed secrets are lost");
    Ok(Sealer::new(&key)?)
}

/// The TLS certificate and key to serve HTTPS with: the admin's files, or a
/// self-signed pair made once in the data folder (key sealed with the master key).
pub fn tls_identity(
    given: Option<&(PathBuf, PathBuf)>,
    data_dir: &Path,
    public_host: &str,
    sealer: &Sealer,
) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    if let Some((cert, key)) = given {
        return Ok((std::fs::read(cert)?, std::fs::read(key)?));
    }
    let dir = data_dir.join("tls");
    let cert_path = dir.join("server.pem");
    let key_path = dir.join("server.key.sealed");
    if cert_path.exists() && key_path.exists() {
        let cert_pem = std::fs::read(&cert_path)?;
        if still_valid_for(&cert_pem, RENEW_DAYS_BEFORE_EXPIRY)? {
            let key = sealer.open(TLS_KEY_PURPOSE, TLS_KEY_ROW, &std::fs::read(&key_path)?)?;
            return Ok((cert_pem, key));
        }
        tracing::info!(path = %cert_path.display(), "the self-signed TLS certificate expires within {RENEW_DAYS_BEFORE_EXPIRY} days: making a new one");
    }
    create_private_dir(&dir)?;
    let group = openssl::ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(openssl::ec::EcKey::generate(&group)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, public_host)?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "MDM server (self-signed)")?;
    let name = name.build();
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(&key)?;
    let not_before = Asn1Time::days_from_now(0)?;
    let not_after = Asn1Time::days_from_now(SELF_SIGNED_LIFETIME_DAYS)?;
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;
    b.append_extension(BasicConstraints::new().build()?)?;
    b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
    b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
    let mut san = SubjectAlternativeName::new();
    san.dns(public_host).dns("localhost").ip("127.0.0.1");
    let san = san.build(&b.x509v3_context(None, None))?;
    b.append_extension(san)?;
    b.sign(&key, MessageDigest::sha256())?;
    let cert_pem = b.build().to_pem()?;
    let key_pem = key.private_key_to_pem_pkcs8()?;
    write_private(&cert_path, &cert_pem)?;
    write_private(
        &key_path,
        &sealer.seal(TLS_KEY_PURPOSE, TLS_KEY_ROW, &key_pem)?,
    )?;
    tracing::info!(path = %cert_path.display(), "created a self-signed TLS certificate; give --tls-cert/--tls-key for a trusted one");
    Ok((cert_pem, key_pem))
}
