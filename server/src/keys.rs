//! Secrets at rest: the private data folder and database files (created for the
//! owner alone, whatever the umask) and the master key that seals secrets. The
//! server's TLS identity is tls.rs's.

use base64::Engine;
use enrollment::seal::{Sealer, KEY_LEN};
use std::io::Write;
use std::path::{Path, PathBuf};

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
pub(crate) fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
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
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
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
