//! `salient --help` teaches every command. (Living in the CLI package, this test also makes
//! `cargo test` build the binary that the end-to-end tests in `tests/` drive.)

use std::process::Command;

#[test]
fn help_lists_every_command_and_a_first_session() {
    let out = Command::new(env!("CARGO_BIN_EXE_salient")).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for command in ["predict", "rank", "mask", "attack", "convert", "fetch-model"] {
        assert!(text.contains(command), "{command} missing from --help:\n{text}");
    }
    assert!(text.contains("salient mask -f 1797 photo.jpg -o mask.png --overlay heat.png"), "{text}");
}

#[test]
fn unknown_options_are_usage_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_salient")).args(["predict", "--frobnicate", "x.jpg"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
