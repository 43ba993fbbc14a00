//! Reading the dataset layout `DATA/{real,replay,printed,2dmask}/<sample>/<5 images>`.
//!
//! Any subset of the four class folders may exist; any other folder in the data root is an error
//! (a misspelt `print/` would otherwise leave a live-only model), while files there (a README)
//! are ignored. Every sample keeps its attack class (the metrics need it) and its subject, which
//! a configurable rule takes from the sample's name.
//!
//! Frames are decoded strictly: a JPEG cut short is an error (the image crate's JPEG decoder
//! fills missing data with grey, so JPEGs go through zune-jpeg in strict mode), and a frame
//! beyond [`liveness_core::limits`] is refused from its header, before decoding.
//!
//! Paths in messages and score lines are shown as they are when they are UTF-8, and with escapes
//! (`"bad\xFFname"`) when not, so that a non-UTF-8 name can still be found ([`crate::shown`]).

use std::path::{Path, PathBuf};

use image::ImageReader;
use liveness_core::limits::{MAX_FRAME_PIXELS, MAX_FRAME_SIDE, frame_size_ok};
use liveness_core::{AttackClass, FRAMES};
use regex::Regex;
use thiserror::Error;

use crate::shown;

/// What can be wrong with a dataset folder. Every variant names the path at fault.
#[derive(Debug, Error)]
pub enum DataError {
    /// The data folder does not exist or is not a folder.
    #[error("data folder {} does not exist or is not a folder", shown(.0))]
    MissingDir(PathBuf),
    /// The data folder holds none of the class folders.
    #[error("data folder {} holds none of the class folders real/, replay/, printed/, 2dmask/", shown(.0))]
    NoClassFolders(PathBuf),
    /// A folder in the data root that is not a class folder (e.g. a misspelt `print/`).
    #[error(
        "folder {} is not a class folder: a data folder holds only real/, replay/, printed/ and 2dmask/ (rename or move it)",
        shown(.0)
    )]
    UnknownFolder(PathBuf),
    /// A class folder with no sample folders in it.
    #[error("class folder {} holds no sample folders", shown(.0))]
    EmptyClass(PathBuf),
    /// A sample folder without exactly five frame files.
    #[error(
        "sample {} holds {got} frame files, a sample needs exactly {expected}",
        shown(path)
    )]
    FrameCount {
        path: PathBuf,
        got: usize,
        expected: usize,
    },
    /// A frame file that cannot be read or decoded as an image.
    #[error("frame {} is not a readable image: {source}", shown(path))]
    BadImage {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    /// A JPEG frame that is damaged or cut short.
    #[error("frame {} is not a complete JPEG: {message}", shown(path))]
    BadJpeg { path: PathBuf, message: String },
    /// A frame larger than the limits.
    #[error(
        "frame {} is {width}x{height}: frames may be at most {MAX_FRAME_SIDE} pixels wide or tall and {MAX_FRAME_PIXELS} pixels in all",
        shown(path)
    )]
    TooLarge {
        path: PathBuf,
        width: u32,
        height: u32,
    },
    /// The face gate refused a sample (no single face in some frame).
    #[error("sample {}: {refusal}", shown(path))]
    Refused {
        path: PathBuf,
        refusal: liveness_core::face::Refusal,
    },
    /// The face detector failed on a frame.
    #[error("frame {}: face detector: {message}", shown(path))]
    Detector { path: PathBuf, message: String },
    /// Preprocessing refused a frame.
    #[error("frame {}: {source}", shown(path))]
    Preprocess {
        path: PathBuf,
        #[source]
        source: liveness_core::Error,
    },
    /// Frames of one sample with different sizes.
    #[error(
        "frame {} is {width}x{height} but {} is {first_width}x{first_height}: the frames of a sample must share one size",
        shown(path),
        shown(first)
    )]
    MixedSizes {
        path: PathBuf,
        width: u32,
        height: u32,
        first: PathBuf,
        first_width: u32,
        first_height: u32,
    },
    /// A folder that cannot be listed.
    #[error("cannot read folder {}: {source}", shown(path))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The subject pattern is not a valid regular expression.
    #[error("subject pattern {pattern:?} is not a valid regular expression: {source}")]
    BadPattern {
        pattern: String,
        #[source]
        source: regex::Error,
    },
}

/// One sample: five frames of one recording and what they show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The sample's folder.
    pub path: PathBuf,
    /// Its class (folder name).
    pub class: AttackClass,
    /// The person recorded, from the sample's name by the [`SubjectRule`].
    pub subject: String,
    /// The frame files, in order.
    pub frames: [PathBuf; FRAMES],
}

/// How the subject is read from a sample's folder name: the first capture group of a regular
/// expression (or its whole match); a name it does not match is its own subject.
#[derive(Debug, Clone)]
pub struct SubjectRule(Regex);

impl SubjectRule {
    /// The default: the part of the name before the first `_`.
    pub const DEFAULT: &'static str = "^([^_]+)_";

    /// Compiles a rule.
    pub fn new(pattern: &str) -> Result<Self, DataError> {
        Regex::new(pattern)
            .map(SubjectRule)
            .map_err(|source| DataError::BadPattern {
                pattern: pattern.to_owned(),
                source,
            })
    }

    /// The subject of a sample name.
    pub fn subject(&self, name: &str) -> String {
        match self.0.captures(name) {
            Some(c) => c
                .get(1)
                .or_else(|| c.get(0))
                .map_or(name, |m| m.as_str())
                .to_owned(),
            None => name.to_owned(),
        }
    }
}

impl Default for SubjectRule {
    fn default() -> Self {
        // The default pattern is a literal that compiles.
        #[allow(clippy::unwrap_used)]
        SubjectRule::new(Self::DEFAULT).unwrap()
    }
}

fn list_dir(path: &Path) -> Result<Vec<PathBuf>, DataError> {
    let io = |source| DataError::Io {
        path: path.to_owned(),
        source,
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io)? {
        let entry = entry.map_err(io)?;
        // Hidden files (.DS_Store, editor swap files) are not data.
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        entries.push(entry.path());
    }
    entries.sort_by_cached_key(|p| natural_key(p));
    Ok(entries)
}

/// Sorts `frame2` before `frame10`: numbers in names compare by value.
fn natural_key(path: &Path) -> Vec<(u64, String)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut key = Vec::new();
    let mut rest = name.as_str();
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits > 0 {
            key.push((rest[..digits].parse().unwrap_or(u64::MAX), String::new()));
            rest = &rest[digits..];
        } else {
            let text = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            key.push((0, rest[..text].to_owned()));
            rest = &rest[text..];
        }
    }
    key
}

/// Lists every sample under `root`, in class then name order. Checks the layout only (folders
/// and frame counts); [`check_frames`] reads the image headers.
pub fn scan(root: &Path, rule: &SubjectRule) -> Result<Vec<Sample>, DataError> {
    if !root.is_dir() {
        return Err(DataError::MissingDir(root.to_owned()));
    }
    for entry in list_dir(root)? {
        let is_class = entry
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| AttackClass::from_folder(n).is_some());
        if entry.is_dir() && !is_class {
            return Err(DataError::UnknownFolder(entry));
        }
    }
    let mut samples = Vec::new();
    let mut found_class = false;
    for class in AttackClass::ALL {
        let class_dir = root.join(class.folder());
        if !class_dir.is_dir() {
            continue;
        }
        found_class = true;
        let sample_dirs: Vec<PathBuf> = list_dir(&class_dir)?
            .into_iter()
            .filter(|p| p.is_dir())
            .collect();
        if sample_dirs.is_empty() {
            return Err(DataError::EmptyClass(class_dir));
        }
        for dir in sample_dirs {
            let files: Vec<PathBuf> = list_dir(&dir)?
                .into_iter()
                .filter(|p| p.is_file())
                .collect();
            let frames: [PathBuf; FRAMES] =
                files
                    .try_into()
                    .map_err(|files: Vec<PathBuf>| DataError::FrameCount {
                        path: dir.clone(),
                        got: files.len(),
                        expected: FRAMES,
                    })?;
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            samples.push(Sample {
                subject: rule.subject(&name),
                path: dir,
                class,
                frames,
            });
        }
    }
    if !found_class {
        return Err(DataError::NoClassFolders(root.to_owned()));
    }
    Ok(samples)
}

/// Reads the header of every frame: each must be an image, and the frames of a sample must
/// share one size. Cheap (no decoding); catches most bad files before training starts.
pub fn check_frames(sample: &Sample) -> Result<(u32, u32), DataError> {
    let mut first: Option<(u32, u32)> = None;
    for path in &sample.frames {
        let (width, height) = dimensions(path)?;
        match first {
            None => first = Some((width, height)),
            Some((first_width, first_height)) if (width, height) != (first_width, first_height) => {
                return Err(DataError::MixedSizes {
                    path: path.clone(),
                    width,
                    height,
                    first: sample.frames[0].clone(),
                    first_width,
                    first_height,
                });
            }
            Some(_) => {}
        }
    }
    Ok(first.unwrap_or_default())
}

/// A frame file's size from its header, refused beyond the limits.
fn dimensions(path: &Path) -> Result<(u32, u32), DataError> {
    let bad = |source| DataError::BadImage {
        path: path.to_owned(),
        source,
    };
    let (width, height) = ImageReader::open(path)
        .map_err(|e| bad(e.into()))?
        .with_guessed_format()
        .map_err(|e| bad(e.into()))?
        .into_dimensions()
        .map_err(bad)?;
    if !frame_size_ok(width, height) {
        return Err(DataError::TooLarge {
            path: path.to_owned(),
            width,
            height,
        });
    }
    Ok((width, height))
}

/// Decodes one frame file to RGB, strictly (see the module's docs).
pub fn decode_frame(path: &Path) -> Result<image::RgbImage, DataError> {
    let bad = |source| DataError::BadImage {
        path: path.to_owned(),
        source,
    };
    dimensions(path)?;
    let bytes = std::fs::read(path).map_err(|e| bad(e.into()))?;
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return decode_jpeg_strictly(&bytes, path);
    }
    let image = image::load_from_memory(&bytes).map_err(bad)?;
    Ok(image.into_rgb8())
}

/// A JPEG through zune-jpeg in strict mode: missing or damaged data is an error, not grey.
fn decode_jpeg_strictly(bytes: &[u8], path: &Path) -> Result<image::RgbImage, DataError> {
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;
    let bad = |message: String| DataError::BadJpeg {
        path: path.to_owned(),
        message,
    };
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    let pixels = decoder.decode().map_err(|e| bad(format!("{e:?}")))?;
    let (width, height) = decoder
        .dimensions()
        .ok_or_else(|| bad("no dimensions".into()))?;
    image::RgbImage::from_raw(width as u32, height as u32, pixels)
        .ok_or_else(|| bad("pixel data does not fill the frame".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rule_takes_the_part_before_the_first_underscore() -> Result<(), DataError> {
        let rule = SubjectRule::default();
        assert_eq!(rule.subject("0001_00_00_01_3"), "0001");
        assert_eq!(rule.subject("alone"), "alone");
        let custom = SubjectRule::new(r"^s(\d+)-")?;
        assert_eq!(custom.subject("s12-take3"), "12");
        assert!(matches!(
            SubjectRule::new("(("),
            Err(DataError::BadPattern { .. })
        ));
        Ok(())
    }

    #[test]
    fn natural_order_puts_2_before_10() {
        let mut v = vec![
            PathBuf::from("f10.png"),
            PathBuf::from("f2.png"),
            PathBuf::from("f1.png"),
        ];
        v.sort_by_cached_key(|p| natural_key(p));
        assert_eq!(
            v,
            vec![
                PathBuf::from("f1.png"),
                PathBuf::from("f2.png"),
                PathBuf::from("f10.png")
            ]
        );
    }
}
