//! The sample contract: what one sample is, what its label means, and how pixels are normalised.

use serde::{Deserialize, Serialize};

/// Frames per sample: the model looks at five frames of one recording at once.
pub const FRAMES: usize = 5;

/// The recipe's input size (square side, pixels). Tests and small models use less.
pub const DEFAULT_INPUT_SIZE: u32 = 224;

/// Per-channel normalisation applied after scaling pixels to `[0, 1]`: `(x - mean) / std`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Mean of R, G, B.
    pub mean: [f32; 3],
    /// Standard deviation of R, G, B.
    pub std: [f32; 3],
}

impl Normalization {
    /// Every mean finite and every std finite and above 0 (a std of 0 would divide by zero);
    /// otherwise what is wrong, for the caller to name its field.
    pub fn check(&self) -> Result<(), String> {
        if self.mean.iter().all(|m| m.is_finite())
            && self.std.iter().all(|s| s.is_finite() && *s > 1e-6)
        {
            Ok(())
        } else {
            Err(format!(
                "is mean {:?} std {:?}: every value must be finite and every std above 0",
                self.mean, self.std
            ))
        }
    }

    /// torchvision's ImageNet statistics, used by the recipe.
    pub const IMAGENET: Normalization = Normalization {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };
}

impl Default for Normalization {
    fn default() -> Self {
        Self::IMAGENET
    }
}

/// The class of a sample: a live face or one kind of presentation attack.
/// The names are the dataset's folder names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AttackClass {
    /// A live person (`label = 0`).
    #[serde(rename = "real")]
    Real,
    /// A video replayed on a screen.
    #[serde(rename = "replay")]
    Replay,
    /// A printed photo.
    #[serde(rename = "printed")]
    Printed,
    /// A worn 2-D mask.
    #[serde(rename = "2dmask")]
    Mask2d,
}

impl AttackClass {
    /// All classes, in folder order.
    pub const ALL: [AttackClass; 4] = [
        AttackClass::Real,
        AttackClass::Replay,
        AttackClass::Printed,
        AttackClass::Mask2d,
    ];

    /// The folder name of this class in a dataset.
    pub fn folder(self) -> &'static str {
        match self {
            AttackClass::Real => "real",
            AttackClass::Replay => "replay",
            AttackClass::Printed => "printed",
            AttackClass::Mask2d => "2dmask",
        }
    }

    /// The class of a folder name, if it is one of the four.
    pub fn from_folder(name: &str) -> Option<AttackClass> {
        Self::ALL.into_iter().find(|c| c.folder() == name)
    }

    /// Whether this class is a presentation attack (binary target `1`).
    pub fn is_attack(self) -> bool {
        self != AttackClass::Real
    }

    /// The binary training target: `0.0` live, `1.0` spoof.
    pub fn label(self) -> f32 {
        if self.is_attack() { 1.0 } else { 0.0 }
    }
}

impl std::fmt::Display for AttackClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.folder())
    }
}

/// The decision rule shared by the metrics, the native runtimes, the server and the widget: a
/// sample is classified as an attack when `p_spoof >= threshold`, and **fails closed**: a
/// non-finite score or threshold (NaN, ±∞) is always an attack, never "live".
pub fn classified_as_attack(p_spoof: f32, threshold: f32) -> bool {
    !(p_spoof.is_finite() && threshold.is_finite() && p_spoof < threshold)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_round_trip_and_only_real_is_live() {
        for c in AttackClass::ALL {
            assert_eq!(AttackClass::from_folder(c.folder()), Some(c));
            assert_eq!(c.label(), if c == AttackClass::Real { 0.0 } else { 1.0 });
        }
        assert_eq!(AttackClass::from_folder("Real"), None);
        assert_eq!(
            serde_json::to_string(&AttackClass::Mask2d).ok().as_deref(),
            Some("\"2dmask\"")
        );
    }

    #[test]
    fn the_decision_fails_closed_on_non_finite_numbers() {
        assert!(!classified_as_attack(0.2, 0.5));
        assert!(classified_as_attack(0.5, 0.5));
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert!(classified_as_attack(bad, 0.5), "score {bad}");
            assert!(classified_as_attack(0.2, bad), "threshold {bad}");
        }
    }
}
