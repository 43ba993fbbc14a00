//! Optimisers whose state can be saved and restored.
//!
//! tch's optimisers live in C++ and cannot save their state, so a resumed run could not continue
//! exactly where it stopped. These are the textbook update rules (as `torch.optim` applies them)
//! over named parameters, with every buffer exposed as a named tensor for the checkpoint.

use std::collections::BTreeMap;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Which update rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// SGD with optional momentum and L2 weight decay (the recipe: no momentum, wd 1e-7).
    Sgd,
    /// AdamW (decoupled weight decay), β = (0.9, 0.999), ε = 1e-8.
    Adamw,
}

/// Hyper-parameters of the optimiser (flags of `train` and `bench`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct OptimizerConfig {
    /// Optimiser.
    #[arg(long = "optimizer", value_enum, default_value_t = OptimizerKind::Sgd)]
    pub kind: OptimizerKind,
    /// Weight decay.
    #[arg(long, default_value_t = 1e-7)]
    pub weight_decay: f64,
    /// SGD momentum (0 = none).
    #[arg(long, default_value_t = 0.0)]
    pub momentum: f64,
}

/// Saved optimiser state that does not fit the model.
#[derive(Debug, thiserror::Error)]
pub enum OptimError {
    /// A buffer missing from the checkpoint.
    #[error("the checkpoint's optimiser state lacks {0}")]
    Missing(String),
    /// A buffer of the wrong shape.
    #[error("optimiser buffer {name} has shape {got:?}, the parameter has {expected:?}")]
    Shape {
        name: String,
        got: Vec<i64>,
        expected: Vec<i64>,
    },
}

/// An optimiser over the trainable variables of a model, keyed by variable name.
pub struct Optimizer {
    config: OptimizerConfig,
    params: BTreeMap<String, Tensor>,
    /// SGD: momentum buffer. AdamW: first moment.
    first: BTreeMap<String, Tensor>,
    /// AdamW: second moment.
    second: BTreeMap<String, Tensor>,
    /// Updates applied so far.
    pub step: i64,
}

impl Optimizer {
    /// An optimiser for the trainable tensors among `variables`.
    pub fn new(
        config: OptimizerConfig,
        variables: impl IntoIterator<Item = (String, Tensor)>,
    ) -> Self {
        let params: BTreeMap<String, Tensor> = variables
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        let zeros = |p: &BTreeMap<String, Tensor>| -> BTreeMap<String, Tensor> {
            p.iter()
                .map(|(k, t)| (k.clone(), t.zeros_like().detach()))
                .collect()
        };
        let first = if config.kind == OptimizerKind::Adamw || config.momentum != 0.0 {
            zeros(&params)
        } else {
            BTreeMap::new()
        };
        let second = if config.kind == OptimizerKind::Adamw {
            zeros(&params)
        } else {
            BTreeMap::new()
        };
        Optimizer {
            config,
            params,
            first,
            second,
            step: 0,
        }
    }

    /// Clears the gradients of every parameter.
    pub fn zero_grad(&mut self) {
        for p in self.params.values_mut() {
            p.zero_grad();
        }
    }

    /// Applies one update with learning rate `lr`.
    pub fn step(&mut self, lr: f64) {
        self.step += 1;
        let c = self.config;
        tch::no_grad(|| {
            for (name, p) in &self.params {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let mut p = p.shallow_clone();
                match c.kind {
                    OptimizerKind::Sgd => {
                        let mut d = if c.weight_decay != 0.0 {
                            &g + &p * c.weight_decay
                        } else {
                            g
                        };
                        if let Some(buf) = self.first.get(name) {
                            let mut buf = buf.shallow_clone();
                            if self.step == 1 {
                                buf.copy_(&d);
                            } else {
                                let _ = buf.g_mul_scalar_(c.momentum).g_add_(&d);
                            }
                            d = buf;
                        }
                        let _ = p.g_sub_(&(d * lr));
                    }
                    OptimizerKind::Adamw => {
                        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8f64);
                        let _ = p.g_mul_scalar_(1.0 - lr * c.weight_decay);
                        let mut m = self.first[name].shallow_clone();
                        let mut v = self.second[name].shallow_clone();
                        let _ = m.g_mul_scalar_(b1).g_add_(&(&g * (1.0 - b1)));
                        let _ = v.g_mul_scalar_(b2).g_add_(&(&g * &g * (1.0 - b2)));
                        let bc1 = 1.0 - b1.powi(self.step as i32);
                        let bc2 = 1.0 - b2.powi(self.step as i32);
                        let denom = (&v / bc2).sqrt() + eps;
                        let _ = p.g_sub_(&((&m / &denom) * (lr / bc1)));
                    }
                }
            }
        });
    }

    /// Every buffer, named `first.<var>` / `second.<var>`, for the checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let first = self
            .first
            .iter()
            .map(|(k, t)| (format!("first.{k}"), t.shallow_clone()));
        let second = self
            .second
            .iter()
            .map(|(k, t)| (format!("second.{k}"), t.shallow_clone()));
        first.chain(second).collect()
    }

    /// Restores the buffers saved by [`Optimizer::state`].
    pub fn load_state(
        &mut self,
        state: &BTreeMap<String, Tensor>,
        step: i64,
    ) -> Result<(), OptimError> {
        for (prefix, buffers) in [("first", &mut self.first), ("second", &mut self.second)] {
            for (name, buf) in buffers.iter_mut() {
                let key = format!("{prefix}.{name}");
                let Some(saved) = state.get(&key) else {
                    return Err(OptimError::Missing(format!(
                        "buffer {key} (was it saved with another optimiser?)"
                    )));
                };
                if saved.size() != buf.size() {
                    return Err(OptimError::Shape {
                        name: key,
                        got: saved.size(),
                        expected: buf.size(),
                    });
                }
                tch::no_grad(|| buf.copy_(&saved.to_kind(Kind::Float)));
            }
        }
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn quadratic_descends(kind: OptimizerKind, lr: f64) {
        let x = Tensor::from_slice(&[3.0f32, -2.0]).set_requires_grad(true);
        let mut opt = Optimizer::new(
            OptimizerConfig {
                kind,
                weight_decay: 0.0,
                momentum: 0.5,
            },
            [("x".to_owned(), x.shallow_clone())],
        );
        let loss0 = f64::try_from((&x * &x).sum(Kind::Float)).unwrap_or(f64::NAN);
        for _ in 0..50 {
            opt.zero_grad();
            (&x * &x).sum(Kind::Float).backward();
            opt.step(lr);
        }
        let loss = f64::try_from((&x * &x).sum(Kind::Float)).unwrap_or(f64::NAN);
        assert!(loss < loss0 * 0.05, "{kind:?}: {loss0} -> {loss}");
    }

    #[test]
    fn both_rules_minimise_a_quadratic() {
        quadratic_descends(OptimizerKind::Sgd, 0.1);
        quadratic_descends(OptimizerKind::Adamw, 0.2);
    }

    // Golden values from torch 2.11:
    //   x = torch.tensor([3.0, -2.0], requires_grad=True)
    //   o = torch.optim.AdamW([x], lr=0.2, weight_decay=0.1)   # or SGD(lr=0.1, momentum=0.5, wd=0.1)
    //   for _ in range(3): o.zero_grad(); (x * x).sum().backward(); o.step()
    #[test]
    fn three_steps_match_torch_optim() -> Result<(), tch::TchError> {
        for (kind, lr, want) in [
            (OptimizerKind::Adamw, 0.2, [2.238_040_7, -1.298_406_6]),
            (OptimizerKind::Sgd, 0.1, [0.823_916_85, -0.549_277_96]),
        ] {
            let x = Tensor::from_slice(&[3.0f32, -2.0]).set_requires_grad(true);
            let cfg = OptimizerConfig {
                kind,
                weight_decay: 0.1,
                momentum: 0.5,
            };
            let mut opt = Optimizer::new(cfg, [("x".to_owned(), x.shallow_clone())]);
            for _ in 0..3 {
                opt.zero_grad();
                (&x * &x).sum(Kind::Float).backward();
                opt.step(lr);
            }
            let got = Vec::<f32>::try_from(x.detach())?;
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-5, "{kind:?}: {got:?} vs {want:?}");
            }
        }
        Ok(())
    }

    #[test]
    fn sgd_without_momentum_matches_the_formula() -> Result<(), tch::TchError> {
        // p' = p - lr * (g + wd * p), g = 2p for loss = p^2.
        let x = Tensor::from_slice(&[1.5f32]).set_requires_grad(true);
        let cfg = OptimizerConfig {
            kind: OptimizerKind::Sgd,
            weight_decay: 0.1,
            momentum: 0.0,
        };
        let mut opt = Optimizer::new(cfg, [("x".to_owned(), x.shallow_clone())]);
        (&x * &x).sum(Kind::Float).backward();
        opt.step(0.01);
        let got = f64::try_from(x.to_device(Device::Cpu).sum(Kind::Float))?;
        let want = 1.5 - 0.01 * (3.0 + 0.1 * 1.5);
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        assert!(opt.state().is_empty());
        Ok(())
    }
}
