//! What the server keeps on disk — its audit log, signing keys, operator API key — is its
//! operator's alone: folders are created 0700, files 0600, and a secret file that others can
//! read is refused.

use std::path::Path;

/// A secret file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PrivateFileError {
    /// It cannot be read.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Others than its owner may read it.
    #[error("{path} can be read by others (mode {mode:o}); make it private: chmod 600 {path}")]
    Exposed { path: String, mode: u32 },
}

/// Creates `dir` and its missing parents, 0700.
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Writes a new file (never replaces one) that only its owner can read.
pub fn create_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    std::io::Write::write_all(&mut file, bytes)?;
    file.sync_all()
}

/// Refuses a secret file that others than its owner may read.
pub fn check(path: &Path) -> Result<(), PrivateFileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|source| PrivateFileError::Io {
                path: path.display().to_string(),
                source,
            })?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(PrivateFileError::Exposed {
                path: path.display().to_string(),
                mode,
            });
        }
    }
    let _ = path;
    Ok(())
}
