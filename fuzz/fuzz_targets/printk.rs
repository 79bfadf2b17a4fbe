#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| corestub::fuzz_harness::real::printk_target(data));
