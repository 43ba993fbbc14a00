//! Tiny generated datasets for the trainer's tests (never the real data).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// Frame size of generated samples (not square, to exercise the crop; large enough for the face
/// detector to find the drawn faces).
pub const WIDTH: u32 = 160;
pub const HEIGHT: u32 = 120;

/// Writes a generated dataset (see `liveness_trainer::synthetic`) and returns its root.
pub fn make_dataset(root: &Path, subjects: u32, per_class: u32) -> PathBuf {
    liveness_trainer::synthetic::write_dataset(root, subjects, per_class, WIDTH, HEIGHT, false)
        .expect("write dataset");
    root.to_owned()
}

/// The trainer binary, quiet about CPU threads.
pub fn trainer() -> Command {
    let mut c = Command::cargo_bin("liveness-trainer").expect("binary built");
    c.env("OMP_NUM_THREADS", "2");
    c
}

/// Training arguments small enough for a test.
pub fn small_train_args(data: &Path, out: &Path, batch_size: usize) -> Vec<String> {
    let batch_size = batch_size.to_string();
    [
        "train",
        "--device",
        "cpu",
        "--data",
        &data.display().to_string(),
        "--out",
        &out.display().to_string(),
        "--input-size",
        "32",
        "--batch-size",
        &batch_size,
        "--val-batch-size",
        "8",
        "--workers",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Trains the small setup for `epochs` epochs (plus `extra` flags), asserting success.
pub fn train_small(data: &Path, out: &Path, epochs: usize, extra: &[&str]) {
    trainer()
        .args(small_train_args(data, out, 4))
        .args(["--epochs", &epochs.to_string()])
        .args(extra)
        .assert()
        .success();
}

/// The stdout of a run that must have succeeded (its stderr in the panic otherwise).
pub fn success_stdout(output: std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
