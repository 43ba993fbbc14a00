//! Bad input gets a clear error that names the thing at fault, and nothing else is lost.

mod common;

use std::path::Path;

use common::{make_dataset, small_train_args, train_small, trainer};

/// Runs `train` on `data` and returns stderr, asserting failure.
fn train_fails(data: &Path, out: &Path) -> String {
    let output = trainer()
        .args(small_train_args(data, out, 4))
        .args(["--epochs", "1"])
        .output()
        .expect("run");
    assert!(
        !output.status.success(),
        "training should fail on {}",
        data.display()
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn each_kind_of_bad_dataset_is_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("run");

    let missing = tmp.path().join("nope");
    let err = train_fails(&missing, &out);
    assert!(
        err.contains("does not exist") && err.contains(&missing.display().to_string()),
        "{err}"
    );

    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let err = train_fails(&empty, &out);
    assert!(err.contains("none of the class folders"), "{err}");

    let data = make_dataset(&tmp.path().join("d1"), 2, 2);
    std::fs::create_dir_all(data.join("replay")).expect("mkdir");
    let err = train_fails(&data, &out);
    assert!(
        err.contains("holds no sample folders") && err.contains("replay"),
        "{err}"
    );

    let data = make_dataset(&tmp.path().join("d2"), 2, 2);
    let short = data.join("printed/s1_0");
    std::fs::remove_file(short.join("4.png")).expect("rm");
    let err = train_fails(&data, &out);
    assert!(
        err.contains("holds 4 frame files") && err.contains(&short.display().to_string()),
        "{err}"
    );

    let data = make_dataset(&tmp.path().join("d3"), 2, 2);
    let bad = data.join("real/s0_1/2.png");
    std::fs::write(&bad, b"this is not a png").expect("write");
    let err = train_fails(&data, &out);
    assert!(
        err.contains("not a readable image") && err.contains(&bad.display().to_string()),
        "{err}"
    );

    // A file whose header is fine but whose data is cut: found while decoding, still named.
    let data = make_dataset(&tmp.path().join("d4"), 2, 2);
    let cut = data.join("real/s1_0/3.png");
    let bytes = std::fs::read(&cut).expect("read");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let err = train_fails(&data, &out);
    assert!(err.contains(&cut.display().to_string()), "{err}");

    let data = make_dataset(&tmp.path().join("d5"), 2, 2);
    let odd = data.join("printed/s0_1/1.png");
    image::RgbImage::new(20, 20).save(&odd).expect("write");
    let err = train_fails(&data, &out);
    assert!(
        err.contains("must share one size") && err.contains(&odd.display().to_string()),
        "{err}"
    );

    // Nothing was written for the failed runs.
    assert!(!out.join("last.safetensors").exists());
}

#[test]
fn a_checkpoint_of_another_architecture_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 2, 2);
    // A valid safetensors file holding some other model.
    let other = tmp.path().join("other.safetensors");
    let t = tch::Tensor::zeros([3, 3], (tch::Kind::Float, tch::Device::Cpu));
    tch::Tensor::write_safetensors(&[("weight", &t)], &other).expect("write");
    let output = trainer()
        .args(["eval", "--device", "cpu", "--checkpoint"])
        .arg(&other)
        .arg("--data")
        .arg(&data)
        .output()
        .expect("run");
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains(&other.display().to_string()) && err.contains("not a valid checkpoint"),
        "{err}"
    );

    // A real checkpoint with one tensor of the wrong shape.
    let out = tmp.path().join("run");
    train_small(&data, &out, 1, &[]);
    let ckpt = liveness_trainer::checkpoint::load(&out.join("last.safetensors")).expect("load");
    let model = liveness_trainer::arch::Model::new(liveness_core::Arch::Resnet18, tch::Device::Cpu);
    let mut wrong = ckpt;
    wrong.model.insert(
        "fc.weight".into(),
        tch::Tensor::zeros([1, 128], (tch::Kind::Float, tch::Device::Cpu)),
    );
    let err = format!(
        "{:#}",
        wrong
            .apply_to(&model, Path::new("x.safetensors"))
            .expect_err("must fail")
    );
    assert!(err.contains("fc.weight") && err.contains("shape"), "{err}");
    // A checkpoint of the other architecture.
    let small = liveness_trainer::arch::Model::new(liveness_core::Arch::Cnn4, tch::Device::Cpu);
    let err = format!(
        "{:#}",
        wrong
            .apply_to(&small, Path::new("x.safetensors"))
            .expect_err("must fail")
    );
    assert!(err.contains("resnet18") && err.contains("cnn4"), "{err}");
}

#[test]
fn bad_flags_are_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 2, 1);
    let out = tmp.path().join("run");
    for (flags, needle) in [
        (vec!["--device", "tpu"], "--device"),
        (vec!["--input-size", "8"], "--input-size"),
        (vec!["--val-subjects", "s9"], "s9"),
        (vec!["--subject-pattern", "(("], "subject pattern"),
        (vec!["--val-fraction", "1.5"], "--val-fraction"),
    ] {
        let mut args = small_train_args(&data, &out, 4);
        // Later flags replace earlier ones only where the helper did not set them.
        if flags[0] == "--device" {
            args.retain(|a| a != "cpu");
            args.retain(|a| a != "--device");
        }
        let output = trainer().args(&args).args(&flags).output().expect("run");
        assert!(!output.status.success(), "{flags:?} should fail");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains(needle), "{flags:?}: {err}");
    }
}

#[test]
fn a_fresh_run_never_overwrites_another_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 2, 2);
    let out = tmp.path().join("run");
    train_small(&data, &out, 1, &[]);
    let before = std::fs::read(out.join("last.safetensors")).expect("read");
    let output = trainer()
        .args(small_train_args(&data, &out, 4))
        .args(["--epochs", "2"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("already holds a run") && err.contains("--resume"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(out.join("last.safetensors")).expect("read"),
        before
    );
}
