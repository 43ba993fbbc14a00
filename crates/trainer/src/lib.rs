//! The native trainer of the liveness model, on libtorch through `tch`: dataset reading and the
//! subject-grouped split, the parallel loader (with the face crop), the architectures, resumable
//! training with atomic checkpoints, evaluation, scoring, export, and a throughput benchmark.
//! `main.rs` is the CLI; each subcommand's flags live in its module.
//!
//! Layout, lowest first (no module imports one above it): `config` (flags and their defaults),
//! `dataset`, `split`, `run_dir` (paths, records, atomic writes), `input`, `arch`, `optim`,
//! `augment`, `loader`, `checkpoint`, `resume`, `plots`, `scoring`, `report`, `train` (the loop only),
//! `bench`, `export`, `score_onnx` (`score-onnx`, `faces`), `synthetic` (generated test data), `attacks`
//! (synthetic presentation attacks from live samples).

pub mod arch;
pub mod attacks;
pub mod augment;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod dataset;
pub mod export;
pub mod input;
pub mod loader;
pub mod optim;
pub mod plots;
pub mod report;
pub mod resume;
pub mod run_dir;
pub mod score_onnx;
pub mod scoring;
pub mod split;
pub mod synthetic;
pub mod train;

/// A path as the messages of every command write it (lossless for UTF-8 paths, debug-quoted
/// otherwise), so that an error names the file at fault exactly.
pub fn shown(path: &std::path::Path) -> String {
    match path.to_str() {
        Some(s) => s.to_owned(),
        None => format!("{:?}", path.as_os_str()),
    }
}
