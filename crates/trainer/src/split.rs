//! Train/validation split: reproducible (seeded), grouped by subject (no person on both sides)
//! and stratified by class (each class's validation share close to the requested fraction).

use std::collections::{BTreeMap, BTreeSet};

use liveness_core::AttackClass;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::dataset::Sample;

/// Indices into the sample list, and who is on which side.
#[derive(Debug, Clone, Serialize)]
pub struct Split {
    /// Training sample indices.
    pub train: Vec<usize>,
    /// Validation sample indices.
    pub val: Vec<usize>,
    /// Subjects whose samples are all in training.
    pub train_subjects: BTreeSet<String>,
    /// Subjects whose samples are all in validation.
    pub val_subjects: BTreeSet<String>,
}

/// Why a split cannot be made. Each message names the flag at fault.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    /// `--val-subjects` names a subject no sample has.
    #[error("--val-subjects names {name:?}, which no sample has (subjects: {known})")]
    UnknownSubject { name: String, known: String },
    /// `--val-fraction` outside (0, 1).
    #[error("--val-fraction must be between 0 and 1, got {0}")]
    Fraction(f64),
    /// Fewer than two subjects.
    #[error("cannot split by subject: found {count} subject(s) ({list}); check --subject-pattern")]
    TooFewSubjects { count: usize, list: String },
    /// A side of the split has no sample.
    #[error("the split leaves no sample for {0}")]
    Empty(String),
    /// A `--train-only` / `--val-only` pattern that does not compile.
    #[error("{flag} {pattern:?} is not a valid regular expression: {source}")]
    Pattern {
        flag: String,
        pattern: String,
        #[source]
        source: regex::Error,
    },
    /// A pattern that leaves its side empty.
    #[error("{flag} {pattern:?} leaves no sample on its side of the split")]
    NoMatch { flag: String, pattern: String },
}

type Result<T> = std::result::Result<T, SplitError>;

/// How to choose the validation subjects.
#[derive(Debug, Clone)]
pub enum SplitRule {
    /// Seeded greedy choice of subjects reaching `fraction` of every class.
    Fraction { fraction: f64, seed: u64 },
    /// Exactly these subjects form the validation set (e.g. for leave-subjects-out folds).
    Subjects(BTreeSet<String>),
}

/// Splits `samples` by subject.
pub fn split(samples: &[Sample], rule: &SplitRule) -> Result<Split> {
    let mut per_subject: BTreeMap<&str, BTreeMap<AttackClass, usize>> = BTreeMap::new();
    let mut totals: BTreeMap<AttackClass, usize> = BTreeMap::new();
    for s in samples {
        *per_subject
            .entry(&s.subject)
            .or_default()
            .entry(s.class)
            .or_default() += 1;
        *totals.entry(s.class).or_default() += 1;
    }
    let val_subjects: BTreeSet<String> = match rule {
        SplitRule::Subjects(chosen) => {
            for name in chosen {
                if !per_subject.contains_key(name.as_str()) {
                    let known: Vec<&str> = per_subject.keys().copied().collect();
                    return Err(SplitError::UnknownSubject {
                        name: name.clone(),
                        known: known.join(", "),
                    });
                }
            }
            chosen.clone()
        }
        SplitRule::Fraction { fraction, seed } => {
            if !(0.0 < *fraction && *fraction < 1.0) {
                return Err(SplitError::Fraction(*fraction));
            }
            if per_subject.len() < 2 {
                let only: Vec<&str> = per_subject.keys().copied().collect();
                return Err(SplitError::TooFewSubjects {
                    count: only.len(),
                    list: only.join(", "),
                });
            }
            greedy_subjects(&per_subject, &totals, *fraction, *seed)
        }
    };
    let train_subjects: BTreeSet<String> = per_subject
        .keys()
        .map(|s| (*s).to_owned())
        .filter(|s| !val_subjects.contains(s))
        .collect();
    if train_subjects.is_empty() {
        return Err(SplitError::Empty("training".into()));
    }
    let (val, train): (Vec<usize>, Vec<usize>) =
        (0..samples.len()).partition(|&i| val_subjects.contains(&samples[i].subject));
    Ok(Split {
        train,
        val,
        train_subjects,
        val_subjects,
    })
}

fn greedy_subjects(
    per_subject: &BTreeMap<&str, BTreeMap<AttackClass, usize>>,
    totals: &BTreeMap<AttackClass, usize>,
    fraction: f64,
    seed: u64,
) -> BTreeSet<String> {
    let mut order: Vec<&str> = per_subject.keys().copied().collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    // Squared distance of each class's validation share from the target.
    let cost = |val: &BTreeMap<AttackClass, usize>| -> f64 {
        totals
            .iter()
            .map(|(c, &t)| (val.get(c).copied().unwrap_or(0) as f64 / t as f64 - fraction).powi(2))
            .sum()
    };
    let mut val_counts: BTreeMap<AttackClass, usize> = BTreeMap::new();
    let mut chosen = BTreeSet::new();
    for (k, subject) in order.iter().enumerate() {
        let mut with = val_counts.clone();
        for (c, n) in &per_subject[subject] {
            *with.entry(*c).or_default() += n;
        }
        let is_last = k + 1 == order.len();
        // Always leave training at least one subject; always give validation at least one.
        let take = if chosen.is_empty() && is_last {
            false
        } else {
            chosen.is_empty() || cost(&with) < cost(&val_counts)
        };
        if take && chosen.len() + 1 < order.len() {
            chosen.insert((*subject).to_owned());
            val_counts = with;
        }
    }
    chosen
}

/// Keeps only the samples whose folder name matches `pattern` on one side of a split (e.g. one
/// recording session: train on session 1, validate on session 2 of other people). `flag` names
/// the option in errors.
pub fn keep_matching(
    samples: &[Sample],
    side: &mut Vec<usize>,
    pattern: &str,
    flag: &str,
) -> Result<()> {
    let re = regex::Regex::new(pattern).map_err(|source| SplitError::Pattern {
        flag: flag.to_owned(),
        pattern: pattern.to_owned(),
        source,
    })?;
    side.retain(|&i| {
        let name = samples[i]
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        re.is_match(&name)
    });
    if side.is_empty() {
        return Err(SplitError::NoMatch {
            flag: flag.to_owned(),
            pattern: pattern.to_owned(),
        });
    }
    Ok(())
}

/// A table of the split's counts, per class and side.
pub fn describe(samples: &[Sample], split: &Split) -> String {
    let mut rows: BTreeMap<AttackClass, (usize, usize)> = BTreeMap::new();
    for &i in &split.train {
        rows.entry(samples[i].class).or_default().0 += 1;
    }
    for &i in &split.val {
        rows.entry(samples[i].class).or_default().1 += 1;
    }
    let mut out = format!("{:<10} {:>7} {:>7}\n", "class", "train", "val");
    for (c, (t, v)) in &rows {
        out += &format!("{:<10} {:>7} {:>7}\n", c.folder(), t, v);
    }
    out += &format!(
        "{:<10} {:>7} {:>7}\n",
        "samples",
        split.train.len(),
        split.val.len()
    );
    out += &format!(
        "{:<10} {:>7} {:>7}\n",
        "subjects",
        split.train_subjects.len(),
        split.val_subjects.len()
    );
    out += &format!(
        "validation subjects: {}",
        split
            .val_subjects
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn parse_subjects(list: &str) -> Result<BTreeSet<String>> {
        Ok(list.split(',').map(|s| s.trim().to_owned()).collect())
    }

    fn samples() -> Vec<Sample> {
        let mut v = Vec::new();
        for subject in 0..9 {
            for (class, n) in [
                (AttackClass::Real, 4 + subject % 3),
                (AttackClass::Printed, 3 + subject % 2),
            ] {
                for k in 0..n {
                    v.push(Sample {
                        path: PathBuf::from(format!("{class}/{subject}_{k}")),
                        class,
                        subject: format!("s{subject}"),
                        frames: Default::default(),
                    });
                }
            }
        }
        v
    }

    #[test]
    fn no_subject_is_on_both_sides_and_the_split_is_seeded() -> Result<()> {
        let s = samples();
        for seed in 0..20 {
            let a = split(
                &s,
                &SplitRule::Fraction {
                    fraction: 0.3,
                    seed,
                },
            )?;
            let b = split(
                &s,
                &SplitRule::Fraction {
                    fraction: 0.3,
                    seed,
                },
            )?;
            assert_eq!(a.val, b.val);
            assert!(a.train_subjects.is_disjoint(&a.val_subjects));
            assert!(!a.val.is_empty() && !a.train.is_empty());
            assert_eq!(a.train.len() + a.val.len(), s.len());
            for &i in &a.val {
                assert!(a.val_subjects.contains(&s[i].subject));
            }
            for &i in &a.train {
                assert!(a.train_subjects.contains(&s[i].subject));
            }
            // Stratified: every class's validation share within 0.2 of the target.
            for class in [AttackClass::Real, AttackClass::Printed] {
                let total = s.iter().filter(|x| x.class == class).count() as f64;
                let val = a.val.iter().filter(|&&i| s[i].class == class).count() as f64;
                assert!(
                    (val / total - 0.3).abs() < 0.2,
                    "seed {seed} {class}: {}",
                    val / total
                );
            }
        }
        let seeds: BTreeSet<Vec<usize>> = (0..20)
            .map(|seed| {
                split(
                    &s,
                    &SplitRule::Fraction {
                        fraction: 0.3,
                        seed,
                    },
                )
                .map(|x| x.val)
            })
            .collect::<Result<_>>()?;
        assert!(seeds.len() > 1, "the seed must change the split");
        Ok(())
    }

    #[test]
    fn sides_can_be_narrowed_by_name() -> Result<()> {
        let s = samples();
        let mut sp = split(&s, &SplitRule::Subjects(parse_subjects("s1")?))?;
        keep_matching(&s, &mut sp.val, "_0$", "--val-only")?;
        assert_eq!(sp.val.len(), 2);
        assert!(
            sp.val
                .iter()
                .all(|&i| s[i].path.to_string_lossy().ends_with("_0"))
        );
        let err = keep_matching(&s, &mut sp.train, "^nothing$", "--train-only").expect_err("empty");
        assert!(err.to_string().contains("--train-only"));
        Ok(())
    }

    #[test]
    fn named_subjects_form_the_validation_set() -> Result<()> {
        let s = samples();
        let chosen = parse_subjects("s1, s4")?;
        let sp = split(&s, &SplitRule::Subjects(chosen.clone()))?;
        assert_eq!(sp.val_subjects, chosen);
        assert!(sp.val.iter().all(|&i| chosen.contains(&s[i].subject)));
        let err = split(&s, &SplitRule::Subjects(parse_subjects("nobody")?))
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("nobody")));
        let one: Vec<Sample> = s.into_iter().filter(|x| x.subject == "s0").collect();
        let err = split(
            &one,
            &SplitRule::Fraction {
                fraction: 0.3,
                seed: 1,
            },
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("1 subject"), "{err}");
        Ok(())
    }
}
