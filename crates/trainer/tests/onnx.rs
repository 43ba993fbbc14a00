//! ONNX export: parity of tch with tract on the exported file, manifest hashing, refusals.

mod common;

use std::path::{Path, PathBuf};

use common::{make_dataset, train_small, trainer};
use liveness_core::manifest::Manifest;
use liveness_trainer::checkpoint::{self, FORMAT, Meta};
use liveness_trainer::model::{ARCH, SpoofModel};
use liveness_trainer::onnx_runtime::{Engine, OnnxModel};
use liveness_trainer::train::TrainConfig;
use tch::{Device, Kind, Tensor};

/// A randomly initialised model whose BatchNorm layers have statistics and affine parameters far
/// from their defaults (0/1), so that folding them into the convolutions is really exercised.
fn model_with_odd_batchnorm(seed: i64) -> SpoofModel {
    tch::manual_seed(seed);
    let model = SpoofModel::new(Device::Cpu);
    tch::no_grad(|| {
        for (name, var) in model.vs.variables() {
            let mut v = var.shallow_clone();
            let n = v.size();
            let bn = name.contains(".bn") || name.contains("downsample.1");
            if name.ends_with("running_mean") {
                v.copy_(&(Tensor::randn(n.as_slice(), (Kind::Float, Device::Cpu)) * 0.5 + 0.7));
            } else if name.ends_with("running_var") {
                v.copy_(&(Tensor::rand(n.as_slice(), (Kind::Float, Device::Cpu)) * 2.5 + 0.5));
            } else if bn && name.ends_with("weight") {
                v.copy_(&(Tensor::rand(n.as_slice(), (Kind::Float, Device::Cpu)) + 0.5));
            } else if bn && name.ends_with("bias") {
                v.copy_(&(Tensor::randn(n.as_slice(), (Kind::Float, Device::Cpu)) * 0.3));
            }
        }
    });
    model
}

fn save_checkpoint(model: &SpoofModel, path: &Path, input_size: u32, arch: &str) {
    let config = TrainConfig {
        input_size,
        ..TrainConfig::default()
    };
    let meta = Meta {
        format: FORMAT.into(),
        arch: arch.into(),
        epoch: 1,
        step_in_epoch: 0,
        epoch_loss: (0.0, 0),
        optimizer_step: 1,
        input_size,
        normalization: config.normalization,
        config,
        classes: vec![],
        validation: None,
        written_by: "test".into(),
    };
    checkpoint::save(path, &meta, model, &[]).expect("save checkpoint");
}

fn export(ckpt: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    trainer()
        .args([
            "export",
            "--data-name",
            "synthetic",
            "--data-terms",
            "test data",
            "--checkpoint",
        ])
        .arg(ckpt)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("run export")
}

/// Max |tch logit - runtime logit| on one random input of the model's batch, and max |logit|.
fn max_logit_diff(model: &SpoofModel, onnx: &Path, engine: Engine) -> (f64, f64) {
    let runtime = OnnxModel::load(onnx, None, engine).expect("load onnx");
    let shape: Vec<i64> = runtime
        .manifest
        .input
        .shape()
        .iter()
        .map(|&d| d as i64)
        .collect();
    let input = Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu));
    let want = Vec::<f32>::try_from(tch::no_grad(|| model.forward_t(&input, false)).flatten(0, -1))
        .expect("tch");
    let got = runtime
        .run(Vec::<f32>::try_from(input.flatten(0, -1)).expect("input"))
        .expect("tract run");
    assert_eq!(want.len(), got.len());
    let diff = want
        .iter()
        .zip(&got)
        .map(|(a, b)| f64::from((a - b).abs()))
        .fold(0.0, f64::max);
    let scale = want.iter().map(|a| f64::from(a.abs())).fold(0.0, f64::max);
    (diff, scale)
}

#[test]
fn tch_and_tract_agree_on_random_weights_with_odd_batchnorm() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model = model_with_odd_batchnorm(21);
    let ckpt = tmp.path().join("odd.safetensors");
    save_checkpoint(&model, &ckpt, 48, ARCH);
    let onnx = tmp.path().join("odd.onnx");
    let output = export(&ckpt, &onnx, &["--batch", "2"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (diff, scale) = max_logit_diff(&model, &onnx, Engine::Tract);
    eprintln!(
        "random weights, odd BatchNorm: max |logit tch - tract| = {diff:.3e} (max |logit| {scale:.3})"
    );
    assert!(diff <= 1e-4, "max |Δlogit| {diff}");

    // The same weights with BatchNorm left at 0/1 give other logits: folding matters here.
    tch::manual_seed(21);
    let plain = SpoofModel::new(Device::Cpu);
    let x = Tensor::randn([1, 5, 3, 48, 48], (Kind::Float, Device::Cpu));
    let a = tch::no_grad(|| model.forward_t(&x, false));
    let b = tch::no_grad(|| plain.forward_t(&x, false));
    assert!(f64::try_from((a - b).abs().max()).expect("scalar") > 1e-2);
}

#[test]
fn trained_model_scores_the_same_through_tch_and_onnx() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 3, 2);
    let run = tmp.path().join("run");
    train_small(&data, &run, 2, &[]);
    let ckpt = run.join("last.safetensors");
    let onnx = tmp.path().join("trained.onnx");
    let output = export(&ckpt, &onnx, &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Same input tensor through both runtimes.
    let (model, _) = checkpoint::load_model(&ckpt, Device::Cpu).expect("load");
    let (diff, _) = max_logit_diff(&model, &onnx, Engine::Tract);
    eprintln!("trained weights: max |logit tch - tract| = {diff:.3e}");
    assert!(diff <= 1e-4, "max |Δlogit| {diff}");

    // Whole pipeline: `score` (tch, device-side normalisation) vs `score-onnx` (tract, the
    // browser's preprocessing) on the same folder.
    let lines = |args: &[&str]| -> Vec<(String, f64)> {
        let o = trainer().args(args).output().expect("run");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("json");
                (
                    v["path"].as_str().expect("path").to_owned(),
                    v["spoof"].as_f64().expect("spoof"),
                )
            })
            .collect()
    };
    let (c, d, m) = (
        ckpt.display().to_string(),
        data.display().to_string(),
        onnx.display().to_string(),
    );
    let a = lines(&["score", "--device", "cpu", "--checkpoint", &c, "--data", &d]);
    let b = lines(&["score-onnx", "--model", &m, "--data", &d]);
    assert_eq!(a.len(), 12);
    assert_eq!(
        a.iter().map(|x| &x.0).collect::<Vec<_>>(),
        b.iter().map(|x| &x.0).collect::<Vec<_>>()
    );
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x.1 - y.1).abs())
        .fold(0.0, f64::max);
    eprintln!("score vs score-onnx: max |Δp_spoof| = {worst:.3e}");
    assert!(worst <= 1e-4, "max |Δp_spoof| {worst}");

    // The manifest describes the file and the run.
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(onnx.with_extension("json")).expect("json"))
            .expect("manifest");
    assert_eq!(manifest.input.size, 32);
    assert_eq!(manifest.data.name, "synthetic");
    assert!(manifest.validation.is_some());
    assert_eq!(manifest.data.classes.len(), 2);
}

#[test]
fn a_changed_byte_in_the_model_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model = model_with_odd_batchnorm(3);
    let ckpt = tmp.path().join("m.safetensors");
    save_checkpoint(&model, &ckpt, 32, ARCH);
    let onnx = tmp.path().join("m.onnx");
    assert!(export(&ckpt, &onnx, &[]).status.success());
    let bytes = std::fs::read(&onnx).expect("read");
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(onnx.with_extension("json")).expect("read"))
            .expect("manifest");
    assert_eq!(manifest.sha256, liveness_core::manifest::sha256_hex(&bytes));
    assert!(OnnxModel::load(&onnx, None, Engine::Tract).is_ok());
    let mut changed = bytes;
    let at = changed.len() / 2;
    changed[at] ^= 0x01;
    std::fs::write(&onnx, &changed).expect("write");
    let Err(e) = OnnxModel::load(&onnx, None, Engine::Tract) else {
        panic!("a changed byte must be refused")
    };
    let err = format!("{e:#}");
    assert!(err.contains("SHA-256") && err.contains("m.onnx"), "{err}");
}

#[test]
fn export_refuses_what_it_cannot_write_or_wonnx_cannot_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model = model_with_odd_batchnorm(4);
    let ckpt = tmp.path().join("m.safetensors");
    save_checkpoint(&model, &ckpt, 32, ARCH);
    let stderr = |o: std::process::Output| {
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };

    // Too many frames per Conv for wonnx at 224²: 5 samples = 25 frames.
    let err = stderr(export(
        &ckpt,
        &tmp.path().join("big.onnx"),
        &["--size", "224", "--batch", "5"],
    ));
    assert!(err.contains("wonnx") && err.contains("at most 4"), "{err}");
    assert!(!tmp.path().join("big.onnx").exists());
    // ...while 4 samples fit.
    assert!(
        export(
            &ckpt,
            &tmp.path().join("ok.onnx"),
            &["--size", "224", "--batch", "4"]
        )
        .status
        .success()
    );

    let missing_dir: PathBuf = tmp.path().join("no/such/dir/m.onnx");
    let err = stderr(export(&ckpt, &missing_dir, &[]));
    assert!(
        err.contains("does not exist") && err.contains("no/such/dir"),
        "{err}"
    );
    let err = stderr(export(&ckpt, &tmp.path().join("m.txt"), &[]));
    assert!(err.contains(".onnx"), "{err}");

    let other = tmp.path().join("other.safetensors");
    save_checkpoint(&model, &other, 32, "mobilenet-v3");
    let err = stderr(export(&other, &tmp.path().join("o.onnx"), &[]));
    assert!(
        err.contains("mobilenet-v3") && err.contains(&other.display().to_string()),
        "{err}"
    );
}

/// wonnx is what the browser runs: natively (wgpu on Vulkan, lavapipe without a GPU) it must give
/// the same logits as tch, on weights with odd BatchNorm and on trained weights.
#[test]
fn tch_and_wonnx_agree() {
    let tmp = tempfile::tempdir().expect("tmp");
    let odd = model_with_odd_batchnorm(8);
    let ckpt = tmp.path().join("odd.safetensors");
    save_checkpoint(&odd, &ckpt, 32, ARCH);
    let onnx = tmp.path().join("odd.onnx");
    assert!(export(&ckpt, &onnx, &["--batch", "2"]).status.success());
    let (diff, scale) = max_logit_diff(&odd, &onnx, Engine::Wonnx);
    eprintln!(
        "wonnx, odd BatchNorm: max |logit tch - wonnx| = {diff:.3e} (max |logit| {scale:.3})"
    );
    assert!(diff <= 1e-4, "max |Δlogit| {diff}");

    let data = make_dataset(&tmp.path().join("data"), 2, 2);
    let run = tmp.path().join("run");
    train_small(&data, &run, 1, &[]);
    let trained = tmp.path().join("trained.onnx");
    assert!(
        export(&run.join("last.safetensors"), &trained, &[])
            .status
            .success()
    );
    let (model, _) =
        checkpoint::load_model(&run.join("last.safetensors"), Device::Cpu).expect("load");
    let (diff, _) = max_logit_diff(&model, &trained, Engine::Wonnx);
    eprintln!("wonnx, trained: max |logit tch - wonnx| = {diff:.3e}");
    assert!(diff <= 1e-4, "max |Δlogit| {diff}");
}

/// wonnx panics when it finds no GPU adapter; the CLI must turn that into a plain error.
#[test]
fn wonnx_without_an_adapter_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model = model_with_odd_batchnorm(5);
    let ckpt = tmp.path().join("m.safetensors");
    save_checkpoint(&model, &ckpt, 32, ARCH);
    let onnx = tmp.path().join("m.onnx");
    assert!(export(&ckpt, &onnx, &[]).status.success());
    let data = make_dataset(&tmp.path().join("data"), 1, 1);
    // A backend that does not exist on Linux: wgpu finds no adapter.
    let output = trainer()
        .env("WGPU_BACKEND", "dx12")
        .args(["score-onnx", "--engine", "wonnx", "--model"])
        .arg(&onnx)
        .arg("--data")
        .arg(&data)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error:") && err.contains("wonnx failed") && err.contains("m.onnx"),
        "{err}"
    );
}

/// The model the widget loads: its manifest's hash matches, it says where its data came from and
/// under which terms, and it runs on frames it has never seen.
#[test]
fn the_shipped_default_model_matches_its_manifest_and_runs() {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let model = OnnxModel::load(&models.join("default.onnx"), None, Engine::Tract)
        .expect("default model loads and verifies");
    let m = &model.manifest;
    assert!(
        m.data.terms.contains("research use only"),
        "{}",
        m.data.terms
    );
    assert!(m.data.name.contains("NUAA"));
    assert!(m.cross_validation.is_some() && m.training_command.is_some());
    assert!(m.threshold > 0.0 && m.threshold < 1.0);
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 1, 1);
    let samples = liveness_trainer::dataset::scan(&data, &Default::default()).expect("scan");
    let logits = model.score_samples(&samples).expect("run");
    assert_eq!(logits.len(), 2);
    assert!(logits.iter().all(|l| l.is_finite()));
}
