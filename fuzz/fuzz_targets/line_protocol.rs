#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sydra_fuzz::series::line_protocol(data));
