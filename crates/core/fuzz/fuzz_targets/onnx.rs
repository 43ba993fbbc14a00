//! Any bytes as an ONNX file: the protobuf parser (prost, on the vendored onnx.proto) decodes a
//! model or refuses it, and what it decodes re-encodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use liveness_core::onnx::proto::ModelProto;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = ModelProto::decode(data) {
        // Bytes, not values: float fields may hold NaN, which never equals itself.
        let bytes = model.encode_to_vec();
        let again = ModelProto::decode(bytes.as_slice()).expect("a re-encoded model decodes");
        assert_eq!(again.encode_to_vec(), bytes);
    }
});
