//! Fuzz the address parser; the checks are in `check_addr.rs`.
#![no_main]

#[path = "check_addr.rs"]
mod check_addr;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check_addr::check(data));
