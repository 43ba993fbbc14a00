//! End-to-end training behaviour on generated data: learning, resume, interruption, checkpoints.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{make_dataset, small_train_args, trainer};
use liveness_trainer::checkpoint;
use liveness_trainer::run_dir::EpochRecord;

fn records(out: &Path) -> Vec<EpochRecord> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .expect("metrics.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("valid record"))
        .collect()
}

/// Max |a - b| over all model tensors of two checkpoints (they must hold the same names).
fn max_weight_diff(a: &Path, b: &Path) -> f64 {
    let (a, b) = (
        checkpoint::load(a).expect("load a"),
        checkpoint::load(b).expect("load b"),
    );
    assert_eq!(
        a.model.keys().collect::<Vec<_>>(),
        b.model.keys().collect::<Vec<_>>()
    );
    a.model
        .iter()
        .map(|(k, t)| f64::try_from((t - &b.model[k]).abs().max()).expect("scalar"))
        .fold(0.0, f64::max)
}

#[test]
fn loss_falls_on_learnable_data_and_metrics_are_recorded() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 4, 3);
    let out = tmp.path().join("run");
    let mut args = small_train_args(&data, &out, 8);
    args.extend(
        [
            "--epochs",
            "5",
            "--optimizer",
            "adamw",
            "--lr",
            "3e-4",
            "--seed",
            "1",
        ]
        .map(String::from),
    );
    let output = trainer().args(&args).output().expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The split's counts and the per-class metrics are printed.
    assert!(
        stdout.contains("subjects") && stdout.contains("APCER printed") && stdout.contains("ACER"),
        "{stdout}"
    );
    let r = records(&out);
    assert_eq!(
        r.iter().map(|r| r.epoch).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    let (first, last) = (
        r[0].train_loss.expect("loss"),
        r[4].train_loss.expect("loss"),
    );
    assert!(
        last < 0.5 * first,
        "training loss should fall: {first} -> {last}"
    );
    assert!(r[4].validation.roc_auc.is_some() && r[4].validation.apcer_max.is_some());
    for e in 1..=5 {
        assert!(out.join(format!("e{e}.safetensors")).is_file());
    }
    // The split never puts a subject on both sides.
    let split: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("split.json")).expect("split.json"))
            .expect("json");
    let side = |k: &str| -> BTreeSet<String> {
        split[k]
            .as_array()
            .expect("array")
            .iter()
            .map(|v| v.as_str().expect("str").to_owned())
            .collect()
    };
    assert!(side("train_subjects").is_disjoint(&side("val_subjects")));
    assert!(!side("val_subjects").is_empty());
}

#[test]
fn resume_gives_exactly_the_uninterrupted_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 3, 3);
    let run = |out: &Path, extra: &[&str]| {
        let mut args = small_train_args(&data, out, 4);
        args.extend(extra.iter().map(|s| s.to_string()));
        trainer().args(&args).assert().success();
    };
    let straight = tmp.path().join("straight");
    run(&straight, &["--epochs", "2", "--momentum", "0.9"]);

    // Stopped at an epoch boundary, then resumed.
    let by_epoch = tmp.path().join("by_epoch");
    run(&by_epoch, &["--epochs", "1", "--momentum", "0.9"]);
    run(&by_epoch, &["--epochs", "2", "--resume"]);

    // Stopped in the middle of epoch 1 (as Ctrl+C does), then resumed.
    let mid = tmp.path().join("mid");
    run(
        &mid,
        &[
            "--epochs",
            "2",
            "--momentum",
            "0.9",
            "--stop-after-steps",
            "2",
        ],
    );
    let meta = checkpoint::load(&mid.join("last.safetensors"))
        .expect("last")
        .meta;
    assert_eq!((meta.epoch, meta.step_in_epoch), (0, 2));
    run(&mid, &["--epochs", "2", "--resume"]);

    for other in [&by_epoch, &mid] {
        let last = checkpoint::load(&other.join("last.safetensors"))
            .expect("last")
            .meta;
        assert_eq!(last.epoch, 2);
        assert_eq!(
            last.optimizer_step,
            checkpoint::load(&straight.join("last.safetensors"))
                .expect("s")
                .meta
                .optimizer_step
        );
        let diff = max_weight_diff(
            &straight.join("last.safetensors"),
            &other.join("last.safetensors"),
        );
        assert_eq!(
            diff,
            0.0,
            "{} differs from the uninterrupted run",
            other.display()
        );
        assert_eq!(
            records(other).iter().map(|r| r.epoch).collect::<Vec<_>>(),
            vec![1, 2]
        );
    }
}

#[test]
fn a_damaged_checkpoint_is_never_loaded() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 2, 2);
    let out = tmp.path().join("run");
    let mut args = small_train_args(&data, &out, 4);
    args.extend(["--epochs", "1"].map(String::from));
    trainer().args(&args).assert().success();
    let good = std::fs::read(out.join("last.safetensors")).expect("read");
    assert!(checkpoint::load(&out.join("last.safetensors")).is_ok());

    // A write cut short at any point, and a single changed byte, are refused with the path named.
    for cut in [0, 7, good.len() / 3, good.len() - 1] {
        let p = tmp.path().join(format!("cut{cut}.safetensors"));
        std::fs::write(&p, &good[..cut]).expect("write");
        let err = checkpoint::load(&p).expect_err("must fail");
        assert!(
            format!("{err:#}").contains(&p.display().to_string()),
            "{err:#}"
        );
    }
    let mut flipped = good.clone();
    let at = flipped.len() - 100;
    flipped[at] ^= 0x40;
    let p = tmp.path().join("flipped.safetensors");
    std::fs::write(&p, &flipped).expect("write");
    let err = format!("{:#}", checkpoint::load(&p).expect_err("must fail"));
    assert!(err.contains("checksum"), "{err}");

    // An atomic write that died before its rename leaves only a temp file: `last` stays valid.
    std::fs::write(
        out.join(".last.safetensors.999.tmp"),
        &good[..good.len() / 2],
    )
    .expect("write");
    let mut args = small_train_args(&data, &out, 4);
    args.extend(["--epochs", "2", "--resume"].map(String::from));
    trainer().args(&args).assert().success();
    assert_eq!(
        checkpoint::load(&out.join("last.safetensors"))
            .expect("last")
            .meta
            .epoch,
        2
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_saves_last_and_exits_cleanly() {
    use std::time::Duration;
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 3, 3);
    let out = tmp.path().join("run");
    let mut args = small_train_args(&data, &out, 4);
    args.extend(["--epochs", "500"].map(String::from));
    let bin = assert_cmd::cargo::cargo_bin("liveness-trainer");
    let mut child = std::process::Command::new(bin)
        .args(&args)
        .env("OMP_NUM_THREADS", "2")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    // No wall-clock limit: a loaded machine is slow, not wrong. A trainer that dies first is.
    while !out.join("e1.safetensors").exists() {
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("the trainer exited ({status}) before finishing an epoch");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let code = child.wait().expect("wait");
    assert_eq!(
        code.code(),
        Some(130),
        "Ctrl+C should exit with 130 after saving"
    );
    let meta = checkpoint::load(&out.join("last.safetensors"))
        .expect("last is valid")
        .meta;
    assert!(meta.epoch >= 1 && meta.epoch < 500);
}
