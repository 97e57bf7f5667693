//! The ring reader fed arbitrary bytes as its shared memory (header, indices and data):
//! it must return messages or errors, never panic or read out of bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ipcx::shm::fuzz_reader(data);
});
