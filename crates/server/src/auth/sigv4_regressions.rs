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

/// The `sigv4` fuzz target's seeds are requests botocore signed (fuzz/seeds.py): each must verify, or
/// the fuzzer would start from requests that fail at the first check and never reach the deep ones.
#[test]
fn the_fuzz_seeds_signed_by_botocore_verify() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/sigv4");
    let now = std::time::UNIX_EPOCH + Duration::from_secs(1_796_558_400);
    let lookup = |key: &str| match key {
        "AKIDEXAMPLE" => {
            Some(Secret::root("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None))
        }
        "ASIAFUZZSESSION" => {
            Some(Secret::root("fuzzSessionSecretKey0123456789abcdefghij", Some("FwoGZXIvYXdzEFUZZSESSIONTOKEN".into())))
        }
        _ => None,
    };
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read(&path).unwrap();
        let split = text.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = std::str::from_utf8(&text[..split]).unwrap();
        let mut lines = head.split("\r\n");
        let (method, target) = lines.next().unwrap().split_once(' ').unwrap();
        let mut builder = http::Request::builder().method(method).uri(target);
        for line in lines {
            let (name, value) = line.split_once(": ").unwrap();
            builder = builder.header(name, value);
        }
        let (parts, ()) = builder.body(()).unwrap().into_parts();
        let caller = verify(&parts, &text[split + 4..], now, lookup);
        assert!(caller.is_ok(), "{}: {:?}", path.display(), caller);
        seen += 1;
    }
    assert!(seen >= 5, "no seeds in {}", dir.display());
}
