//! The fuzz targets' properties (`danmaku::fuzz_checks`) as bounded property tests, so
//! every `cargo test` runs them on random and structured inputs (the cargo-fuzz targets
//! in `fuzz/` run the same checks for longer, on nightly).

use danmaku::fuzz_checks;
use proptest::{prelude::*, test_runner::Config as PropConfig};

/// Strings mixing the characters that matter to the decoders: JSON and XML syntax,
/// whitespace, controls, zero-width and bidi marks, combining accents, full-width forms.
fn tricky() -> impl Strategy<Value = String> {
    let fixed: Vec<&'static str> = vec![
        "{",
        "}",
        "\"",
        ":",
        ",",
        "\"op\":\"subscribe\"",
        "\"op\":\"danmaku\"",
        "\"channel\":\"video:v\"",
        "\"text\":",
        "\"time\":1e308",
        "\"id\":",
        "<i>",
        "</i>",
        "<d p=\"1,1,25,16777215,1,0,a,1\">",
        "<d p=\"1,5,25,255\">",
        "</d>",
        "&amp;",
        "&#0;",
        "\u{200b}",
        "\u{202e}",
        "\u{301}",
        "\u{3000}",
        "ｅ",
        "e",
        " ",
        "\n",
        "\u{0}",
    ];
    let piece = prop_oneof![
        proptest::sample::select(fixed).prop_map(str::to_string),
        "\\PC{0,8}",
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

/// Arbitrary bytes or tricky strings.
fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        (any::<u8>(), tricky()).prop_map(|(b, s)| {
            let mut v = vec![b];
            v.extend_from_slice(s.as_bytes());
            v
        }),
    ]
}

proptest! {
    #![proptest_config(PropConfig { cases: 512, failure_persistence: None, ..PropConfig::default() })]

    #[test]
    fn ws_op_decoder_properties(data in input()) {
        fuzz_checks::ws_op(&data);
        // Without the leading byte too: the decoder sees the raw text then.
        fuzz_checks::ws_op(data.get(1..).unwrap_or_default());
    }

    #[test]
    fn danmaku_validator_properties(data in input()) {
        fuzz_checks::danmaku_text(&data);
    }

    #[test]
    fn bilibili_importer_properties(data in input()) {
        fuzz_checks::bilibili(data.get(1..).unwrap_or_default());
    }
}

/// One of the shared input checks.
type Check = fn(&[u8]);

#[test]
fn the_committed_fuzz_seeds_pass() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let targets: [(&str, Check); 3] = [
        ("ws_op", fuzz_checks::ws_op),
        ("danmaku_text", fuzz_checks::danmaku_text),
        ("bilibili", fuzz_checks::bilibili),
    ];
    for (name, check) in targets {
        let dir = root.join(name);
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("corpus dir") {
            let path = entry.expect("entry").path();
            check(&std::fs::read(&path).expect("seed"));
            n += 1;
        }
        assert!(n >= 3, "{name}: {n} seeds");
    }
}

#[test]
fn normalizing_is_idempotent_across_zero_width_marks() {
    // An e, a zero-width space, then a combining acute: once the space is stripped the
    // accent must still compose, or the stored text would not be NFC.
    fuzz_checks::danmaku_text("\u{1}e\u{200b}\u{301} x".as_bytes());
}

#[test]
fn decoder_errors_do_not_echo_whole_frames() {
    // Found by the ws_op fuzz target: serde quoted the whole offending string.
    let frame = format!("\"{}\"", "é".repeat(4000));
    fuzz_checks::ws_op(frame.as_bytes());
}
