#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sydra_fuzz::prom::prom_chunks(data));
