//! The frame decoder: any bytes give a message or an error, never a panic;
//! a decoded message encodes again and decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerworld_protocol::message::{decode, encode, encoded_len};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = decode(data) {
        let again = encode(&msg).expect("a decoded message encodes");
        assert_eq!(again.len(), encoded_len(&msg));
        assert_eq!(decode(&again).ok(), Some(msg));
    }
});
