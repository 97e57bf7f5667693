//! Fuzz the stream frame decoder; the checks are in `check_frame.rs`.
#![no_main]

#[path = "check_frame.rs"]
mod check_frame;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check_frame::check(data));
