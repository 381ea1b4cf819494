//! The movement trace parser: any text gives a trace or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerworld_protocol::sim::Trace;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Trace::parse(text);
    }
});
