//! Any text as an annotation file (the paper's MTurk CSV or Salient's CSV).
#![no_main]
use libfuzzer_sys::fuzz_target;
use salient_engine::annotations::{Annotations, Bounds};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(a) = Annotations::parse("fuzz.csv", text, Bounds::IMAGENET_RESNET50) {
            // What was read must write back and read again to the same labels.
            let again = Annotations::parse("again.csv", &a.to_csv(), Bounds::IMAGENET_RESNET50).expect("own output parses");
            assert_eq!(again.summary(), a.summary());
        }
    }
});
