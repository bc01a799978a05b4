#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sydra_fuzz::remote::transfer(data));
