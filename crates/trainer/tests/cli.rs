//! The `eval`, `score` and `bench` subcommands, `--init-weights`, and the CUDA link.

mod common;

use common::{make_dataset, success_stdout, train_small, trainer};
use liveness_core::Arch;
use liveness_trainer::arch::Model;
use tch::{Device, Kind, Tensor};

#[test]
fn eval_and_score_agree_with_each_other() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 2, 2);
    let out = tmp.path().join("run");
    train_small(&data, &out, 1, &[]);
    let ckpt = out.join("e1.safetensors");

    let output = trainer()
        .args(["score", "--device", "cpu", "--checkpoint"])
        .arg(&ckpt)
        .arg("--data")
        .arg(&data)
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 8);
    for l in &lines {
        let spoof = l["spoof"].as_f64().expect("spoof");
        assert!((0.0..=1.0).contains(&spoof));
        assert!(["real", "printed"].contains(&l["class"].as_str().expect("class")));
        assert!(std::path::Path::new(l["path"].as_str().expect("path")).is_dir());
    }

    // eval's report is the metrics of exactly these scores.
    let output = trainer()
        .args([
            "eval",
            "--device",
            "cpu",
            "--json",
            "--threshold",
            "0.5",
            "--checkpoint",
        ])
        .arg(&ckpt)
        .arg("--data")
        .arg(&data)
        .output()
        .expect("run");
    assert!(output.status.success());
    let report: liveness_core::Report = serde_json::from_slice(&output.stdout).expect("report");
    let scored: Vec<liveness_core::ScoredSample> = lines
        .iter()
        .map(|l| liveness_core::ScoredSample {
            class: serde_json::from_value(l["class"].clone()).expect("class"),
            spoof: l["spoof"].as_f64().expect("spoof") as f32,
        })
        .collect();
    assert_eq!(report, liveness_core::evaluate(&scored, 0.5));

    let text = trainer()
        .args(["eval", "--device", "cpu", "--checkpoint"])
        .arg(&ckpt)
        .arg("--data")
        .arg(&data)
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("true live") && text.contains("APCER printed"),
        "{text}"
    );
}

#[test]
fn bench_prints_one_json_line_for_each_mode() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 2, 2);
    for extra in [
        vec![],
        vec!["--data".to_owned(), data.display().to_string()],
    ] {
        let output = trainer()
            .args([
                "bench",
                "--device",
                "cpu",
                "--batch-size",
                "2",
                "--input-size",
                "32",
                "--steps",
                "2",
                "--warmup",
                "1",
            ])
            .args(&extra)
            .output()
            .expect("run");
        let stdout = success_stdout(output);
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json");
        assert!(v["frames_per_s"].as_f64().expect("fps") > 0.0);
        assert_eq!(v["frames_per_step"], 10);
        assert_eq!(
            v["mode"],
            if extra.is_empty() {
                "synthetic"
            } else {
                "loader"
            }
        );
        assert_eq!(v["loader_frames_per_s"].is_number(), !extra.is_empty());
    }
}

#[test]
fn init_weights_load_a_torchvision_state_dict() {
    let tmp = tempfile::tempdir().expect("tmp");
    // A torchvision-named ResNet-18 state_dict: a model's encoder tensors without the prefix,
    // plus what torchvision adds (fc, num_batches_tracked).
    tch::manual_seed(11);
    let donor = Model::new(Arch::Resnet18, Device::Cpu);
    let vars = donor.vs.variables();
    let mut named: Vec<(String, Tensor)> = vars
        .iter()
        .filter_map(|(k, t)| {
            k.strip_prefix("encoder.")
                .map(|n| (n.to_owned(), t.detach()))
        })
        .collect();
    named.push((
        "fc.weight".into(),
        Tensor::zeros([1000, 512], (Kind::Float, Device::Cpu)),
    ));
    named.push((
        "bn1.num_batches_tracked".into(),
        Tensor::zeros([1], (Kind::Int64, Device::Cpu)),
    ));
    let path = tmp.path().join("resnet18.safetensors");
    Tensor::write_safetensors(&named, &path).expect("write");

    tch::manual_seed(99);
    let mut model = Model::new(Arch::Resnet18, Device::Cpu);
    model.init_encoder(&path).expect("load");
    let loaded = model.vs.variables();
    for (k, t) in &vars {
        if k.starts_with("encoder.") {
            assert_eq!(
                f64::try_from((t - &loaded[k]).abs().max()).expect("scalar"),
                0.0,
                "{k}"
            );
        }
    }
    // The head keeps its own initialisation.
    assert!(
        f64::try_from((&vars["fc.weight"] - &loaded["fc.weight"]).abs().max()).expect("scalar")
            > 0.0
    );

    // A file lacking a tensor is refused, naming it.
    named.retain(|(k, _)| k != "layer3.1.bn2.running_var");
    Tensor::write_safetensors(&named, &path).expect("write");
    let err = format!("{:#}", model.init_encoder(&path).expect_err("must fail"));
    assert!(err.contains("layer3.1.bn2.running_var"), "{err}");
    // The small network has no torchvision counterpart.
    let mut small = Model::new(Arch::Cnn4, Device::Cpu);
    let err = small.init_encoder(&path).expect_err("cnn4").to_string();
    assert!(err.contains("--arch cnn4"), "{err}");
}

/// rustc's `--as-needed` silently drops libtorch_cuda unless build.rs forces it in; then CUDA is
/// missing even on a GPU server. Without a GPU, a linked CUDA backend fails with "no NVIDIA
/// driver"; an unlinked one with "Could not run ... from the 'CUDA' backend".
#[test]
fn the_cuda_backend_is_linked() {
    match Tensor::f_zeros([1], (Kind::Float, Device::Cuda(0))) {
        Ok(t) => assert_eq!(t.device(), Device::Cuda(0)),
        Err(e) => {
            let msg = e.to_string();
            eprintln!("CUDA: {}", msg.lines().next().unwrap_or(""));
            assert!(
                !msg.contains("'CUDA' backend"),
                "libtorch_cuda is not linked: {msg}"
            );
            assert!(
                msg.contains("NVIDIA driver") || msg.contains("CUDA"),
                "unexpected error: {msg}"
            );
        }
    }
}

#[test]
fn report_summarises_folds_at_one_threshold_from_validation_scores() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 3, 2);
    let mut runs = Vec::new();
    for subject in ["s0", "s1"] {
        let out = tmp.path().join(subject);
        train_small(&data, &out, 2, &["--val-subjects", subject]);
        assert!(out.join("training.png").is_file());
        runs.push(out);
    }
    let report_dir = tmp.path().join("report");
    let output = trainer()
        .arg("report")
        .arg("--runs")
        .args(&runs)
        .arg("--out")
        .arg(&report_dir)
        .output()
        .expect("run");
    let stdout = success_stdout(output);
    assert!(
        stdout.contains("mean ± std") && stdout.contains("ACER"),
        "{stdout}"
    );
    for png in ["roc.png", "fold-1-training.png", "fold-2-training.png"] {
        let bytes = std::fs::read(report_dir.join(png)).expect("png");
        assert!(
            image::load_from_memory(&bytes).is_ok(),
            "{png} is not an image"
        );
    }
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report_dir.join("report.json")).expect("json"))
            .expect("json");
    let threshold = r["threshold"].as_f64().expect("threshold") as f32;
    // Each fold's figures are its own validation scores' metrics at the pooled threshold.
    for (k, run) in runs.iter().enumerate() {
        let scored: Vec<liveness_core::ScoredSample> =
            std::fs::read_to_string(run.join("val_scores.jsonl"))
                .expect("scores")
                .lines()
                .map(|l| {
                    serde_json::from_str::<liveness_trainer::scoring::ScoreLine>(l).expect("line")
                })
                .map(|l| liveness_core::ScoredSample {
                    class: l.class,
                    spoof: l.spoof,
                })
                .collect();
        let want = liveness_core::evaluate(&scored, threshold);
        let got: liveness_core::Report =
            serde_json::from_value(r["folds"][k][1].clone()).expect("report");
        assert_eq!(got, want);
    }
}
