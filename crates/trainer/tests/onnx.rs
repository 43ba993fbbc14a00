//! ONNX export of every architecture: parity of tch with tract and wonnx on the exported file
//! (random weights with odd BatchNorm, trained weights), `score` vs `score-onnx`, manifest
//! hashing, refusals.

mod common;

use std::path::{Path, PathBuf};

use common::{make_dataset, train_small, trainer};
use liveness_core::Arch;
use liveness_core::manifest::Manifest;
use liveness_runtime::Backend;
use liveness_trainer::arch::Model;
use liveness_trainer::checkpoint::{self, Meta};
use liveness_trainer::config::TrainConfig;
use liveness_trainer::score_onnx::OnnxModel;
use tch::{Device, Kind, Tensor};

/// A randomly initialised model whose BatchNorm layers have statistics and affine parameters far
/// from their defaults (0/1), so that folding them into the convolutions is really exercised.
fn model_with_odd_batchnorm(arch: Arch, seed: i64) -> Model {
    tch::manual_seed(seed);
    let model = Model::new(arch, Device::Cpu);
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

fn save_checkpoint(model: &Model, path: &Path, input_size: u32) {
    let config = TrainConfig {
        input_size,
        arch: model.arch,
        ..TrainConfig::default()
    };
    let meta = Meta {
        epoch: 1,
        optimizer_step: 1,
        ..Meta::for_config(&config)
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

fn exported(ckpt: &Path, out: &Path, extra: &[&str]) {
    let o = export(ckpt, out, extra);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The JSON lines of `score` (tch, the checkpoint) and of `score-onnx` (tract, the exported
/// model with the face gate and the browser's preprocessing) on the same folder.
fn score_both(
    ckpt: &Path,
    onnx: &Path,
    data: &Path,
) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let lines = |args: &[&std::ffi::OsStr]| -> Vec<serde_json::Value> {
        common::success_stdout(trainer().args(args).output().expect("run"))
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect()
    };
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    let tch = lines(&[
        os("score"),
        os("--device"),
        os("cpu"),
        os("--checkpoint"),
        ckpt.as_os_str(),
        os("--data"),
        data.as_os_str(),
    ]);
    let tract = lines(&[
        os("score-onnx"),
        os("--model"),
        onnx.as_os_str(),
        os("--data"),
        data.as_os_str(),
    ]);
    (tch, tract)
}

/// The `logit` of each `score` / `score-onnx` line.
fn logits(lines: &[serde_json::Value]) -> Vec<f32> {
    lines
        .iter()
        .map(|x| {
            x["logit"]
                .as_f64()
                .unwrap_or_else(|| panic!("no logit in {x}")) as f32
        })
        .collect()
}

/// Asserts that the runtime's logits match tch's on one random input of the model's batch drawn
/// from `seed`, within 1e-4 of their size ([`liveness_core::testing::max_logit_error`]), and
/// prints the error under `what`.
fn assert_engine_matches_tch(model: &Model, onnx: &Path, engine: Backend, seed: i64, what: &str) {
    let runtime = OnnxModel::load(onnx, None, engine).expect("load onnx");
    let shape: Vec<i64> = runtime
        .manifest()
        .input
        .shape()
        .iter()
        .map(|&d| d as i64)
        .collect();
    tch::manual_seed(seed);
    let input = Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu));
    let want = Vec::<f32>::try_from(tch::no_grad(|| model.forward_t(&input, false)).flatten(0, -1))
        .expect("tch");
    let got = runtime
        .run(Vec::<f32>::try_from(input.flatten(0, -1)).expect("input"))
        .expect("runtime run");
    let error = liveness_core::testing::assert_logits_close(
        &format!("{what}, {engine:?} vs tch"),
        &got,
        &want,
        1e-4,
    );
    let scale = want.iter().map(|a| f64::from(a.abs())).fold(0.0, f64::max);
    eprintln!(
        "{what}: max |Δlogit| / max(1, |logit|) {engine:?} vs tch = {error:.3e} (max |logit| {scale:.3})"
    );
}

#[test]
fn tch_and_tract_agree_on_random_weights_with_odd_batchnorm() {
    let tmp = tempfile::tempdir().expect("tmp");
    for arch in Arch::ALL {
        let model = model_with_odd_batchnorm(arch, 21);
        let ckpt = tmp.path().join(format!("{arch}.safetensors"));
        save_checkpoint(&model, &ckpt, 48);
        let onnx = tmp.path().join(format!("{arch}.onnx"));
        exported(&ckpt, &onnx, &["--batch", "2"]);
        assert_engine_matches_tch(
            &model,
            &onnx,
            Backend::Cpu,
            1,
            &format!("{arch}, random weights, odd BatchNorm"),
        );

        // The same weights with BatchNorm left at 0/1 give other logits: folding matters here.
        tch::manual_seed(21);
        let plain = Model::new(arch, Device::Cpu);
        let c = 3 * arch.views() as i64;
        let x = Tensor::randn([1, 5, c, 48, 48], (Kind::Float, Device::Cpu));
        let a = tch::no_grad(|| model.forward_t(&x, false));
        let b = tch::no_grad(|| plain.forward_t(&x, false));
        assert!(
            f64::try_from((a - b).abs().max()).expect("scalar") > 1e-3,
            "{arch}"
        );
    }
}

#[test]
fn trained_models_score_the_same_through_tch_and_onnx() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 3, 2);
    for arch in Arch::ALL {
        let run = tmp.path().join(format!("run-{arch}"));
        train_small(&data, &run, 2, &["--arch", arch.name()]);
        let ckpt = run.join("last.safetensors");
        let onnx = tmp.path().join(format!("trained-{arch}.onnx"));
        exported(&ckpt, &onnx, &[]);

        // Same input tensor through both runtimes.
        let (model, _) = checkpoint::load_model(&ckpt, Device::Cpu).expect("load");
        assert_engine_matches_tch(
            &model,
            &onnx,
            Backend::Cpu,
            2,
            &format!("{arch}, trained weights"),
        );

        // Whole pipeline: `score` (tch, device-side normalisation) vs `score-onnx` (tract, the
        // face gate and the browser's preprocessing) on the same folder.
        let (a, b) = score_both(&ckpt, &onnx, &data);
        assert_eq!(a.len(), 12);
        assert_eq!(
            a.iter().map(|x| &x["path"]).collect::<Vec<_>>(),
            b.iter().map(|x| &x["path"]).collect::<Vec<_>>()
        );
        // Every drawn face passes the face gate: no line carries an error.
        assert!(b.iter().all(|x| x.get("error").is_none()), "{b:?}");
        // Logits on drawn faces (printed ones textured), not scores saturating at 0 or 1.
        let worst = liveness_core::testing::assert_logits_close(
            "score-onnx vs score",
            &logits(&b),
            &logits(&a),
            1e-4,
        );
        eprintln!(
            "{arch}, score vs score-onnx: max |Δlogit| / max(1, |logit|) = {worst:.3e}; logits {:?}",
            logits(&a)
        );

        // The manifest describes the file and the run.
        let manifest: Manifest =
            serde_json::from_slice(&std::fs::read(onnx.with_extension("json")).expect("json"))
                .expect("manifest");
        assert_eq!(manifest.architecture, arch);
        assert_eq!(manifest.input.size, 32);
        assert_eq!(manifest.data.name, "synthetic");
        assert!(manifest.validation.is_some());
        assert_eq!(manifest.data.classes.len(), 2);
        assert_eq!(manifest.face.sha256, liveness_runtime::detector::sha256());
    }
}

/// The shipped recipe (`cnn4x3`: the whole frame letterboxed and two face squares) on a folder
/// where the face gate refuses two samples: one live sample with a frame where nobody is, one
/// attack with two people in a frame. Training names and leaves out both; `score` (tch) and
/// `score-onnx` (tract, the runtime's gate) both score them as attacks with the refusal's code,
/// and agree on every other sample.
#[test]
fn the_shipped_recipe_leaves_out_and_scores_as_attacks_what_the_gate_refuses() {
    use liveness_core::testing::{DrawnFace, draw_faces};
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 3, 2);
    let save = |path: PathBuf, faces: &[DrawnFace]| {
        let pixels = draw_faces(common::WIDTH, common::HEIGHT, faces, [90, 110, 130]);
        image::RgbImage::from_raw(common::WIDTH, common::HEIGHT, pixels)
            .expect("frame")
            .save(path)
            .expect("write frame");
    };
    let nobody = data.join("real/s0_0");
    save(nobody.join("2.png"), &[]);
    let two = data.join("printed/s1_1");
    let face = |cx| DrawnFace {
        cx,
        cy: 64.0,
        width: 44.0,
    };
    save(two.join("3.png"), &[face(42.0), face(118.0)]);

    let run = tmp.path().join("run");
    let out = trainer()
        .args(common::small_train_args(&data, &run, 4))
        .args(["--epochs", "1", "--arch", "cnn4x3"])
        .output()
        .expect("train");
    let stdout = common::success_stdout(out);
    let said = |sample: &Path, code: &str| {
        stdout
            .lines()
            .any(|l| l.contains(&*sample.display().to_string()) && l.contains(code))
    };
    assert!(
        stdout.contains("face gate: 2 sample(s) refused")
            && said(&nobody, "frame 2 shows no face")
            && said(&two, "frame 3 shows 2 faces"),
        "{stdout}"
    );
    // The split on disk trains on neither.
    let samples = liveness_trainer::dataset::scan(&data, &Default::default()).expect("scan");
    let index = |p: &Path| samples.iter().position(|s| s.path == p).expect("sample");
    let split: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("split.json")).expect("split"))
            .expect("json");
    let train: Vec<usize> = serde_json::from_value(split["train"].clone()).expect("train");
    assert!(!train.is_empty());
    for p in [&nobody, &two] {
        assert!(
            !train.contains(&index(p)),
            "{} trained on: {train:?}",
            p.display()
        );
    }

    let ckpt = run.join("last.safetensors");
    let onnx = tmp.path().join("shipped-recipe.onnx");
    exported(&ckpt, &onnx, &[]);
    let (tch, tract) = score_both(&ckpt, &onnx, &data);
    assert_eq!(tch.len(), 12);
    for (a, b) in tch.iter().zip(&tract) {
        assert_eq!(a["path"], b["path"]);
        let path = a["path"].as_str().expect("path");
        let want = if path.ends_with("real/s0_0") {
            Some("no-face")
        } else if path.ends_with("printed/s1_1") {
            Some("multiple-faces")
        } else {
            None
        };
        for line in [a, b] {
            assert_eq!(line["error"].as_str(), want, "{line}");
            if want.is_some() {
                assert_eq!(line["spoof"].as_f64(), Some(1.0), "{line}");
            }
        }
        if want.is_none() {
            liveness_core::testing::assert_logits_close(
                path,
                &logits(std::slice::from_ref(b)),
                &logits(std::slice::from_ref(a)),
                1e-4,
            );
        }
    }
}

#[test]
fn a_changed_byte_in_the_model_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model = model_with_odd_batchnorm(Arch::Cnn4, 3);
    let ckpt = tmp.path().join("m.safetensors");
    save_checkpoint(&model, &ckpt, 32);
    let onnx = tmp.path().join("m.onnx");
    exported(&ckpt, &onnx, &[]);
    let bytes = std::fs::read(&onnx).expect("read");
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(onnx.with_extension("json")).expect("read"))
            .expect("manifest");
    assert_eq!(manifest.sha256, liveness_core::manifest::sha256_hex(&bytes));
    assert!(OnnxModel::load(&onnx, None, Backend::Cpu).is_ok());
    let mut changed = bytes;
    let at = changed.len() / 2;
    changed[at] ^= 0x01;
    std::fs::write(&onnx, &changed).expect("write");
    let Err(e) = OnnxModel::load(&onnx, None, Backend::Cpu) else {
        panic!("a changed byte must be refused")
    };
    let err = format!("{e:#}");
    assert!(err.contains("SHA-256") && err.contains("m.onnx"), "{err}");
}

#[test]
fn export_refuses_what_it_cannot_write_or_wonnx_cannot_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model = model_with_odd_batchnorm(Arch::Resnet18, 4);
    let ckpt = tmp.path().join("m.safetensors");
    save_checkpoint(&model, &ckpt, 32);
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
    exported(
        &ckpt,
        &tmp.path().join("ok.onnx"),
        &["--size", "224", "--batch", "4"],
    );

    let missing_dir: PathBuf = tmp.path().join("no/such/dir/m.onnx");
    let err = stderr(export(&ckpt, &missing_dir, &[]));
    assert!(
        err.contains("does not exist") && err.contains("no/such/dir"),
        "{err}"
    );
    let err = stderr(export(&ckpt, &tmp.path().join("m.txt"), &[]));
    assert!(err.contains(".onnx"), "{err}");
    // A threshold no runtime would accept is refused before anything is written.
    for t in ["1.5", "NaN", "0"] {
        let out = tmp.path().join("t.onnx");
        let err = stderr(export(&ckpt, &out, &["--threshold", t]));
        assert!(err.contains("--threshold"), "{t}: {err}");
        assert!(!out.exists());
    }
    for (flag, value) in [("--size", "8"), ("--size", "100000"), ("--batch", "0")] {
        let err = stderr(export(&ckpt, &tmp.path().join("s.onnx"), &[flag, value]));
        assert!(
            err.contains("outside the allowed range"),
            "{flag} {value}: {err}"
        );
    }
}

/// wonnx is what the browser runs: natively (wgpu on Vulkan, lavapipe without a GPU) it must give
/// the same logits as tch, for every architecture, on odd BatchNorm and on trained weights.
#[test]
fn tch_and_wonnx_agree() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 2, 2);
    for arch in Arch::ALL {
        let odd = model_with_odd_batchnorm(arch, 8);
        let ckpt = tmp.path().join(format!("odd-{arch}.safetensors"));
        save_checkpoint(&odd, &ckpt, 32);
        let onnx = tmp.path().join(format!("odd-{arch}.onnx"));
        exported(&ckpt, &onnx, &["--batch", "2"]);
        assert_engine_matches_tch(
            &odd,
            &onnx,
            Backend::WebGpu,
            3,
            &format!("{arch}, odd BatchNorm"),
        );

        let run = tmp.path().join(format!("run-{arch}"));
        train_small(&data, &run, 1, &["--arch", arch.name()]);
        let trained = tmp.path().join(format!("trained-{arch}.onnx"));
        exported(&run.join("last.safetensors"), &trained, &[]);
        let (model, _) =
            checkpoint::load_model(&run.join("last.safetensors"), Device::Cpu).expect("load");
        assert_engine_matches_tch(
            &model,
            &trained,
            Backend::WebGpu,
            4,
            &format!("{arch}, trained weights"),
        );
    }
}

/// wonnx panics when it finds no GPU adapter; the CLI must turn that into a plain error.
#[test]
fn wonnx_without_an_adapter_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model = model_with_odd_batchnorm(Arch::Cnn4, 5);
    let ckpt = tmp.path().join("m.safetensors");
    save_checkpoint(&model, &ckpt, 32);
    let onnx = tmp.path().join("m.onnx");
    exported(&ckpt, &onnx, &[]);
    let data = make_dataset(&tmp.path().join("data"), 1, 1);
    // A backend that does not exist on Linux: wgpu finds no adapter.
    let output = trainer()
        .env("WGPU_BACKEND", "dx12")
        .args(["score-onnx", "--backend", "webgpu", "--model"])
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
/// under which terms, and it scores frames it has never seen.
#[test]
fn the_shipped_default_model_matches_its_manifest_and_runs() {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let model = OnnxModel::load(&models.join("default.onnx"), None, Backend::Cpu)
        .expect("default model loads and verifies");
    let m = model.manifest();
    assert!(
        m.data.terms.contains("research use only"),
        "{}",
        m.data.terms
    );
    assert!(m.data.name.contains("NUAA"));
    // Whoever ships it must see what it does not cover.
    assert!(
        m.data.coverage.contains("printed")
            && m.data.coverage.contains("synthetic")
            && m.data.coverage.contains("no recorded screen replays"),
        "{}",
        m.data.coverage
    );
    // Its threshold says where it came from.
    assert!(m.threshold_rule.is_some(), "{:?}", m.threshold_rule);
    assert!(m.cross_validation.is_some() && m.training_command.is_some());
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 1, 1);
    let samples = liveness_trainer::dataset::scan(&data, &Default::default()).expect("scan");
    for s in &samples {
        let line = model.score_sample(s).expect("run");
        assert!(line.error.is_none() && line.spoof.is_finite(), "{line:?}");
    }
}

/// Several checkpoints export as one graph whose logit is the mean of theirs, on tract and on
/// wonnx; a member trained differently is refused, naming what differs.
#[test]
fn a_seed_ensemble_exports_as_one_model_on_every_engine() {
    let tmp = tempfile::tempdir().expect("tmp");
    let members: Vec<Model> = [31, 32, 33]
        .into_iter()
        .map(|s| model_with_odd_batchnorm(Arch::Cnn4, s))
        .collect();
    let ckpts: Vec<PathBuf> = members
        .iter()
        .enumerate()
        .map(|(k, m)| {
            let p = tmp.path().join(format!("m{k}.safetensors"));
            save_checkpoint(m, &p, 32);
            p
        })
        .collect();
    let onnx = tmp.path().join("ensemble.onnx");
    let mut extra: Vec<&str> = vec!["--batch", "2", "--checkpoint"];
    extra.extend(ckpts[1..].iter().map(|p| p.to_str().expect("utf-8 path")));
    exported(&ckpts[0], &onnx, &extra);
    tch::manual_seed(7);
    let input = Tensor::randn([2, 5, 3, 32, 32], (Kind::Float, Device::Cpu));
    let logits: Vec<Vec<f32>> = members
        .iter()
        .map(|m| {
            Vec::<f32>::try_from(tch::no_grad(|| m.forward_t(&input, false)).flatten(0, -1))
                .expect("tch")
        })
        .collect();
    assert!((logits[0][0] - logits[1][0]).abs() > 1e-2, "{logits:?}");
    let mean: Vec<f32> = (0..2)
        .map(|i| logits.iter().map(|l| l[i]).sum::<f32>() / 3.0)
        .collect();
    for engine in [Backend::Cpu, Backend::WebGpu] {
        let runtime = OnnxModel::load(&onnx, None, engine).expect("load");
        let got = runtime
            .run(Vec::<f32>::try_from(input.flatten(0, -1)).expect("input"))
            .expect("run");
        let diff = liveness_core::testing::max_abs_diff(&got, &mean);
        eprintln!("ensemble of 3, {engine:?}: max |logit - mean of members| = {diff:.3e}");
        assert!(diff <= 1e-4, "{engine:?}: {got:?} vs {mean:?}");
    }
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(tmp.path().join("ensemble.json")).expect("manifest"))
            .expect("json");
    let seeds = manifest
        .training
        .as_ref()
        .and_then(|t| t.get("ensemble_seeds"))
        .and_then(|s| s.as_array())
        .map_or(0, Vec::len);
    assert_eq!(seeds, 3, "{:?}", manifest.training);

    // A member at another input size cannot join.
    let other = tmp.path().join("other.safetensors");
    save_checkpoint(&members[0], &other, 48);
    let o = export(
        &ckpts[0],
        &tmp.path().join("bad.onnx"),
        &["--checkpoint", other.to_str().expect("utf-8")],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("input size") && err.contains("other.safetensors"),
        "export must refuse a member of another input size; it exited {} with stderr {err:?}",
        o.status
    );
    assert!(!tmp.path().join("bad.onnx").exists());
}

/// The manifest's threshold is the cross-validation report's, named by its rule; another one is
/// refused unless forced, and then recorded as given.
#[test]
fn the_threshold_comes_from_the_reports_rule_unless_forced() {
    let tmp = tempfile::tempdir().expect("tmp");
    let ckpt = tmp.path().join("m.safetensors");
    save_checkpoint(&model_with_odd_batchnorm(Arch::Cnn4, 5), &ckpt, 32);
    let report = tmp.path().join("report.json");
    std::fs::write(
        &report,
        r#"{"threshold": 0.3125, "threshold_rule": "BPCER <= 2.0% (test)", "folds": []}"#,
    )
    .expect("report");
    let cv = ["--cross-validation", report.to_str().expect("utf-8")];
    let read = |name: &str| -> Manifest {
        serde_json::from_slice(&std::fs::read(tmp.path().join(name)).expect("manifest"))
            .expect("json")
    };
    exported(&ckpt, &tmp.path().join("a.onnx"), &cv);
    let m = read("a.json");
    assert_eq!(m.threshold, 0.3125);
    assert_eq!(m.threshold_rule.as_deref(), Some("BPCER <= 2.0% (test)"));

    let mut other = cv.to_vec();
    other.extend(["--threshold", "0.5"]);
    let o = export(&ckpt, &tmp.path().join("b.onnx"), &other);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("--force-threshold") && err.contains("0.3125"),
        "export must refuse a threshold other than the report's; it exited {} with stderr {err:?}",
        o.status
    );
    assert!(!tmp.path().join("b.onnx").exists());

    other.push("--force-threshold");
    exported(&ckpt, &tmp.path().join("c.onnx"), &other);
    let m = read("c.json");
    assert_eq!(
        (m.threshold, m.threshold_rule.as_deref()),
        (0.5, Some("given"))
    );
}

/// A reader that goes away (`score-onnx … | head -1`) ends the command quietly: no panic.
#[test]
fn score_onnx_stops_quietly_when_its_reader_goes_away() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = make_dataset(&tmp.path().join("data"), 1, 1);
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_liveness-trainer"))
        .args(["score-onnx", "--model"])
        .arg(models.join("default.onnx"))
        .arg("--data")
        .arg(&data)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    // Closed before the first line (the model loads first): every write meets a closed pipe.
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(output.status.success(), "{:?}: {err}", output.status);
}
