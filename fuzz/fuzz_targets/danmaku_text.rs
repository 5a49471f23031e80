//! Fuzz target: the properties of `danmaku::fuzz_checks::danmaku_text` hold for any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| danmaku::fuzz_checks::danmaku_text(data));
