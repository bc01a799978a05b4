#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sydra_fuzz::pack::pack_index(data));
