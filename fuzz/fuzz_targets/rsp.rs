#![no_main]
use std::sync::{Arc, OnceLock};

use corestub::fuzz_harness;
use corestub::target::Session;
use libfuzzer_sys::fuzz_target;

static SESSION: OnceLock<Arc<Session>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let s = SESSION.get_or_init(fuzz_harness::synthetic_session);
    fuzz_harness::rsp(s, data);
});
