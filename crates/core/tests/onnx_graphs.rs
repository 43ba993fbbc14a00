//! The ONNX writer's patterns, each as a tiny graph run through tract (no libtorch) and compared
//! with the same arithmetic written out by hand: a 3×3 Conv with a bias (wonnx needs the bias),
//! the five-frame head's Conv1d as a 2-D Conv with a `[1, 3]` kernel, and its Linear as a Conv
//! whose kernel covers the whole row.

use liveness_core::onnx::{GraphBuilder, Value, Weight, value_info};
use liveness_core::testing::assert_close;
use prost::Message;
use tract_onnx::prelude::*;

/// Deterministic values in about [-1, 1].
fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let x = (i as u32)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(seed.wrapping_mul(40_503));
            (x % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

/// A written graph, loaded and optimised by tract.
fn tract_plan(
    model: &liveness_core::onnx::proto::ModelProto,
) -> std::sync::Arc<TypedRunnableModel> {
    let bytes = model.encode_to_vec();
    tract_onnx::onnx()
        .model_for_read(&mut bytes.as_slice())
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .expect("tract loads the graph")
}

/// Builds `input → conv → output` and runs it in tract.
fn run_conv(
    input_shape: [i64; 4],
    weight: &Weight,
    bias: &[f32],
    strides: [i64; 2],
    pads: [i64; 4],
    input: &[f32],
) -> (Vec<f32>, Vec<i64>) {
    let mut g = GraphBuilder::default();
    let x = Value {
        name: "x".into(),
        shape: input_shape.to_vec(),
    };
    let y = g.conv(&x, "c", weight, bias, strides, pads);
    let out = g.output(&y, "y");
    let model = g.finish(
        "tiny",
        vec![value_info("x", &input_shape)],
        vec![out],
        17,
        "test",
    );
    let plan = tract_plan(&model);
    let shape: Vec<usize> = input_shape.iter().map(|&d| d as usize).collect();
    let t = tract_ndarray::Array::from_shape_vec(shape, input.to_vec()).expect("input");
    let result = plan.run(tvec!(Tensor::from(t).into())).expect("tract runs");
    let view = result[0].to_plain_array_view::<f32>().expect("f32");
    (view.iter().copied().collect(), y.shape)
}

/// Direct 2-D convolution, NCHW, for reference.
#[allow(clippy::too_many_arguments)]
fn reference(
    input: &[f32],
    [n, c, h, w]: [usize; 4],
    weight: &Weight,
    bias: &[f32],
    [sh, sw]: [usize; 2],
    [pt, pl]: [usize; 2],
    [oh, ow]: [usize; 2],
) -> Vec<f32> {
    let (o, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3]);
    let mut out = vec![0.0f32; n * o * oh * ow];
    for b in 0..n {
        for oc in 0..o {
            for y in 0..oh {
                for x in 0..ow {
                    let mut acc = bias[oc];
                    for ic in 0..c {
                        for dy in 0..kh {
                            for dx in 0..kw {
                                let (iy, ix) = (
                                    (y * sh + dy) as isize - pt as isize,
                                    (x * sw + dx) as isize - pl as isize,
                                );
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                let i = ((b * c + ic) * h + iy as usize) * w + ix as usize;
                                let k = ((oc * c + ic) * kh + dy) * kw + dx;
                                acc += input[i] * weight.values[k];
                            }
                        }
                    }
                    out[((b * o + oc) * oh + y) * ow + x] = acc;
                }
            }
        }
    }
    out
}

#[test]
fn a_3x3_conv_with_bias() {
    let weight = Weight {
        shape: vec![3, 2, 3, 3],
        values: values(54, 1),
    };
    let bias = values(3, 2);
    let input = values(2 * 2 * 5 * 6, 3);
    let (got, shape) = run_conv([2, 2, 5, 6], &weight, &bias, [1, 1], [1, 1, 1, 1], &input);
    assert_eq!(shape, vec![2, 3, 5, 6]);
    let want = reference(&input, [2, 2, 5, 6], &weight, &bias, [1, 1], [1, 1], [5, 6]);
    let d = assert_close("conv 3x3 + bias", &got, &want, 1e-5);
    eprintln!("3x3 conv with bias: max |tract - hand| = {d:.2e}");
}

#[test]
fn the_heads_conv1d_as_a_1x3_conv() {
    // Conv1d(5→1, k3, s2, p1) over 8 features = a 2-D Conv on [N, 5, 1, 8], kernel [1, 3].
    let weight = Weight {
        shape: vec![1, 5, 1, 3],
        values: values(15, 4),
    };
    let bias = vec![0.25];
    let input = values(2 * 5 * 8, 5);
    let (got, shape) = run_conv([2, 5, 1, 8], &weight, &bias, [1, 2], [0, 1, 0, 1], &input);
    assert_eq!(shape, vec![2, 1, 1, 4]);
    // By hand, as torch's Conv1d computes it.
    let mut want = Vec::new();
    for b in 0..2 {
        for t in 0..4 {
            let mut acc = 0.25;
            for c in 0..5 {
                for k in 0..3 {
                    let i = (2 * t + k) as isize - 1;
                    if (0..8).contains(&i) {
                        acc += input[(b * 5 + c) * 8 + i as usize] * weight.values[c * 3 + k];
                    }
                }
            }
            want.push(acc);
        }
    }
    assert_close("conv1d as conv", &got, &want, 1e-5);
}

#[test]
fn the_heads_linear_as_a_row_wide_conv() {
    // Linear(6→1) on [N, 6] = a Conv on [N, 1, 1, 6] whose kernel is the whole row.
    let weight = Weight {
        shape: vec![1, 1, 1, 6],
        values: values(6, 6),
    };
    let bias = vec![-0.5];
    let input = values(3 * 6, 7);
    let (got, shape) = run_conv([3, 1, 1, 6], &weight, &bias, [1, 1], [0, 0, 0, 0], &input);
    assert_eq!(shape, vec![3, 1, 1, 1]);
    let want: Vec<f32> = input
        .chunks(6)
        .map(|row| {
            row.iter()
                .zip(&weight.values)
                .map(|(x, w)| x * w)
                .sum::<f32>()
                - 0.5
        })
        .collect();
    assert_close("linear as conv", &got, &want, 1e-5);
}

/// Random weights of a cnn4 checkpoint (BatchNorm statistics away from the identity).
fn cnn4_weights(seed: u32) -> liveness_core::onnx::Weights {
    use liveness_core::onnx::cnn4::CHANNELS;
    let mut w = liveness_core::onnx::Weights::new();
    let mut put = |name: String, shape: Vec<usize>, scale: f32, shift: f32, s: u32| {
        let n = shape.iter().product();
        let values = values(n, seed * 100 + s)
            .into_iter()
            .map(|v| v * scale + shift)
            .collect();
        w.insert(name, Weight { shape, values });
    };
    let mut c_in = 3;
    for (k, &c) in CHANNELS.iter().enumerate() {
        let s = k as u32 * 10;
        put(
            format!("encoder.{k}.conv.weight"),
            vec![c, c_in, 3, 3],
            0.3,
            0.0,
            s,
        );
        put(format!("encoder.{k}.bn.weight"), vec![c], 0.3, 1.0, s + 1);
        put(format!("encoder.{k}.bn.bias"), vec![c], 0.2, 0.0, s + 2);
        put(
            format!("encoder.{k}.bn.running_mean"),
            vec![c],
            0.2,
            0.0,
            s + 3,
        );
        put(
            format!("encoder.{k}.bn.running_var"),
            vec![c],
            0.4,
            1.0,
            s + 4,
        );
        c_in = c;
    }
    put("conv1d.weight".into(), vec![1, 5, 3], 0.5, 0.0, 90);
    put("conv1d.bias".into(), vec![1], 0.1, 0.0, 91);
    put("fc.weight".into(), vec![1, CHANNELS[3] / 2], 0.5, 0.0, 92);
    put("fc.bias".into(), vec![1], 0.1, 0.3, 93);
    w
}

/// Runs a liveness model in tract: `[batch, 5, 3, S, S]` → (logits, p_spoof).
fn run_liveness(
    model: &liveness_core::onnx::proto::ModelProto,
    input: &[f32],
    batch: usize,
    size: usize,
) -> (Vec<f32>, Vec<f32>) {
    let plan = tract_plan(model);
    let t = tract_ndarray::Array::from_shape_vec(vec![batch, 5, 3, size, size], input.to_vec())
        .expect("input");
    let out = plan.run(tvec!(Tensor::from(t).into())).expect("tract runs");
    let get = |i: usize| -> Vec<f32> {
        out[i]
            .to_plain_array_view::<f32>()
            .expect("f32")
            .iter()
            .copied()
            .collect()
    };
    (get(0), get(1))
}

#[test]
fn a_seed_ensemble_is_one_graph_averaging_its_members_logits() {
    use liveness_core::Arch;
    let (size, batch) = (16u32, 2usize);
    let members = [cnn4_weights(1), cnn4_weights(2), cnn4_weights(3)];
    let input = values(batch * 5 * 3 * 16 * 16, 11);
    let alone: Vec<Vec<f32>> = members
        .iter()
        .map(|w| {
            run_liveness(
                &Arch::Cnn4.onnx(w, size, batch).expect("graph"),
                &input,
                batch,
                16,
            )
            .0
        })
        .collect();
    // The members disagree, so an average is a real test.
    assert!((alone[0][0] - alone[1][0]).abs() > 1e-3, "{alone:?}");
    let refs: Vec<&_> = members.iter().collect();
    let ensemble = Arch::Cnn4
        .onnx_ensemble(&refs, size, batch)
        .expect("ensemble");
    let (logit, p) = run_liveness(&ensemble, &input, batch, 16);
    let mean: Vec<f32> = (0..batch)
        .map(|i| alone.iter().map(|l| l[i]).sum::<f32>() / 3.0)
        .collect();
    let tol = 1e-5 * mean.iter().fold(1.0f32, |m, v| m.max(v.abs())) as f64;
    assert_close("ensemble logit = mean of members", &logit, &mean, tol);
    let sig: Vec<f32> = logit.iter().map(|l| 1.0 / (1.0 + (-l).exp())).collect();
    assert_close("p_spoof = sigmoid(logit)", &p, &sig, 1e-6);
    // Each member keeps its own weights (prefixed), and one member is the plain graph.
    let names: Vec<String> = ensemble
        .graph
        .as_ref()
        .map(|g| {
            g.initializer
                .iter()
                .filter_map(|t| t.name.clone())
                .collect()
        })
        .unwrap_or_default();
    assert!(names.iter().any(|n| n == "m2.fc.weight"), "{names:?}");
    assert_eq!(
        Arch::Cnn4
            .onnx_ensemble(&refs[..1], size, batch)
            .expect("one")
            .encode_to_vec(),
        Arch::Cnn4
            .onnx(&members[0], size, batch)
            .expect("plain")
            .encode_to_vec()
    );
    assert!(Arch::Cnn4.onnx_ensemble(&[], size, batch).is_err());
}
