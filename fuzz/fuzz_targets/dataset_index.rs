//! Any text as a dataset's index.jsonl and wordnet_dict.py.
#![no_main]
use libfuzzer_sys::fuzz_target;
use salient_engine::dataset;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(records) = dataset::parse_index("index.jsonl", text) {
            let again = dataset::parse_index("again.jsonl", &dataset::index_text(&records)).expect("own output parses");
            assert_eq!(again, records);
        }
        let _ = dataset::parse_wordnet_dict("wordnet_dict.py", text);
    }
});
