//! Any bytes as an uploaded image (JPEG, PNG, WebP), with the project's size limits.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(img) = salient_engine::decode::decode_image("fuzz.img", data) {
        assert!(img.width() >= 16 && img.height() >= 16);
    }
});
