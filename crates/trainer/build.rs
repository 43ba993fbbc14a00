//! Make CUDA really reach the binary.
//!
//! rustc links with `--as-needed`, which drops `libtorch_cuda.so` because no symbol of it is
//! referenced directly; tch's own link arguments only reach tch's examples. Without this, a binary
//! that depends on tch has no CUDA even on a GPU server (`Cuda::is_available()` is false); the
//! test `the_cuda_backend_is_linked` (tests/cli.rs) fails without it. See README, "GPU".
//!
//! Run-time library folders: libtorch's own (from torch-sys) and, for a binary built here and run
//! on another machine, the colon-separated folders in `LIVENESS_EXTRA_RPATH` at build time.

fn main() {
    // Set by torch-sys (links = "tch") for crates that depend on it directly.
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
    println!("cargo:rerun-if-env-changed=LIVENESS_EXTRA_RPATH");
    if let Ok(extra) = std::env::var("LIVENESS_EXTRA_RPATH") {
        for dir in extra.split(':').filter(|d| !d.is_empty()) {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        }
    }
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-ltorch");
    println!("cargo:rustc-link-arg=-Wl,--as-needed");
}
