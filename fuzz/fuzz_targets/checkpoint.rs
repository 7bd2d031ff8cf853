//! Any bytes as a checkpoint: torch zip, torch legacy (pickle), safetensors. Must return Ok or a
//! clear error, never panic, hang or allocate beyond the limits.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = salient_engine::StateDict::from_bytes("fuzz.pt", data);
});
