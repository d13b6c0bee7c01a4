//! Any bytes as an uploaded image: refused or decoded, never a panic, an abort or an allocation
//! the probe did not allow. Decodes only what the probe accepts, as the server does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lucid_imaging::codec;

/// Decodes stay small so each run is fast; the probe itself is checked at every size.
const MAX_DECODED_PIXELS: u64 = 4_000_000;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = codec::probe(data)
        && info.width as u64 * info.height as u64 <= MAX_DECODED_PIXELS
    {
        let _ = codec::decode_with_metadata(data);
    }
});
