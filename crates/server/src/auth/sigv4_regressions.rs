//! Inputs the `sigv4` fuzz target (fuzz/fuzz_targets/sigv4.rs) and its review turned up.

use super::*;

#[test]
fn signed_headers_keep_order_and_drop_repeats_at_any_size() {
    // 50,000 distinct names (a 400 KB header, what hyper admits) once took seconds of comparisons per
    // request, before any key was checked; they are now deduplicated through a set.
    let many: Vec<String> = (0..50_000).map(|i| format!("x-h{i}")).collect();
    let value = format!("host;{};X-H7;host", many.join(";"));
    let names = parse_signed_headers(&value).unwrap();
    assert_eq!(names.len(), 50_001);
    assert_eq!(names[0], "host");
    assert_eq!(names[1], "x-h0");
    assert_eq!(names[50_000], "x-h49999");

    assert_eq!(parse_signed_headers("Host; x-amz-date ;host").unwrap(), ["host", "x-amz-date"]);
    assert!(parse_signed_headers("host;;x").is_err());
    assert!(parse_signed_headers("x-amz-date").is_err());
}
