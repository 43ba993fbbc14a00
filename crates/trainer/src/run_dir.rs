//! A run folder and everything written into it: checkpoints' paths, `metrics.jsonl` (one record
//! per epoch), `split.json`, `val_scores.jsonl`, `training.png`, and the atomic write that all of
//! them (and exports) go through. Every error names the file.

use std::io::Write;
use std::path::{Path, PathBuf};

use liveness_core::Report;
use serde::{Deserialize, Serialize};

use crate::shown;

/// What can go wrong with a run folder's files.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    /// A file could not be written (read-only folder, full disk…).
    #[error("cannot write {}: {source}", shown(path))]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", shown(path))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The run folder could not be created.
    #[error("cannot create run folder {}: {source}", shown(path))]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A record that is not valid JSON.
    #[error("{} line {line}: {source}", shown(path))]
    Record {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    /// Something that cannot be encoded as JSON (a bug).
    #[error("cannot encode {what} as JSON: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A fresh run into a folder that holds another run.
    #[error(
        "run folder {} already holds a run (last.safetensors): add --resume to continue it, or choose another --out",
        shown(.0)
    )]
    Occupied(PathBuf),
}

/// Writes `bytes` to `path` so that readers see the old file or the new one, never a part:
/// a temporary file in the same folder, fsync, rename, fsync of the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RunDirError> {
    let failed = |source| RunDirError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| {
        failed(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a file path",
        ))
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself must reach the disk.
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(failed)
}

/// JSON of `value`, pretty-printed.
pub fn json_bytes<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, RunDirError> {
    serde_json::to_vec_pretty(value).map_err(|source| RunDirError::Encode { what, source })
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch number (1-based).
    pub epoch: usize,
    /// Mean training loss of the epoch (`None` if it had no step).
    pub train_loss: Option<f64>,
    /// Mean validation loss.
    pub val_loss: Option<f64>,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Wall time of the epoch (training and validation), seconds.
    pub seconds: f64,
    /// Validation metrics.
    pub validation: Report,
}

/// A run folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// The run folder at `root` (nothing is created yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunDir { root: root.into() }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The latest checkpoint.
    pub fn last(&self) -> PathBuf {
        self.root.join("last.safetensors")
    }

    /// The checkpoint after `epoch`.
    pub fn epoch(&self, epoch: usize) -> PathBuf {
        self.root.join(format!("e{epoch}.safetensors"))
    }

    /// One record per finished epoch.
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }

    /// The train/validation split.
    pub fn split(&self) -> PathBuf {
        self.root.join("split.json")
    }

    /// The latest epoch's validation scores, one JSON line per sample.
    pub fn val_scores(&self) -> PathBuf {
        self.root.join("val_scores.jsonl")
    }

    /// Loss, ACER and EER per epoch.
    pub fn training_png(&self) -> PathBuf {
        self.root.join("training.png")
    }

    /// Whether the folder holds a run.
    pub fn holds_run(&self) -> bool {
        self.last().exists()
    }

    /// Creates the folder and checks that it can be written (a read-only folder is named now,
    /// not after the first epoch).
    pub fn create(&self) -> Result<(), RunDirError> {
        std::fs::create_dir_all(&self.root).map_err(|source| RunDirError::Create {
            path: self.root.clone(),
            source,
        })?;
        write_atomic(&self.root.join(".write-check"), b"")?;
        let _ = std::fs::remove_file(self.root.join(".write-check"));
        Ok(())
    }

    /// Appends one epoch's record to `metrics.jsonl`.
    pub fn append_record(&self, record: &EpochRecord) -> Result<(), RunDirError> {
        let path = self.metrics();
        let failed = |source| RunDirError::Write {
            path: path.clone(),
            source,
        };
        let line = serde_json::to_string(record).map_err(|source| RunDirError::Encode {
            what: "an epoch record",
            source,
        })?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(failed)?;
        writeln!(f, "{line}").map_err(failed)
    }

    /// The records of `metrics.jsonl`.
    pub fn records(&self) -> Result<Vec<EpochRecord>, RunDirError> {
        read_records(&self.root)
    }

    /// On resume, drops records of epochs after the checkpoint (written before a crash).
    pub fn keep_records_up_to(&self, epoch: usize) -> Result<(), RunDirError> {
        let Ok(text) = std::fs::read_to_string(self.metrics()) else {
            return Ok(());
        };
        let kept: String = text
            .lines()
            .filter(|l| serde_json::from_str::<EpochRecord>(l).is_ok_and(|r| r.epoch <= epoch))
            .map(|l| format!("{l}\n"))
            .collect();
        write_atomic(&self.metrics(), kept.as_bytes())
    }
}

/// The records of a run folder's `metrics.jsonl`.
pub fn read_records(run: &Path) -> Result<Vec<EpochRecord>, RunDirError> {
    read_jsonl(&run.join("metrics.jsonl"))
}

/// Every line of a JSON-lines file.
pub fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, RunDirError> {
    let text = std::fs::read_to_string(path).map_err(|source| RunDirError::Read {
        path: path.to_owned(),
        source,
    })?;
    text.lines()
        .enumerate()
        .map(|(k, l)| {
            serde_json::from_str(l).map_err(|source| RunDirError::Record {
                path: path.to_owned(),
                line: k + 1,
                source,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder no one may create files in — root included, so the test means something as
    /// root too (chmod does not stop root): under /proc/self.
    #[cfg(target_os = "linux")]
    #[test]
    fn an_unwritable_folder_is_named() {
        let dir = std::path::Path::new("/proc/self/liveness-run");
        let err = RunDir::new(dir).create().expect_err("unwritable");
        assert!(
            err.to_string().contains(&dir.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn atomic_writes_replace_whole_files() {
        let tmp = tempfile::tempdir().expect("tmp");
        let p = tmp.path().join("f.json");
        write_atomic(&p, b"one").expect("write");
        write_atomic(&p, b"two").expect("write");
        assert_eq!(std::fs::read(&p).expect("read"), b"two");
        assert_eq!(
            std::fs::read_dir(tmp.path()).expect("ls").count(),
            1,
            "no temp file left"
        );
        let err = write_atomic(&tmp.path().join("no/such/dir/f"), b"x").expect_err("missing dir");
        assert!(err.to_string().contains("no/such/dir"), "{err}");
    }
}
