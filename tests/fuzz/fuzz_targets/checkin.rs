//! Check-in messages (`PUT /mdm/checkin`): any bytes a device sends must decode to a
//! message or an error, never a panic, an abort or a stack overflow.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = profiles::checkin::decode(data) {
        // What the server reads of every message right after decoding.
        let _ = message.message_type();
        let _ = message.enrollment().device_key();
        let _ = message.enrollment().is_user_channel();
    }
});
