//! Liveness metrics over a whole set of scores (never averaged per batch).
//!
//! A score is `p_spoof`, the model's probability that a sample is an attack. A sample is
//! *classified as an attack* when `p_spoof >= threshold` ([`crate::classified_as_attack`]). The
//! positive class is "attack" (label 1). A non-finite score (NaN, ±∞) fails closed: it counts as
//! an attack at every threshold and ranks above every finite score in EER, AUC and ROC, so every
//! function here terminates and agrees with the decision rule on any input.
//!
//! - ISO/IEC 30107-3: APCER of an attack class = share of its samples classified live;
//!   BPCER = share of live samples classified as attacks; ACER = (max APCER + BPCER) / 2.
//! - EER: the error rate where the attack-accepted rate (over all attacks) equals the
//!   live-rejected rate, taken at the candidate threshold (each distinct score) where the two are
//!   closest, as their mean.
//! - ROC AUC: probability that a random attack scores above a random live sample (ties count ½).
//! - The recipe's scores: accuracy, F1 macro, F1 weighted and F-β (β = 2) weighted, as scikit-learn
//!   computes them for the two labels (a zero denominator gives 0).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::AttackClass;

/// One scored sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoredSample {
    /// The sample's true class.
    pub class: AttackClass,
    /// Predicted probability of an attack.
    pub spoof: f32,
}

/// Binary confusion matrix, attack = positive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// Live samples classified live.
    pub live_as_live: usize,
    /// Live samples classified as attacks (bona fide rejected).
    pub live_as_attack: usize,
    /// Attacks classified live (attack accepted).
    pub attack_as_live: usize,
    /// Attacks classified as attacks.
    pub attack_as_attack: usize,
}

impl std::fmt::Display for Confusion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "              pred live  pred attack")?;
        writeln!(
            f,
            "true live   {:>10} {:>12}",
            self.live_as_live, self.live_as_attack
        )?;
        write!(
            f,
            "true attack {:>10} {:>12}",
            self.attack_as_live, self.attack_as_attack
        )
    }
}

/// All metrics of one set of scores at one threshold. Rates are fractions in `[0, 1]`;
/// a rate with no samples to count is `None`. Stored in checkpoints, `metrics.jsonl` and
/// manifests: a field missing from an older file reads as its default (`None` for a metric), so
/// adding a metric does not make old runs unreadable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Report {
    /// Number of samples.
    pub samples: usize,
    /// Decision threshold on `p_spoof`.
    pub threshold: f32,
    /// Confusion matrix at the threshold.
    pub confusion: Confusion,
    /// Share of samples classified correctly.
    pub accuracy: Option<f64>,
    /// Mean of the live and attack F1 scores.
    pub f1_macro: Option<f64>,
    /// F1 of live and attack weighted by their sample counts.
    pub f1_weighted: Option<f64>,
    /// F-β (β = 2) of live and attack weighted by their sample counts.
    pub f2_weighted: Option<f64>,
    /// APCER of each attack class present.
    pub apcer: BTreeMap<AttackClass, f64>,
    /// Largest APCER over the attack classes present.
    pub apcer_max: Option<f64>,
    /// BPCER: share of live samples classified as attacks.
    pub bpcer: Option<f64>,
    /// (APCER max + BPCER) / 2.
    pub acer: Option<f64>,
    /// Equal error rate (needs live and attack samples).
    pub eer: Option<f64>,
    /// Threshold at which the EER was taken.
    pub eer_threshold: Option<f32>,
    /// Area under the ROC curve (needs live and attack samples).
    pub roc_auc: Option<f64>,
}

fn ratio(num: usize, den: usize) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// F-β from counts, 0 where scikit-learn would divide by zero.
fn f_beta(tp: usize, fp: usize, fn_: usize, beta: f64) -> f64 {
    let b2 = beta * beta;
    let den = (1.0 + b2) * tp as f64 + b2 * fn_ as f64 + fp as f64;
    if den == 0.0 {
        0.0
    } else {
        (1.0 + b2) * tp as f64 / den
    }
}

/// Computes every metric of `samples` at `threshold`.
///
/// ```
/// use liveness_core::{evaluate, AttackClass, ScoredSample};
/// let s = |class, spoof| ScoredSample { class, spoof };
/// let r = evaluate(&[s(AttackClass::Real, 0.1), s(AttackClass::Printed, 0.9)], 0.5);
/// assert_eq!(r.acer, Some(0.0));
/// assert_eq!(r.roc_auc, Some(1.0));
/// ```
pub fn evaluate(samples: &[ScoredSample], threshold: f32) -> Report {
    let mut c = Confusion::default();
    let mut per_class: BTreeMap<AttackClass, (usize, usize)> = BTreeMap::new(); // (accepted, total)
    for s in samples {
        let says_attack = crate::classified_as_attack(s.spoof, threshold);
        match (s.class.is_attack(), says_attack) {
            (false, false) => c.live_as_live += 1,
            (false, true) => c.live_as_attack += 1,
            (true, false) => c.attack_as_live += 1,
            (true, true) => c.attack_as_attack += 1,
        }
        if s.class.is_attack() {
            let e = per_class.entry(s.class).or_default();
            e.0 += usize::from(!says_attack);
            e.1 += 1;
        }
    }
    let live = c.live_as_live + c.live_as_attack;
    let attacks = c.attack_as_live + c.attack_as_attack;
    let apcer: BTreeMap<AttackClass, f64> = per_class
        .into_iter()
        .map(|(class, (accepted, total))| (class, accepted as f64 / total as f64))
        .collect();
    let apcer_max = apcer.values().copied().reduce(f64::max);
    let bpcer = ratio(c.live_as_attack, live);
    let acer = apcer_max.zip(bpcer).map(|(a, b)| (a + b) / 2.0);

    // Per-label F scores: attack as positive, then live as positive.
    let scores = |beta| {
        let attack = f_beta(c.attack_as_attack, c.live_as_attack, c.attack_as_live, beta);
        let live_f = f_beta(c.live_as_live, c.attack_as_live, c.live_as_attack, beta);
        (attack, live_f)
    };
    let weighted = |(a, l): (f64, f64)| {
        ratio(1, samples.len())
            .map(|_| (a * attacks as f64 + l * live as f64) / samples.len() as f64)
    };
    let (f1_attack, f1_live) = scores(1.0);
    // scikit-learn's macro average runs over the labels seen in truth or in prediction.
    let seen_attack = attacks > 0 || c.live_as_attack > 0;
    let seen_live = live > 0 || c.attack_as_live > 0;
    let seen = [(seen_attack, f1_attack), (seen_live, f1_live)];
    let n_seen = seen.iter().filter(|(on, _)| *on).count();
    let f1_macro = ratio(1, n_seen).map(|_| {
        seen.iter()
            .filter(|(on, _)| *on)
            .map(|(_, f)| f)
            .sum::<f64>()
            / n_seen as f64
    });
    let (eer, eer_threshold) = match equal_error_rate(samples) {
        Some((e, t)) => (Some(e), Some(t)),
        None => (None, None),
    };
    Report {
        samples: samples.len(),
        threshold,
        confusion: c,
        accuracy: ratio(c.live_as_live + c.attack_as_attack, samples.len()),
        f1_macro,
        f1_weighted: weighted((f1_attack, f1_live)),
        f2_weighted: weighted(scores(2.0)),
        apcer,
        apcer_max,
        bpcer,
        acer,
        eer,
        eer_threshold,
        roc_auc: roc_auc(samples),
    }
}

/// The score as the ranking metrics see it: a non-finite score ranks as +∞ (an attack).
fn rank_score(spoof: f32) -> f32 {
    if spoof.is_finite() {
        spoof
    } else {
        f32::INFINITY
    }
}

/// Equal error rate and its threshold; `None` without both live and attack samples.
pub fn equal_error_rate(samples: &[ScoredSample]) -> Option<(f64, f32)> {
    let live: Vec<f32> = samples
        .iter()
        .filter(|s| !s.class.is_attack())
        .map(|s| rank_score(s.spoof))
        .collect();
    let attack: Vec<f32> = samples
        .iter()
        .filter(|s| s.class.is_attack())
        .map(|s| rank_score(s.spoof))
        .collect();
    if live.is_empty() || attack.is_empty() {
        return None;
    }
    let mut candidates: Vec<f32> = samples.iter().map(|s| rank_score(s.spoof)).collect();
    candidates.push(f32::INFINITY);
    candidates.sort_by(f32::total_cmp);
    candidates.dedup();
    let rate = |v: &[f32], pred: &dyn Fn(f32) -> bool| {
        v.iter().filter(|&&x| pred(x)).count() as f64 / v.len() as f64
    };
    let mut best: Option<(f64, f64, f32)> = None; // (|gap|, eer, threshold)
    for t in candidates {
        let accepted = rate(&attack, &|x| x < t);
        let rejected = rate(&live, &|x| x >= t);
        let gap = (accepted - rejected).abs();
        if best.is_none_or(|(g, _, _)| gap < g) {
            best = Some((gap, (accepted + rejected) / 2.0, t));
        }
    }
    best.map(|(_, eer, t)| (eer, t))
}

/// The lowest threshold at which at most `bpcer` of the live samples are rejected
/// (`p_spoof >= threshold`): just above the live score at the `1 - bpcer` quantile. `None` without
/// live samples or with a target outside `[0, 1)`. Non-finite live scores rank above every finite
/// one (as everywhere here) and are among the rejected first.
pub fn threshold_for_bpcer(samples: &[ScoredSample], bpcer: f64) -> Option<f32> {
    if !(0.0..1.0).contains(&bpcer) {
        return None;
    }
    let mut live: Vec<f32> = samples
        .iter()
        .filter(|s| !s.class.is_attack())
        .map(|s| rank_score(s.spoof))
        .collect();
    if live.is_empty() {
        return None;
    }
    live.sort_by(f32::total_cmp);
    let allowed = (bpcer * live.len() as f64).floor() as usize;
    let kept = live[live.len() - 1 - allowed.min(live.len() - 1)];
    Some(next_up(kept))
}

/// The smallest `f32` above `x` (`f32::next_up`, which needs Rust 1.86; this crate builds on 1.85).
fn next_up(x: f32) -> f32 {
    if x.is_nan() || x == f32::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f32::from_bits(1);
    }
    let bits = x.to_bits();
    f32::from_bits(if x > 0.0 { bits + 1 } else { bits - 1 })
}

/// `(rank score, is attack)` of every sample, sorted by score (ascending).
fn ranked(samples: &[ScoredSample]) -> Vec<(f32, bool)> {
    let mut v: Vec<(f32, bool)> = samples
        .iter()
        .map(|s| (rank_score(s.spoof), s.class.is_attack()))
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}

/// ROC AUC by the Mann–Whitney statistic; `None` without both live and attack samples.
pub fn roc_auc(samples: &[ScoredSample]) -> Option<f64> {
    let sorted = ranked(samples);
    let attacks = samples.iter().filter(|s| s.class.is_attack()).count();
    let live = samples.len() - attacks;
    if attacks == 0 || live == 0 {
        return None;
    }
    // Sum of the (tie-averaged, 1-based) ranks of the attacks.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        // Always advances: the group holds at least sorted[i] (scores here are never NaN).
        let mut j = i + 1;
        while j < sorted.len() && sorted[j].0 == sorted[i].0 {
            j += 1;
        }
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += mean_rank * sorted[i..j].iter().filter(|s| s.1).count() as f64;
        i = j;
    }
    let u = rank_sum - (attacks * (attacks + 1)) as f64 / 2.0;
    Some(u / (attacks * live) as f64)
}

/// Points of the ROC curve `(false positive rate, true positive rate)` with attack = positive,
/// one per distinct score from the highest threshold down; for plots.
pub fn roc_curve(samples: &[ScoredSample]) -> Vec<(f64, f64)> {
    let attacks = samples
        .iter()
        .filter(|s| s.class.is_attack())
        .count()
        .max(1) as f64;
    let live = samples
        .iter()
        .filter(|s| !s.class.is_attack())
        .count()
        .max(1) as f64;
    let mut sorted = ranked(samples);
    sorted.reverse();
    let mut points = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0usize, 0usize);
    for (k, s) in sorted.iter().enumerate() {
        if s.1 {
            tp += 1
        } else {
            fp += 1
        }
        if sorted.get(k + 1).is_none_or(|n| n.0 != s.0) {
            points.push((fp as f64 / live, tp as f64 / attacks));
        }
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_written_before_a_metric_existed_still_reads() {
        // A report of an older run: no `f2_weighted`, `roc_auc`, `eer_threshold`, and no
        // per-class `apcer` table (a field that is not an Option needs the struct's default).
        let old = r#"{"samples": 4, "threshold": 0.5,
            "confusion": {"live_as_live": 2, "live_as_attack": 0, "attack_as_live": 1, "attack_as_attack": 1},
            "accuracy": 0.75, "f1_macro": 0.73, "f1_weighted": 0.73,
            "apcer_max": 0.5, "bpcer": 0.0, "acer": 0.25, "eer": 0.25}"#;
        let report: Report = serde_json::from_str(old).expect("an older report reads");
        assert_eq!((report.samples, report.acer), (4, Some(0.25)));
        assert_eq!(
            (report.f2_weighted, report.roc_auc, report.eer_threshold),
            (None, None, None)
        );
        assert!(report.apcer.is_empty(), "{report:?}");
    }
    use AttackClass::*;

    fn s(class: AttackClass, spoof: f32) -> ScoredSample {
        ScoredSample { class, spoof }
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-12)
    }

    #[test]
    fn bpcer_threshold_rejects_at_most_the_target_share_of_live() {
        // 10 live scores 0.0 .. 0.9 and one attack; 10 % allowed → exactly the 0.9 is rejected.
        let mut v: Vec<ScoredSample> = (0..10).map(|i| s(Real, i as f32 / 10.0)).collect();
        v.push(s(Printed, 0.05));
        let t = threshold_for_bpcer(&v, 0.1).expect("threshold");
        assert!(t > 0.8 && t <= 0.9, "{t}");
        assert!(close(evaluate(&v, t).bpcer, 0.1));
        // 0 % allowed: just above the highest live score, nothing live rejected.
        let t = threshold_for_bpcer(&v, 0.0).expect("threshold");
        assert!(t > 0.9 && close(evaluate(&v, t).bpcer, 0.0), "{t}");
        // 5 % of 10 rounds down to none rejected.
        assert_eq!(threshold_for_bpcer(&v, 0.05), Some(t));
        // A NaN live score is rejected first; no live samples or a bad target give none.
        v[0] = s(Real, f32::NAN);
        let t = threshold_for_bpcer(&v, 0.1).expect("threshold");
        assert!(t > 0.9 && close(evaluate(&v, t).bpcer, 0.1), "{t}");
        assert_eq!(threshold_for_bpcer(&[s(Printed, 0.5)], 0.1), None);
        assert_eq!(threshold_for_bpcer(&v, 1.0), None);
        assert_eq!(threshold_for_bpcer(&v, f64::NAN), None);
    }

    // Hand-computed: 4 live, 3 printed, 2 replay at threshold 0.5.
    //   live    0.1 0.2 0.6 0.4 -> 1 rejected of 4         BPCER = 1/4
    //   printed 0.9 0.3 0.7     -> 1 accepted of 3         APCER(printed) = 1/3
    //   replay  0.45 0.8        -> 1 accepted of 2         APCER(replay) = 1/2
    //   ACER = (1/2 + 1/4)/2 = 3/8. Confusion: LL 3, LA 1, AL 2, AA 3; accuracy 6/9.
    //   F1(attack) = 2*3/(2*3+1+2) = 6/9; F1(live) = 2*3/(2*3+2+1) = 6/9
    //   F2(attack) = 5*3/(5*3+4*2+1) = 15/24; F2(live) = 5*3/(5*3+4*1+2) = 15/21
    //   AUC: pairs (attack > live) over 5*4 = 20: 0.9>4, 0.3>2 (0.1,0.2), 0.7>4, 0.45>3, 0.8>4 -> 17/20
    //   EER: at t=0.45: accepted attacks {0.3} = 1/5, rejected live {0.6} = 1/4 -> gap .05;
    //        at t=0.6: accepted {0.3,0.45} = 2/5, rejected {0.6} = 1/4 -> gap .15;
    //        at t=0.4: accepted {0.3} = 1/5, rejected {0.4,0.6} = 2/4 -> gap .3. EER = (1/5+1/4)/2.
    fn fixed() -> Vec<ScoredSample> {
        vec![
            s(Real, 0.1),
            s(Real, 0.2),
            s(Real, 0.6),
            s(Real, 0.4),
            s(Printed, 0.9),
            s(Printed, 0.3),
            s(Printed, 0.7),
            s(Replay, 0.45),
            s(Replay, 0.8),
        ]
    }

    #[test]
    fn metrics_match_hand_computed_values() {
        let r = evaluate(&fixed(), 0.5);
        assert_eq!(
            r.confusion,
            Confusion {
                live_as_live: 3,
                live_as_attack: 1,
                attack_as_live: 2,
                attack_as_attack: 3
            }
        );
        assert!(close(r.bpcer, 0.25));
        assert!(close(r.apcer.get(&Printed).copied(), 1.0 / 3.0));
        assert!(close(r.apcer.get(&Replay).copied(), 0.5));
        assert_eq!(r.apcer.get(&Mask2d), None);
        assert!(close(r.apcer_max, 0.5));
        assert!(close(r.acer, 0.375));
        assert!(close(r.accuracy, 6.0 / 9.0));
        assert!(close(r.f1_macro, 6.0 / 9.0));
        assert!(close(r.f1_weighted, 6.0 / 9.0));
        assert!(close(
            r.f2_weighted,
            (15.0 / 24.0 * 5.0 + 15.0 / 21.0 * 4.0) / 9.0
        ));
        assert!(close(r.roc_auc, 17.0 / 20.0));
        assert!(close(r.eer, (0.2 + 0.25) / 2.0));
        assert_eq!(r.eer_threshold, Some(0.45));
    }

    #[test]
    fn ties_count_half_and_perfect_separation_is_zero_error() {
        let tied = [s(Real, 0.5), s(Printed, 0.5)];
        assert!(close(roc_auc(&tied), 0.5));
        let perfect = [s(Real, 0.1), s(Real, 0.2), s(Mask2d, 0.8), s(Printed, 0.95)];
        let r = evaluate(&perfect, 0.5);
        assert!(close(r.acer, 0.0) && close(r.eer, 0.0) && close(r.roc_auc, 1.0));
        assert!(close(r.f1_macro, 1.0));
        let curve = roc_curve(&perfect);
        assert_eq!(curve.first(), Some(&(0.0, 0.0)));
        assert_eq!(curve.last(), Some(&(1.0, 1.0)));
        assert!(curve.contains(&(0.0, 1.0)));
    }

    #[test]
    fn non_finite_scores_terminate_and_count_as_attacks() {
        let r = evaluate(
            &[
                s(Real, f32::NAN),
                s(Real, 0.1),
                s(Printed, f32::NAN),
                s(Printed, 0.9),
                s(Real, f32::INFINITY),
            ],
            0.5,
        );
        // Both non-finite live scores are rejected; the NaN attack is caught.
        assert_eq!(r.confusion.live_as_attack, 2);
        assert_eq!(r.confusion.attack_as_live, 0);
        assert!(r.eer.is_some() && r.roc_auc.is_some());
        // A NaN ranks like +inf: the NaN attack ties with the NaN and +inf live scores.
        let nan_only = evaluate(&[s(Real, f32::NAN), s(Printed, f32::NAN)], 0.5);
        assert!(close(nan_only.roc_auc, 0.5));
        assert_eq!(
            roc_curve(&[s(Real, f32::NAN), s(Printed, f32::NAN)]).len(),
            2
        );
    }

    #[test]
    fn one_sided_sets_leave_undefined_rates_empty() {
        let r = evaluate(&[s(Printed, 0.9), s(Printed, 0.2)], 0.5);
        assert_eq!(r.bpcer, None);
        assert_eq!(r.acer, None);
        assert_eq!(r.eer, None);
        assert_eq!(r.roc_auc, None);
        assert!(close(r.apcer_max, 0.5));
        let empty = evaluate(&[], 0.5);
        assert_eq!(empty.accuracy, None);
        assert_eq!(empty.f1_macro, None);
    }
}
