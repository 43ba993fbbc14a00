//! `report`: the cross-validation summary of several runs (one per fold of held-out subjects).
//!
//! The decision threshold is chosen on validation data only, by a [`ThresholdRule`] on all the
//! folds' validation scores pooled (each score comes from a model that never saw that person):
//! the equal-error point, or a BPCER target raised by the folds' spread.
//! Each fold is then measured at that one threshold; the summary gives mean and standard
//! deviation over folds, the pooled confusion matrix, the ROC curves and each fold's training
//! curves as PNG.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use liveness_core::metrics::{equal_error_rate, roc_curve, threshold_for_bpcer};
use liveness_core::{Report, ScoredSample, evaluate};
use serde::Serialize;

use crate::plots::{self, PlotError};
use crate::run_dir::{RunDirError, json_bytes, read_jsonl, read_records, write_atomic};
use crate::scoring::ScoreLine;
use crate::shown;

/// Why a report cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// No run folder given.
    #[error("--runs needs at least one run folder")]
    NoRuns,
    /// A run folder without its records (not a finished run).
    #[error("{source} (is {} a finished run?)", shown(run))]
    Run {
        run: PathBuf,
        #[source]
        source: RunDirError,
    },
    /// The pooled scores cannot give a threshold.
    #[error("the pooled validation scores need live and attack samples to choose a threshold")]
    OneSided,
    /// `--threshold` outside (0, 1).
    #[error("--threshold {0} is not allowed: strictly between 0 and 1")]
    Threshold(f32),
    /// The output folder cannot be created.
    #[error("cannot create {}: {source}", shown(path))]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Writing the report failed.
    #[error(transparent)]
    Write(#[from] RunDirError),
    /// A plot failed.
    #[error(transparent)]
    Plot(#[from] PlotError),
}

type Result<T> = std::result::Result<T, ReportError>;

/// `report`: the cross-validation summary of fold runs.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Run folders, one per fold (each with val_scores.jsonl and metrics.jsonl).
    #[arg(long, num_args = 1.., required = true)]
    pub runs: Vec<PathBuf>,
    /// Folder for report.json and the plots.
    #[arg(long)]
    pub out: PathBuf,
    /// Use this threshold instead of the rule's.
    #[arg(long)]
    pub threshold: Option<f32>,
    /// How the threshold is chosen on the out-of-fold scores: `eer` (the equal-error point of
    /// the pooled scores), `median-eer` (the median of the folds' own equal-error points, in logit
    /// space: one fold whose scores shifted does not move it) or `bpcer=T` (at most a share T of
    /// live people rejected, e.g. 0.02, then raised by the spread of the folds' own thresholds).
    #[arg(long, default_value = "eer")]
    pub threshold_rule: ThresholdRule,
    /// Only the validation samples whose path matches this regular expression (e.g. the
    /// recorded samples apart from synthetic ones, or one synthetic family).
    #[arg(long)]
    pub only: Option<regex::Regex>,
}

/// How `report` chooses the decision threshold on validation scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThresholdRule {
    /// The equal-error point of the pooled scores.
    Eer,
    /// The median of the folds' own equal-error points, in logit space (for an even number of
    /// folds, the mean of the middle two). Pooling lets one fold whose scores moved with the
    /// session drag the point; the median does not follow it.
    MedianEer,
    /// The pooled live scores' `1 - target` quantile (BPCER ≤ target), plus one standard
    /// deviation of the folds' own such thresholds, in logit space.
    Bpcer {
        /// Share of live samples that may be rejected, in `[0, 1)`.
        target: f64,
    },
}

impl std::str::FromStr for ThresholdRule {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let bad = || {
            format!(
                "{s:?} is not a rule: use eer, median-eer or bpcer=T with T in [0, 1), e.g. bpcer=0.02"
            )
        };
        match s.split_once('=') {
            None if s == "eer" => Ok(ThresholdRule::Eer),
            None if s == "median-eer" => Ok(ThresholdRule::MedianEer),
            Some(("bpcer", t)) => {
                let target: f64 = t.parse().map_err(|_| bad())?;
                if (0.0..1.0).contains(&target) {
                    Ok(ThresholdRule::Bpcer { target })
                } else {
                    Err(bad())
                }
            }
            _ => Err(bad()),
        }
    }
}

/// The nearest threshold a manifest can hold, strictly inside (0, 1): saturated scores put a
/// rule's point at 0 or 1 (or +inf).
fn holdable(t: f32) -> f32 {
    let below_one = f32::from_bits(1.0f32.to_bits() - 1);
    if t.is_finite() {
        t.clamp(f32::MIN_POSITIVE, below_one)
    } else {
        below_one
    }
}

fn logit(p: f32) -> f64 {
    let p = f64::from(holdable(p));
    (p / (1.0 - p)).ln()
}

/// The inverse of [`logit`].
fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl ThresholdRule {
    /// The threshold on the pooled scores of `folds`, and the rule in words with its figures.
    pub fn choose(&self, folds: &[Vec<ScoredSample>]) -> Result<(f32, String)> {
        let pooled: Vec<ScoredSample> = folds.iter().flatten().copied().collect();
        match *self {
            ThresholdRule::Eer => {
                let (_, t) = equal_error_rate(&pooled).ok_or(ReportError::OneSided)?;
                Ok((
                    holdable(t),
                    "equal-error point of the pooled out-of-fold validation scores".to_owned(),
                ))
            }
            ThresholdRule::MedianEer => {
                let mut per_fold: Vec<f64> = folds
                    .iter()
                    .filter_map(|f| equal_error_rate(f))
                    .map(|(_, t)| logit(t))
                    .collect();
                if per_fold.is_empty() {
                    return Err(ReportError::OneSided);
                }
                per_fold.sort_by(f64::total_cmp);
                let n = per_fold.len();
                let median = (per_fold[(n - 1) / 2] + per_fold[n / 2]) / 2.0;
                let t = sigmoid(median);
                Ok((
                    holdable(t as f32),
                    format!(
                        "median of the {n} folds' own equal-error points in logit space (out-of-fold validation scores)"
                    ),
                ))
            }
            ThresholdRule::Bpcer { target } => {
                let t = threshold_for_bpcer(&pooled, target).ok_or(ReportError::OneSided)?;
                let per_fold: Vec<f64> = folds
                    .iter()
                    .filter_map(|f| threshold_for_bpcer(f, target))
                    .map(logit)
                    .collect();
                let margin = spread(per_fold.iter().map(|&v| Some(v))).map_or(0.0, |s| s.std);
                let raised = sigmoid(logit(t) + margin);
                Ok((
                    holdable(raised as f32),
                    format!(
                        "BPCER <= {:.1}% on the pooled out-of-fold live scores ({:.6}), raised by one standard deviation of the {} folds' own such thresholds in logit space (+{margin:.3})",
                        100.0 * target,
                        holdable(t),
                        per_fold.len()
                    ),
                ))
            }
        }
    }
}

fn fmt_rate(v: Option<f64>) -> String {
    v.map_or("n/a".to_owned(), |x| format!("{:.2}%", 100.0 * x))
}

/// The ISO metrics and the confusion matrix as text.
pub fn report_lines(v: &Report) -> String {
    let per_class: Vec<String> = v
        .apcer
        .iter()
        .map(|(c, a)| format!("APCER {c} {:.2}%", 100.0 * a))
        .collect();
    format!(
        "  {} | APCER max {} BPCER {} ACER {} | EER {} AUC {} (threshold {})\n{}",
        per_class.join(", "),
        fmt_rate(v.apcer_max),
        fmt_rate(v.bpcer),
        fmt_rate(v.acer),
        fmt_rate(v.eer),
        v.roc_auc.map_or("n/a".to_owned(), |x| format!("{x:.4}")),
        v.threshold,
        v.confusion
    )
}

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

/// One figure of a fold's report, as both report formats show it.
struct Figure {
    /// Its key in [`CrossValidation::summary`] (and `report.json`).
    key: &'static str,
    /// Its column in the Markdown table (`None`: JSON only).
    column: Option<&'static str>,
    /// A rate, shown in percent; else a plain number (ROC AUC).
    percent: bool,
    /// Reads it.
    get: fn(&Report) -> Option<f64>,
}

/// Every figure of a fold, in the table's order: the one list both formats follow.
const FIGURES: [Figure; 6] = [
    Figure::rate("apcer_max", Some("APCER max %"), |r| r.apcer_max),
    Figure::rate("bpcer", Some("BPCER %"), |r| r.bpcer),
    Figure::rate("acer", Some("ACER %"), |r| r.acer),
    Figure::rate("eer", Some("EER %"), |r| r.eer),
    Figure {
        key: "roc_auc",
        column: Some("ROC AUC"),
        percent: false,
        get: |r| r.roc_auc,
    },
    Figure::rate("accuracy", None, |r| r.accuracy),
];

impl Figure {
    /// A rate (shown in percent).
    const fn rate(
        key: &'static str,
        column: Option<&'static str>,
        get: fn(&Report) -> Option<f64>,
    ) -> Figure {
        Figure {
            key,
            column,
            percent: true,
            get,
        }
    }

    /// A fold's value as the table shows it.
    fn cell(&self, r: &Report) -> String {
        match ((self.get)(r), self.percent) {
            (None, _) => "n/a".to_owned(),
            (Some(v), true) => format!("{:.2}", 100.0 * v),
            (Some(v), false) => format!("{v:.4}"),
        }
    }

    /// The folds' mean ± std as the table shows it.
    fn spread_cell(&self, summary: &BTreeMap<String, Spread>) -> String {
        let scale = if self.percent { 100.0 } else { 1.0 };
        summary.get(self.key).map_or("n/a".to_owned(), |v| {
            format!("{:.2} ± {:.2}", scale * v.mean, scale * v.std)
        })
    }
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct CrossValidation {
    /// Threshold used for every fold.
    pub threshold: f32,
    /// How it was chosen.
    pub threshold_rule: String,
    /// The samples kept (`--only`), when not all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub only: Option<String>,
    /// Each fold's run folder and metrics at the threshold.
    pub folds: Vec<(PathBuf, Report)>,
    /// Mean/std over folds of each figure.
    pub summary: BTreeMap<String, Spread>,
    /// All folds' validation scores pooled, at the threshold.
    pub pooled: Report,
}

fn read_scores(run: &Path, only: Option<&regex::Regex>) -> Result<Vec<ScoredSample>> {
    let lines: Vec<ScoreLine> =
        read_jsonl(&run.join("val_scores.jsonl")).map_err(|source| ReportError::Run {
            run: run.to_owned(),
            source,
        })?;
    Ok(lines
        .iter()
        .filter(|l| only.is_none_or(|r| r.is_match(&l.path)))
        .map(ScoreLine::scored)
        .collect())
}

/// Builds the report of `runs`, writes `report.json`, `roc.png` and `fold-<k>-training.png`
/// into `out`, and returns it.
pub fn cross_validate(a: &ReportArgs) -> Result<CrossValidation> {
    let (runs, threshold, out) = (&a.runs, a.threshold, a.out.as_path());
    if runs.is_empty() {
        return Err(ReportError::NoRuns);
    }
    if let Some(t) = threshold
        && !liveness_core::limits::threshold_ok(t)
    {
        return Err(ReportError::Threshold(t));
    }
    std::fs::create_dir_all(out).map_err(|source| ReportError::Create {
        path: out.to_owned(),
        source,
    })?;
    let scores: Vec<Vec<ScoredSample>> = runs
        .iter()
        .map(|r| read_scores(r, a.only.as_ref()))
        .collect::<Result<_>>()?;
    let (threshold, threshold_rule) = match threshold {
        Some(t) => (t, "given".to_owned()),
        None => a.threshold_rule.choose(&scores)?,
    };
    let folds: Vec<(PathBuf, Report)> = runs
        .iter()
        .cloned()
        .zip(scores.iter().map(|s| evaluate(s, threshold)))
        .collect();
    let summary = summarize(&folds);
    let report = CrossValidation {
        threshold,
        threshold_rule,
        only: a.only.as_ref().map(|r| r.as_str().to_owned()),
        folds,
        summary,
        pooled: evaluate(&scores.concat(), threshold),
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
        let records = read_records(run).map_err(|source| ReportError::Run {
            run: run.clone(),
            source,
        })?;
        plots::training_curves(
            &records,
            &format!("fold {}", k + 1),
            &out.join(format!("fold-{}-training.png", k + 1)),
        )?;
    }
    write_atomic(
        &out.join("report.json"),
        &json_bytes("the report", &report)?,
    )?;
    Ok(report)
}

/// Mean and std over the folds of every figure, and of each attack class's APCER.
fn summarize(folds: &[(PathBuf, Report)]) -> BTreeMap<String, Spread> {
    let mut summary = BTreeMap::new();
    for figure in &FIGURES {
        if let Some(s) = spread(folds.iter().map(|(_, r)| (figure.get)(r))) {
            summary.insert(figure.key.to_owned(), s);
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
    summary
}

/// The report as a Markdown table.
pub fn markdown(r: &CrossValidation) -> String {
    let mut s = format!("Threshold {:.4} ({}).\n\n", r.threshold, r.threshold_rule);
    if let Some(only) = &r.only {
        s += &format!("Samples whose path matches `{only}` only.\n\n");
    }
    let columns: Vec<&Figure> = FIGURES.iter().filter(|f| f.column.is_some()).collect();
    let row = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    let mut header = vec![
        "fold".to_owned(),
        "validation subjects' run".into(),
        "samples".into(),
    ];
    header.extend(columns.iter().filter_map(|f| f.column).map(str::to_owned));
    s += &row(header.clone());
    s += &row(header.iter().map(|_| "---".to_owned()).collect());
    for (k, (run, rep)) in r.folds.iter().enumerate() {
        let mut cells = vec![(k + 1).to_string(), shown(run), rep.samples.to_string()];
        cells.extend(columns.iter().map(|f| f.cell(rep)));
        s += &row(cells);
    }
    let mut mean = vec!["mean ± std".to_owned(), String::new(), String::new()];
    mean.extend(columns.iter().map(|f| f.spread_cell(&r.summary)));
    s += &row(mean);
    s += &format!(
        "\nPooled confusion matrix at the threshold:\n\n```\n{}\n```\n",
        r.pooled.confusion
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use liveness_core::AttackClass;

    fn fold(live: &[f32], attack: &[f32]) -> Vec<ScoredSample> {
        live.iter()
            .map(|&spoof| ScoredSample {
                class: AttackClass::Real,
                spoof,
            })
            .chain(attack.iter().map(|&spoof| ScoredSample {
                class: AttackClass::Printed,
                spoof,
            }))
            .collect()
    }

    #[test]
    fn rules_parse_and_refuse_what_they_cannot_mean() {
        assert_eq!("eer".parse(), Ok(ThresholdRule::Eer));
        assert_eq!("median-eer".parse(), Ok(ThresholdRule::MedianEer));
        assert_eq!(
            "bpcer=0.02".parse(),
            Ok(ThresholdRule::Bpcer { target: 0.02 })
        );
        for bad in ["bpcer=1", "bpcer=-0.1", "bpcer=x", "apcer=0.1", "EER", ""] {
            let e = bad.parse::<ThresholdRule>().expect_err(bad);
            assert!(e.contains("bpcer=T"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_bpcer_rule_keeps_its_target_and_adds_the_folds_spread() {
        let live: Vec<f32> = (0..50).map(|i| i as f32 / 100.0).collect(); // 0.00 .. 0.49
        let same = [fold(&live, &[0.9]), fold(&live, &[0.95])];
        let rule = ThresholdRule::Bpcer { target: 0.02 };
        let (t, words) = rule.choose(&same).expect("threshold");
        // 2 % of 100 pooled live scores: the two highest (0.49, 0.49) may be rejected; folds
        // alike add no margin.
        assert!(t > 0.48 && t <= 0.49, "{t}");
        assert!(words.contains("+0.000"), "{words}");
        // Folds whose live scores differ raise the threshold above the pooled one.
        let shifted: Vec<f32> = live.iter().map(|v| v + 0.3).collect();
        let apart = [fold(&live, &[0.9]), fold(&shifted, &[0.95])];
        let (pooled, _) = ThresholdRule::Bpcer { target: 0.02 }
            .choose(&[apart.concat()])
            .expect("pooled");
        let (t, words) = rule.choose(&apart).expect("threshold");
        assert!(t > pooled, "{t} vs {pooled}: {words}");
        assert!(
            evaluate(&apart.concat(), t)
                .bpcer
                .is_some_and(|b| b <= 0.02)
        );
        // The equal-error rule needs both classes.
        assert!(ThresholdRule::Eer.choose(&[fold(&live, &[])]).is_err());
    }

    #[test]
    fn the_median_rule_does_not_follow_one_shifted_fold() {
        // Three folds separate at 0.5 (their equal-error points: their lowest attack score);
        // a fourth's scores all moved up, live ones above the others' attacks.
        let alike = || fold(&[0.1, 0.2, 0.3], &[0.6, 0.7, 0.8]);
        let shifted = fold(&[0.90, 0.92, 0.94], &[0.97, 0.98, 0.99]);
        let folds = [alike(), alike(), alike(), shifted];
        let (median, words) = ThresholdRule::MedianEer.choose(&folds).expect("median");
        // The middle two folds' points are both 0.6: the shifted fold does not move it.
        assert!((median - 0.6).abs() < 1e-6, "{median}: {words}");
        assert!(words.contains("median of the 4 folds"), "{words}");
        // Pooled, the shifted fold's live scores drag the equal-error point up (to 0.7).
        let (pooled, _) = ThresholdRule::Eer.choose(&folds).expect("pooled");
        assert!((pooled - 0.7).abs() < 1e-6, "{pooled}");
        // Three alike folds and three shifted: the median is the mean of the middle two in logit
        // space (0.6 and 0.97 → between them).
        let (between, _) = ThresholdRule::MedianEer
            .choose(&[
                alike(),
                alike(),
                alike(),
                fold(&[0.9], &[0.97]),
                fold(&[0.9], &[0.97]),
                fold(&[0.9], &[0.97]),
            ])
            .expect("even");
        let mid = 1.0 / (1.0 + (-(logit(0.6) + logit(0.97)) / 2.0).exp());
        assert!(
            (f64::from(between) - mid).abs() < 1e-6,
            "{between} vs {mid}"
        );
        assert!(
            ThresholdRule::MedianEer
                .choose(&[fold(&[0.1], &[])])
                .is_err()
        );
    }

    #[test]
    fn both_formats_follow_the_figures_table() {
        let folds: Vec<(PathBuf, Report)> = [
            fold(&[0.1, 0.2, 0.3, 0.7], &[0.9, 0.8, 0.3]),
            fold(&[0.1, 0.1], &[0.9, 0.95]),
        ]
        .iter()
        .enumerate()
        .map(|(k, s)| (PathBuf::from(format!("run{k}")), evaluate(s, 0.5)))
        .collect();
        let summary = summarize(&folds);
        for figure in &FIGURES {
            assert!(summary.contains_key(figure.key), "{}", figure.key);
        }
        let r = CrossValidation {
            threshold: 0.5,
            threshold_rule: "given".into(),
            only: None,
            pooled: folds[0].1.clone(),
            folds,
            summary,
        };
        let md = markdown(&r);
        let rows: Vec<Vec<&str>> = md
            .lines()
            .filter(|l| l.starts_with('|'))
            .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
            .collect();
        // Header, rule, two folds, the mean: every row as wide as the header.
        assert_eq!(rows.len(), 5, "{md}");
        assert!(rows.iter().all(|r| r.len() == rows[0].len()), "{md}");
        let acer = rows[0]
            .iter()
            .position(|c| *c == "ACER %")
            .expect("ACER column");
        let bpcer = rows[0]
            .iter()
            .position(|c| *c == "BPCER %")
            .expect("BPCER column");
        // Fold 1: one live of four (0.7) and one attack of three (0.3) on the wrong side:
        // BPCER 25 %, APCER 33.33 %, ACER their mean — three different figures in three columns.
        assert_eq!(rows[2][bpcer], "25.00", "{md}");
        assert_eq!(rows[2][acer], "29.17", "{md}");
        assert_eq!(rows[3][acer], "0.00", "{md}");
        assert_eq!(rows[4][acer], "14.58 ± 20.62", "{md}"); // the folds' sample std
        let auc = rows[0]
            .iter()
            .position(|c| *c == "ROC AUC")
            .expect("AUC column");
        assert_eq!(rows[3][auc], "1.0000", "{md}");
        assert!(!rows[0].contains(&"accuracy"), "accuracy is JSON only");
    }
}
