//! What `--resume` must hold to: the data the run trained on (by fingerprint) and every flag the
//! user typed, compared with the checkpoint's configuration (only `--epochs` may change).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::checkpoint::{DataPrint, Meta};
use crate::config::TrainConfig;
use crate::dataset::Sample;
use crate::shown;

/// `--resume` with settings or data that differ from the checkpoint's.
#[derive(Debug, thiserror::Error)]
#[error("--resume: {0}")]
pub struct ResumeMismatch(pub String);

/// A flag the user gave on the command line: its id (the configuration field) and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GivenFlag {
    /// Field name (clap's id), e.g. `lr` or `weight_decay`.
    pub id: String,
    /// The flag as typed, e.g. `--lr`.
    pub flag: String,
}

/// The fingerprint of a dataset: its samples' classes, names and frame file names, in order.
pub fn data_print(data: &std::path::Path, samples: &[Sample]) -> DataPrint {
    let mut h = Sha256::new();
    for s in samples {
        h.update(s.class.folder().as_bytes());
        h.update(
            s.path
                .file_name()
                .map(|n| n.as_encoded_bytes())
                .unwrap_or_default(),
        );
        for f in &s.frames {
            h.update(b"/");
            h.update(
                f.file_name()
                    .map(|n| n.as_encoded_bytes())
                    .unwrap_or_default(),
            );
        }
        h.update(b"\n");
    }
    DataPrint {
        path: shown(data),
        samples: samples.len(),
        sha256: liveness_core::model_file::hex(&h.finalize()),
    }
}

/// Leaf values of a configuration, by field name (nested groups flattened: their names are
/// unique), to compare what a flag says with what a checkpoint says.
fn leaves(config: &TrainConfig) -> BTreeMap<String, serde_json::Value> {
    fn walk(
        v: serde_json::Value,
        out: &mut BTreeMap<String, serde_json::Value>,
        key: Option<String>,
    ) {
        match (v, key) {
            (serde_json::Value::Object(map), _) => {
                for (k, v) in map {
                    walk(v, out, Some(k));
                }
            }
            (v, Some(k)) => {
                out.insert(k, v);
            }
            (_, None) => {}
        }
    }
    let mut out = BTreeMap::new();
    walk(
        serde_json::to_value(config).unwrap_or_default(),
        &mut out,
        None,
    );
    out
}

/// On resume: every flag given on the command line (but `--epochs`) must agree with the
/// checkpoint's configuration, and the data must be the data it trained on.
pub fn check_resume(
    given: &TrainConfig,
    flags: &[GivenFlag],
    meta: &Meta,
    data: &DataPrint,
) -> Result<(), ResumeMismatch> {
    let (now, saved) = (leaves(given), leaves(&meta.config));
    let differ: Vec<String> = flags
        .iter()
        .filter(|f| f.id != "epochs")
        .filter_map(|f| {
            let (a, b) = (now.get(&f.id)?, saved.get(&f.id)?);
            (a != b).then(|| format!("{} {a} differs from the checkpoint's {b}", f.flag))
        })
        .collect();
    if !differ.is_empty() {
        return Err(ResumeMismatch(format!(
            "{} (a resumed run keeps its settings; only --epochs may change)",
            differ.join("; ")
        )));
    }
    if let Some(saved) = &meta.data
        && (saved.sha256 != data.sha256 || saved.samples != data.samples)
    {
        return Err(ResumeMismatch(format!(
            "--data {} holds {} samples (fingerprint {}), but the run trained on {} with {} samples (fingerprint {})",
            data.path,
            data.samples,
            &data.sha256[..12],
            saved.path,
            saved.samples,
            &saved.sha256[..12]
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_names_each_flag_that_differs() {
        let saved = TrainConfig::default();
        let mut given = saved.clone();
        given.lr = 0.5;
        given.epochs = 9;
        given.optimizer.weight_decay = 0.1;
        let meta = Meta {
            epoch: 1,
            optimizer_step: 1,
            data: Some(DataPrint {
                path: "a".into(),
                samples: 3,
                sha256: "0".repeat(64),
            }),
            ..Meta::for_config(&saved)
        };
        let flag = |id: &str, flag: &str| GivenFlag {
            id: id.into(),
            flag: flag.into(),
        };
        let data = meta.data.clone().unwrap_or_else(|| unreachable!());
        // --epochs may change; --lr and --weight-decay may not.
        assert!(check_resume(&given, &[flag("epochs", "--epochs")], &meta, &data).is_ok());
        let err = check_resume(
            &given,
            &[flag("lr", "--lr"), flag("weight_decay", "--weight-decay")],
            &meta,
            &data,
        )
        .expect_err("differs")
        .to_string();
        assert!(
            err.contains("--lr 0.5") && err.contains("--weight-decay 0.1"),
            "{err}"
        );
        let other = DataPrint {
            path: "b".into(),
            samples: 4,
            sha256: "1".repeat(64),
        };
        let err = check_resume(&saved, &[], &meta, &other)
            .expect_err("other data")
            .to_string();
        assert!(err.contains("--data b"), "{err}");
    }
}
