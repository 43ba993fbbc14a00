//! The native trainer of the liveness model, on libtorch through `tch`: dataset reading and the
//! subject-grouped split, the parallel loader, the recipe's model, resumable training with
//! atomic checkpoints, evaluation, scoring and a throughput benchmark. `main.rs` is the CLI.

pub mod augment;
pub mod bench;
pub mod checkpoint;
pub mod dataset;
pub mod export;
pub mod loader;
pub mod model;
pub mod onnx_runtime;
pub mod optim;
pub mod plots;
pub mod report;
pub mod scoring;
pub mod split;
pub mod synthetic;
pub mod train;
