//! `report`: the cross-validation summary of several runs (one per fold of held-out subjects).
//!
//! The decision threshold is chosen on validation data only: at the equal-error point of all the
//! folds' validation scores pooled (each score comes from a model that never saw that person).
//! Each fold is then measured at that one threshold; the summary gives mean and standard
//! deviation over folds, the pooled confusion matrix, the ROC curves and each fold's training
//! curves as PNG.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use liveness_core::metrics::{equal_error_rate, roc_curve};
use liveness_core::{Report, ScoredSample, evaluate};
use serde::Serialize;

use crate::plots;
use crate::scoring::ScoreLine;
use crate::train::read_records;

/// Mean and sample standard deviation of a figure over folds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    /// Mean over folds.
    pub mean: f64,
    /// Sample standard deviation over folds (0 for one fold).
    pub std: f64,
    /// Folds that had the figure.
    pub folds: usize,
}

fn spread(values: impl Iterator<Item = Option<f64>>) -> Option<Spread> {
    let v: Vec<f64> = values.flatten().collect();
    if v.is_empty() {
        return None;
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64
    } else {
        0.0
    };
    Some(Spread {
        mean,
        std: var.sqrt(),
        folds: v.len(),
    })
}

/// Reads one figure of a report.
type Figure = fn(&Report) -> Option<f64>;

/// The whole report.
#[derive(Debug, Serialize)]
pub struct CrossValidation {
    /// Threshold used for every fold.
    pub threshold: f32,
    /// How it was chosen.
    pub threshold_rule: String,
    /// Each fold's run folder and metrics at the threshold.
    pub folds: Vec<(PathBuf, Report)>,
    /// Mean/std over folds of each figure.
    pub summary: BTreeMap<String, Spread>,
    /// All folds' validation scores pooled, at the threshold.
    pub pooled: Report,
}

fn read_scores(run: &Path) -> Result<Vec<ScoredSample>> {
    let path = run.join("val_scores.jsonl");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {} (is {} a finished run?)",
            path.display(),
            run.display()
        )
    })?;
    text.lines()
        .enumerate()
        .map(|(k, l)| {
            let line: ScoreLine = serde_json::from_str(l)
                .with_context(|| format!("{} line {}", path.display(), k + 1))?;
            Ok(ScoredSample {
                class: line.class,
                spoof: line.spoof,
            })
        })
        .collect()
}

/// Builds the report of `runs`, writes `report.json`, `roc.png` and `fold-<k>-training.png`
/// into `out`, and returns it.
pub fn cross_validate(
    runs: &[PathBuf],
    threshold: Option<f32>,
    out: &Path,
) -> Result<CrossValidation> {
    if runs.is_empty() {
        bail!("--runs needs at least one run folder");
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let scores: Vec<Vec<ScoredSample>> =
        runs.iter().map(|r| read_scores(r)).collect::<Result<_>>()?;
    let pooled: Vec<ScoredSample> = scores.iter().flatten().copied().collect();
    let (threshold, threshold_rule) = match threshold {
        Some(t) => (t, "given".to_owned()),
        None => {
            let (_, t) = equal_error_rate(&pooled).context(
                "the pooled validation scores need live and attack samples to choose a threshold",
            )?;
            (
                t,
                "equal-error point of the pooled out-of-fold validation scores".to_owned(),
            )
        }
    };
    let folds: Vec<(PathBuf, Report)> = runs
        .iter()
        .cloned()
        .zip(scores.iter().map(|s| evaluate(s, threshold)))
        .collect();
    let mut summary = BTreeMap::new();
    let figures: [(&str, Figure); 6] = [
        ("apcer_max", |r| r.apcer_max),
        ("bpcer", |r| r.bpcer),
        ("acer", |r| r.acer),
        ("eer", |r| r.eer),
        ("roc_auc", |r| r.roc_auc),
        ("accuracy", |r| r.accuracy),
    ];
    for (name, get) in figures {
        if let Some(s) = spread(folds.iter().map(|(_, r)| get(r))) {
            summary.insert(name.to_owned(), s);
        }
    }
    let classes: std::collections::BTreeSet<_> = folds
        .iter()
        .flat_map(|(_, r)| r.apcer.keys().copied())
        .collect();
    for c in classes {
        if let Some(s) = spread(folds.iter().map(|(_, r)| r.apcer.get(&c).copied())) {
            summary.insert(format!("apcer_{c}"), s);
        }
    }
    let report = CrossValidation {
        threshold,
        threshold_rule,
        folds,
        summary,
        pooled: evaluate(&pooled, threshold),
    };

    let curves: Vec<(String, Vec<(f64, f64)>)> = runs
        .iter()
        .zip(&scores)
        .enumerate()
        .map(|(k, (_, s))| (format!("fold {}", k + 1), roc_curve(s)))
        .collect();
    plots::roc_curves(
        &curves,
        "ROC, held-out subjects per fold",
        &out.join("roc.png"),
    )?;
    for (k, run) in runs.iter().enumerate() {
        let records = read_records(run)?;
        plots::training_curves(
            &records,
            &format!("fold {}", k + 1),
            &out.join(format!("fold-{}-training.png", k + 1)),
        )?;
    }
    crate::checkpoint::write_atomic(
        &out.join("report.json"),
        &serde_json::to_vec_pretty(&report)?,
    )?;
    Ok(report)
}

/// The report as a Markdown table.
pub fn markdown(r: &CrossValidation) -> String {
    let pct = |x: Option<f64>| x.map_or("n/a".to_owned(), |v| format!("{:.2}", 100.0 * v));
    let mut s = format!("Threshold {:.4} ({}).\n\n", r.threshold, r.threshold_rule);
    s += "| fold | validation subjects' run | samples | APCER max % | BPCER % | ACER % | EER % | ROC AUC |\n|---|---|---|---|---|---|---|---|\n";
    for (k, (run, rep)) in r.folds.iter().enumerate() {
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            k + 1,
            run.display(),
            rep.samples,
            pct(rep.apcer_max),
            pct(rep.bpcer),
            pct(rep.acer),
            pct(rep.eer),
            rep.roc_auc.map_or("n/a".into(), |v| format!("{v:.4}"))
        );
    }
    let get = |k: &str, scale: f64| {
        r.summary.get(k).map_or("n/a".to_owned(), |v| {
            format!("{:.2} ± {:.2}", scale * v.mean, scale * v.std)
        })
    };
    s += &format!(
        "| mean ± std | | | {} | {} | {} | {} | {} |\n",
        get("apcer_max", 100.0),
        get("bpcer", 100.0),
        get("acer", 100.0),
        get("eer", 100.0),
        get("roc_auc", 1.0)
    );
    s += &format!(
        "\nPooled confusion matrix at the threshold:\n\n```\n{}\n```\n",
        r.pooled.confusion
    );
    s
}
