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

/// Runs the trainer with `args`, asserting a clean failure (exit status 1, one `error:` line, no
/// panic), and returns stderr.
fn fails(args: &[&str]) -> String {
    let output = trainer().args(args).output().expect("run");
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{args:?} should fail cleanly: {err}"
    );
    assert!(
        err.starts_with("error: ") && !err.contains("panicked"),
        "{args:?}: {err}"
    );
    err
}

#[test]
fn a_missing_checkpoint_is_named_with_its_cause_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    let missing = tmp.path().join("missing.safetensors");
    let out = tmp.path().join("m.onnx");
    let err = fails(&[
        "export",
        "--checkpoint",
        path_str(&missing),
        "--out",
        path_str(&out),
        "--data-name",
        "d",
        "--data-terms",
        "t",
        "--threshold",
        "0.5",
        "--force-threshold",
    ]);
    assert!(err.contains(path_str(&missing)), "{err}");
    assert_eq!(err.matches("(os error 2)").count(), 1, "{err}");
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[test]
fn out_of_range_flags_are_refused_before_anything_runs() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 2, 1);
    let out = tmp.path().join("run");
    let (d, o) = (path_str(&data), path_str(&out));
    // `--lr 1e6` used to diverge and hang in validation on NaN scores.
    for (flag, value) in [
        ("--lr", "1e6"),
        ("--lr", "NaN"),
        ("--input-size", "0"),
        ("--input-size", "100000"),
        ("--threshold", "1.5"),
        ("--threshold", "NaN"),
        ("--batch-size", "0"),
        ("--momentum", "1"),
        ("--aug-noise", "inf"),
    ] {
        let err = fails(&[
            "train", "--device", "cpu", "--data", d, "--out", o, flag, value,
        ]);
        assert!(
            err.contains(flag) && err.contains("not allowed"),
            "{flag} {value}: {err}"
        );
    }
    assert!(!out.join("last.safetensors").exists());
    let err = fails(&[
        "bench",
        "--device",
        "cpu",
        "--input-size",
        "0",
        "--steps",
        "1",
    ]);
    assert!(err.contains("--input-size"), "{err}");
}

#[test]
fn a_misspelt_class_folder_is_an_error_not_a_silent_skip() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 2, 1);
    std::fs::rename(data.join("printed"), data.join("print")).expect("rename");
    let err = train_fails(&data, &tmp.path().join("run"));
    assert!(
        err.contains("print") && err.contains("not a class folder"),
        "{err}"
    );
    // A file in the data root (a README) is fine.
    std::fs::rename(data.join("print"), data.join("printed")).expect("rename");
    std::fs::write(data.join("README.md"), "about this data").expect("write");
    train_small(&data, &tmp.path().join("ok"), 1, &[]);
}

#[test]
fn a_truncated_jpeg_is_an_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 2, 1);
    let png = data.join("real/s0_0/2.png");
    let jpeg = data.join("real/s0_0/2.jpg");
    let img = image::open(&png).expect("open");
    img.save(&jpeg).expect("jpeg");
    std::fs::remove_file(&png).expect("rm");
    let bytes = std::fs::read(&jpeg).expect("read");
    // Whole, it trains; a third of it is refused with its path (the image crate alone decodes it).
    std::fs::write(&jpeg, &bytes[..bytes.len() / 3]).expect("write");
    assert!(
        image::load_from_memory(&bytes[..bytes.len() / 3]).is_ok(),
        "lenient decoders accept it"
    );
    let err = train_fails(&data, &tmp.path().join("run"));
    assert!(
        err.contains(path_str(&jpeg)) && err.contains("not a complete JPEG"),
        "{err}"
    );
}

#[test]
fn resume_refuses_other_data_and_other_settings() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 2, 2);
    let out = tmp.path().join("run");
    train_small(&data, &out, 1, &["--lr", "0.01"]);
    let split_before = std::fs::read(out.join("split.json")).expect("split");
    let other = make_dataset(&tmp.path().join("other"), 3, 2);
    let mut args = small_train_args(&other, &out, 4);
    args.extend(["--epochs", "2", "--resume"].map(String::from));
    let output = trainer().args(&args).output().expect("run");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        err.contains("--data")
            && err.contains(path_str(&other))
            && err.contains("the run trained on"),
        "{err}"
    );
    let mut args = small_train_args(&data, &out, 4);
    args.extend(["--epochs", "2", "--resume", "--lr", "0.5"].map(String::from));
    let output = trainer().args(&args).output().expect("run");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("--lr 0.5 differs from the checkpoint's 0.01"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(out.join("split.json")).expect("split"),
        split_before,
        "split.json kept"
    );
    // Same data, --epochs only: resumes.
    let mut args = small_train_args(&data, &out, 4);
    args.extend(["--epochs", "2", "--resume"].map(String::from));
    trainer().args(&args).assert().success();
}

#[test]
fn checkpoint_metadata_is_covered_by_the_checksum_and_validated() {
    use liveness_trainer::checkpoint::{self, CheckpointError};
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 2, 1);
    let out = tmp.path().join("run");
    train_small(&data, &out, 1, &[]);
    let good = std::fs::read(out.join("last.safetensors")).expect("read");
    // An edited threshold in the metadata (the JSON in the header) fails the checksum.
    let needle = br#"\"threshold\":0.5"#;
    let at = good
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("threshold in the header");
    let mut edited = good.clone();
    edited[at + needle.len() - 1] = b'9';
    let p = tmp.path().join("edited.safetensors");
    std::fs::write(&p, &edited).expect("write");
    let err = checkpoint::load(&p).expect_err("edited metadata");
    assert!(matches!(err, CheckpointError::Checksum(_)), "{err}");

    // Metadata that passes its checksum but is out of range (written by a broken tool): refused
    // with the path, not a hang (std = 0) or a panicking loader (input size 0).
    let ckpt = checkpoint::load(&out.join("last.safetensors")).expect("load");
    let (model, _) =
        checkpoint::load_model(&out.join("last.safetensors"), tch::Device::Cpu).expect("model");
    for (name, edit) in [
        (
            "std0",
            Box::new(|m: &mut checkpoint::Meta| m.normalization.std[1] = 0.0)
                as Box<dyn Fn(&mut checkpoint::Meta)>,
        ),
        (
            "size0",
            Box::new(|m: &mut checkpoint::Meta| m.input_size = 0),
        ),
    ] {
        let mut meta = ckpt.meta.clone();
        edit(&mut meta);
        let p = tmp.path().join(format!("{name}.safetensors"));
        checkpoint::save(&p, &meta, &model, &[]).expect("save");
        let err = fails(&[
            "eval",
            "--device",
            "cpu",
            "--checkpoint",
            path_str(&p),
            "--data",
            path_str(&data),
        ]);
        assert!(
            err.contains(path_str(&p)) && err.contains("not a valid checkpoint"),
            "{name}: {err}"
        );
    }
}

#[test]
fn score_onnx_refuses_manifests_no_runtime_can_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 2, 1);
    let out = tmp.path().join("run");
    train_small(&data, &out, 1, &["--arch", "cnn4"]);
    let onnx = tmp.path().join("m.onnx");
    trainer()
        .args([
            "export",
            "--data-name",
            "d",
            "--data-terms",
            "t",
            "--checkpoint",
        ])
        .arg(out.join("last.safetensors"))
        .arg("--out")
        .arg(&onnx)
        .assert()
        .success();
    let manifest_path = onnx.with_extension("json");
    let original: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("read")).expect("json");
    for (field, edit) in [
        (
            "input.batch",
            Box::new(|v: &mut serde_json::Value| v["input"]["batch"] = 0.into())
                as Box<dyn Fn(&mut serde_json::Value)>,
        ),
        (
            "input.size",
            Box::new(|v: &mut serde_json::Value| v["input"]["size"] = 0.into()),
        ),
        (
            "input.size",
            Box::new(|v: &mut serde_json::Value| v["input"]["size"] = 100_000.into()),
        ),
        (
            "input.normalization",
            Box::new(|v: &mut serde_json::Value| {
                v["input"]["normalization"]["std"][0] = 0.0.into()
            }),
        ),
        (
            "threshold",
            Box::new(|v: &mut serde_json::Value| v["threshold"] = 1.5.into()),
        ),
    ] {
        let mut v = original.clone();
        edit(&mut v);
        std::fs::write(&manifest_path, v.to_string()).expect("write");
        let err = fails(&[
            "score-onnx",
            "--model",
            path_str(&onnx),
            "--data",
            path_str(&data),
        ]);
        assert!(
            err.contains(field) && err.contains(path_str(&manifest_path)),
            "{field}: {err}"
        );
    }
}

#[test]
fn synth_never_writes_into_an_existing_dataset() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 1, 1);
    let before = std::fs::read_dir(data.join("real")).expect("ls").count();
    let err = fails(&["synth", "--out", path_str(&data)]);
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(
        std::fs::read_dir(data.join("real")).expect("ls").count(),
        before
    );
}

/// Synthetic attacks: a new folder only, every family of every live sample, names that keep the
/// subject (folds by person still hold), the source linked in so the result is one dataset.
#[cfg(unix)]
#[test]
fn synth_attacks_writes_a_dataset_that_keeps_people_apart() {
    use liveness_core::AttackClass;
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 2, 2);
    let err = fails(&[
        "synth-attacks",
        "--data",
        path_str(&data),
        "--out",
        path_str(&data),
    ]);
    assert!(err.contains("not empty"), "{err}");
    let out = tmp.path().join("mixed");
    let o = trainer()
        .args([
            "synth-attacks",
            "--data",
            path_str(&data),
            "--out",
            path_str(&out),
        ])
        .args([
            "--link-source",
            "--families",
            "scr-phone,prt-halftone",
            "--seed",
            "3",
        ])
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rule = liveness_trainer::dataset::SubjectRule::default();
    let source = liveness_trainer::dataset::scan(&data, &rule).expect("scan source");
    let mixed = liveness_trainer::dataset::scan(&out, &rule).expect("the output is a dataset");
    let count = |v: &[liveness_trainer::dataset::Sample], c: AttackClass| {
        v.iter().filter(|s| s.class == c).count()
    };
    let live = count(&source, AttackClass::Real);
    assert_eq!(count(&mixed, AttackClass::Real), live);
    assert_eq!(
        count(&mixed, AttackClass::Replay),
        live,
        "one scr-phone per live sample"
    );
    assert_eq!(
        count(&mixed, AttackClass::Printed),
        count(&source, AttackClass::Printed) + live,
        "the recorded prints and one prt-halftone per live sample"
    );
    for s in mixed
        .iter()
        .filter(|s| s.path.to_string_lossy().contains("scr-"))
    {
        let name = s.path.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        let (subject, rest) = name.split_once("_scr-phone_").expect("family in the name");
        assert_eq!(s.subject, subject, "{name}");
        assert!(
            source
                .iter()
                .any(|l| l.subject == subject && l.path.ends_with(format!("{subject}_{rest}"))),
            "{name} comes from a live sample of the same person"
        );
    }
    // A source without live samples has nothing to re-photograph.
    let prints = make_dataset(&tmp.path().join("prints"), 1, 1);
    std::fs::remove_dir_all(prints.join("real")).expect("rm real");
    let err = fails(&[
        "synth-attacks",
        "--data",
        path_str(&prints),
        "--out",
        path_str(&tmp.path().join("x")),
    ]);
    assert!(err.contains("no live samples"), "{err}");
}

#[cfg(unix)]
#[test]
fn non_utf8_names_are_shown_so_they_can_be_found_again() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 2, 1);
    let odd = data
        .join("real")
        .join(std::ffi::OsStr::from_bytes(b"s0_bad\xff"));
    std::fs::create_dir(&odd).expect("mkdir");
    std::fs::write(odd.join("0.png"), b"not a png").expect("write");
    let err = train_fails(&data, &tmp.path().join("run"));
    assert!(err.contains("s0_bad\\xFF"), "{err}");
}

#[test]
fn a_run_folder_that_cannot_be_written_is_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 2, 1);
    // /proc/self exists and no one, root included, may create files in it.
    let err = fails(&[
        "train",
        "--device",
        "cpu",
        "--input-size",
        "32",
        "--data",
        path_str(&data),
        "--out",
        "/proc/self",
    ]);
    assert!(err.contains("/proc/self"), "{err}");
}
