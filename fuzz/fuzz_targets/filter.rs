//! The event-filter pattern language (`FilterCriteria`): any pattern text, and any event matched
//! against the patterns that parse. Input: the pattern, a line `----`, then the event JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nimbus_fuzz::split_once;

fuzz_target!(|data: &[u8]| {
    let (pattern, event) = split_once(data, b"\n----\n").unwrap_or((data, b"{}"));
    let Ok(pattern) = std::str::from_utf8(pattern) else { return };
    let _ = nimbus_server::fuzzing::filter(pattern, event);
});
