//! Any bytes as a manifest: `Manifest::parse` returns a manifest within the limits or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use liveness_core::manifest::Manifest;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(m) = Manifest::parse(&text, "fuzz.json") {
        assert!(liveness_core::limits::threshold_ok(m.threshold));
        assert!(liveness_core::limits::INPUT_SIZE.contains(&m.input.size));
        assert!(liveness_core::limits::BATCH.contains(&m.input.batch));
        let _ = m.input.crop.region(640, 480, None);
    }
});
