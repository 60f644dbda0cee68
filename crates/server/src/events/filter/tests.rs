//! Table tests, mostly from the examples of AWS's EventBridge "content filtering" and Lambda "event
//! filtering" documentation.

use serde_json::{Value, json};

use super::index::PatternIndex;
use super::{Mode, Pattern};

fn ec2_event() -> Value {
    json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": "111122223333",
        "time": "2017-12-22T18:43:48Z",
        "region": "us-west-1",
        "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
        "detail": {
            "instance-id": "i-1234567890abcdef0",
            "state": "terminated",
            "c-count": 5,
            "d-count": 3,
            "x-limit": 301.8,
            "FileName": "photo.PNG",
            "FilePath": "/usr/lib/libc.so",
            "sourceIPAddress": "10.0.0.123",
            "sourceIPv6": "2001:db8:1::5",
            "service": "EventBridge",
            "responseElements": null,
            "eventVersion": "",
            "tags": ["blue", "green"],
            "location": {"city": "Seattle", "zip": 98101}
        }
    })
}

#[test]
fn eventbridge_documentation_examples() {
    let event = ec2_event();
    let cases: &[(&str, bool)] = &[
        // Exact values, arrays of alternatives, nested objects, event arrays.
        (r#"{"source": ["aws.ec2"]}"#, true),
        (r#"{"source": ["aws.s3", "aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]}"#, true),
        (r#"{"source": ["aws.s3"]}"#, false),
        (r#"{"detail": {"state": ["terminated"]}}"#, true),
        (r#"{"detail": {"state": ["running"]}}"#, false),
        (r#"{"resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0", "x"]}"#, true),
        (r#"{"detail": {"tags": ["green"]}}"#, true),
        (r#"{"detail": {"location": {"city": ["Seattle"], "zip": [98101]}}}"#, true),
        (r#"{"detail": {"x-limit": [301.8]}}"#, true),
        (r#"{"detail": {"responseElements": [null]}}"#, true),
        (r#"{"detail": {"eventVersion": [""]}}"#, true),
        (r#"{"detail": {"state": ["Terminated"]}}"#, false),
        // A field the event lacks never matches a value.
        (r#"{"detail": {"missing": ["x"]}}"#, false),
        // Prefix, also ignoring case; suffix, also ignoring case.
        (r#"{"time": [{"prefix": "2017-12-22"}]}"#, true),
        (r#"{"time": [{"prefix": "2018"}]}"#, false),
        (r#"{"detail": {"service": [{"prefix": {"equals-ignore-case": "eventb"}}]}}"#, true),
        (r#"{"detail": {"service": [{"prefix": "eventb"}]}}"#, false),
        (r#"{"detail": {"FileName": [{"suffix": ".PNG"}]}}"#, true),
        (r#"{"detail": {"FileName": [{"suffix": ".png"}]}}"#, false),
        (r#"{"detail": {"FileName": [{"suffix": {"equals-ignore-case": ".png"}}]}}"#, true),
        // Anything-but: a value, a list, numbers, prefix, suffix, ignoring case, wildcard.
        (r#"{"detail": {"state": [{"anything-but": "initializing"}]}}"#, true),
        (r#"{"detail": {"state": [{"anything-but": "terminated"}]}}"#, false),
        (r#"{"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}}"#, true),
        (r#"{"detail": {"state": [{"anything-but": ["stopped", "terminated"]}]}}"#, false),
        (r#"{"detail": {"c-count": [{"anything-but": [100, 200, 300]}]}}"#, true),
        (r#"{"detail": {"c-count": [{"anything-but": [5, 200]}]}}"#, false),
        (r#"{"detail": {"state": [{"anything-but": {"prefix": "init"}}]}}"#, true),
        (r#"{"detail": {"state": [{"anything-but": {"prefix": "term"}}]}}"#, false),
        (r#"{"detail": {"state": [{"anything-but": {"prefix": ["init", "term"]}}]}}"#, false),
        (r#"{"detail": {"FileName": [{"anything-but": {"suffix": ".txt"}}]}}"#, true),
        (r#"{"detail": {"FileName": [{"anything-but": {"suffix": ".PNG"}}]}}"#, false),
        (r#"{"detail": {"state": [{"anything-but": {"equals-ignore-case": ["Stopped", "OverLoaded"]}}]}}"#, true),
        (r#"{"detail": {"state": [{"anything-but": {"equals-ignore-case": "TERMINATED"}}]}}"#, false),
        (r#"{"detail": {"FilePath": [{"anything-but": {"wildcard": "*/bin/*"}}]}}"#, true),
        (r#"{"detail": {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]}}"#, false),
        (r#"{"detail": {"FilePath": [{"anything-but": {"wildcard": ["*/bin/*", "*.so"]}}]}}"#, false),
        // Anything-but needs the field.
        (r#"{"detail": {"missing": [{"anything-but": "x"}]}}"#, false),
        // Numeric ranges.
        (
            r#"{"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}], "d-count": [{"numeric": ["<", 10]}],
                "x-limit": [{"numeric": ["=", 3.018e2]}]}}"#,
            true,
        ),
        (r#"{"detail": {"c-count": [{"numeric": [">", 5]}]}}"#, false),
        (r#"{"detail": {"c-count": [{"numeric": [">=", 5, "<", 6]}]}}"#, true),
        (r#"{"detail": {"state": [{"numeric": [">", 0]}]}}"#, false),
        // Exists.
        (r#"{"detail": {"state": [{"exists": true}]}}"#, true),
        (r#"{"detail": {"state": [{"exists": false}]}}"#, false),
        (r#"{"detail": {"missing": [{"exists": false}]}}"#, true),
        (r#"{"detail": {"missing": [{"exists": true}]}}"#, false),
        // Equals-ignore-case.
        (r#"{"detail-type": [{"equals-ignore-case": "ec2 instance state-change notification"}]}"#, true),
        (r#"{"detail-type": [{"equals-ignore-case": "ec2 instance"}]}"#, false),
        // Wildcard, with an escaped star.
        (r#"{"resources": [{"wildcard": "arn:aws:ec2:*:123456789012:instance/*"}]}"#, true),
        (r#"{"resources": [{"wildcard": "arn:aws:s3:*"}]}"#, false),
        (r#"{"detail": {"FilePath": [{"wildcard": "/usr/*/libc.so"}]}}"#, true),
        (r#"{"detail": {"FilePath": [{"wildcard": "/usr/\\*/libc.so"}]}}"#, false),
        // CIDR, IPv4 and IPv6.
        (r#"{"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]}}"#, true),
        (r#"{"detail": {"sourceIPAddress": [{"cidr": "10.0.1.0/24"}]}}"#, false),
        (r#"{"detail": {"sourceIPv6": [{"cidr": "2001:db8::/32"}]}}"#, true),
        (r#"{"detail": {"state": [{"cidr": "10.0.0.0/8"}]}}"#, false),
        // $or, at the top and nested; combined with other keys (all must hold).
        (
            r#"{"detail": {"$or": [{"c-count": [{"numeric": [">", 0, "<=", 5]}]}, {"d-count": [{"numeric": ["<", 10]}]}]}}"#,
            true,
        ),
        (r#"{"$or": [{"source": ["aws.s3"]}, {"detail-type": ["nope"]}]}"#, false),
        (r#"{"source": ["aws.ec2"], "$or": [{"region": ["us-west-1"]}, {"account": ["1"]}]}"#, true),
        (r#"{"source": ["aws.s3"], "$or": [{"region": ["us-west-1"]}, {"account": ["1"]}]}"#, false),
        // Several matchers on one field: any of them.
        (r#"{"detail": {"state": [{"prefix": "x"}, "terminated"]}}"#, true),
    ];
    for (text, expected) in cases {
        let pattern = Pattern::parse_in(text, Mode::EventBridge).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(pattern.matches(&event), *expected, "{text}");
    }
}

#[test]
fn invalid_patterns_are_refused() {
    let invalid: &[(&str, Mode)] = &[
        ("[1]", Mode::EventBridge),
        ("not json", Mode::EventBridge),
        (r#"{"a": 1}"#, Mode::EventBridge),
        (r#"{"a": "x"}"#, Mode::EventBridge),
        (r#"{"a": []}"#, Mode::EventBridge),
        (r#"{"a": [[1]]}"#, Mode::EventBridge),
        (r#"{"a": [{"bogus": 1}]}"#, Mode::EventBridge),
        (r#"{"a": [{"prefix": 1}]}"#, Mode::EventBridge),
        (r#"{"a": [{"prefix": "x", "suffix": "y"}]}"#, Mode::EventBridge),
        (r#"{"a": [{"numeric": [">"]}]}"#, Mode::EventBridge),
        (r#"{"a": [{"numeric": ["<", 5, ">", 1]}]}"#, Mode::EventBridge),
        (r#"{"a": [{"numeric": [">", 5, "<", 1]}]}"#, Mode::EventBridge),
        (r#"{"a": [{"numeric": ["~", 5]}]}"#, Mode::EventBridge),
        (r#"{"a": [{"exists": "yes"}]}"#, Mode::EventBridge),
        (r#"{"a": [{"cidr": "10.0.0.0"}]}"#, Mode::EventBridge),
        (r#"{"a": [{"cidr": "10.0.0.0/33"}]}"#, Mode::EventBridge),
        (r#"{"a": [{"wildcard": "a**b"}]}"#, Mode::EventBridge),
        (r#"{"a": [{"anything-but": {"bogus": "x"}}]}"#, Mode::EventBridge),
        (r#"{"a": [{"anything-but": [true]}]}"#, Mode::EventBridge),
        (r#"{"$or": [{"a": ["x"]}]}"#, Mode::EventBridge),
        (r#"{"$or": "x"}"#, Mode::EventBridge),
        // Lambda's dialect has no cidr and no anything-but wildcard or prefix lists.
        (r#"{"a": [{"cidr": "10.0.0.0/8"}]}"#, Mode::Lambda),
        (r#"{"a": [{"anything-but": {"wildcard": "x*"}}]}"#, Mode::Lambda),
        (r#"{"a": [{"anything-but": {"prefix": ["x", "y"]}}]}"#, Mode::Lambda),
    ];
    for (text, mode) in invalid {
        assert!(Pattern::parse_in(text, *mode).is_err(), "{mode:?} accepted {text}");
    }
    let deep = format!("{}[1]{}", r#"{"a":"#.repeat(40), "}".repeat(40));
    assert!(Pattern::parse_in(&deep, Mode::EventBridge).is_err());
}

#[test]
fn lambda_dialect_keeps_its_behaviour() {
    let record = json!({"body": {"kind": "order", "n": 5, "tags": ["a", "b"], "name": "Photo.PNG"}});
    let cases: &[(&str, bool)] = &[
        (r#"{"body": {"kind": ["order"]}}"#, true),
        (r#"{"body": {"kind": [{"prefix": "ord"}]}}"#, true),
        (r#"{"body": {"name": [{"suffix": {"equals-ignore-case": ".png"}}]}}"#, true),
        (r#"{"body": {"tags": ["b"]}}"#, true),
        (r#"{"body": {"n": [5.0]}}"#, true),
        (r#"{"body": {"n": [{"numeric": [">", 0, "<=", 5]}]}}"#, true),
        // Lambda takes any two comparisons, not only lower-then-upper.
        (r#"{"body": {"n": [{"numeric": ["<=", 5, ">", 0]}]}}"#, true),
        (r#"{"body": {"kind": [{"anything-but": {"prefix": "or"}}]}}"#, false),
        (r#"{"body": {"$or": [{"n": [1]}, {"kind": ["order"]}]}}"#, true),
    ];
    for (text, expected) in cases {
        assert_eq!(Pattern::parse(text).unwrap().matches(&record), *expected, "{text}");
    }
}

#[test]
fn the_index_finds_exactly_what_trying_every_pattern_finds() {
    let texts = [
        r#"{"source": ["aws.ec2"]}"#,
        r#"{"source": ["aws.s3"]}"#,
        r#"{"source": ["aws.ec2", "aws.s3"], "detail": {"state": ["running"]}}"#,
        r#"{"detail": {"state": ["terminated"]}}"#,
        r#"{"detail": {"tags": ["green"]}}"#,
        r#"{"detail-type": [{"prefix": "EC2"}]}"#,
        r#"{"$or": [{"source": ["aws.ec2"]}, {"source": ["x"]}]}"#,
        r#"{"detail": {"c-count": [{"numeric": [">", 1]}]}, "source": ["aws.ec2"]}"#,
        r#"{"source": ["other"]}"#,
    ];
    let patterns: Vec<Pattern> = texts.iter().map(|t| Pattern::parse_in(t, Mode::EventBridge).unwrap()).collect();
    let index = PatternIndex::new(patterns.clone());
    assert_eq!(index.len(), texts.len());
    for event in [ec2_event(), json!({"source": "aws.s3", "detail": {"state": "running"}}), json!([1]), json!({})] {
        let expected: Vec<usize> = (0..patterns.len()).filter(|&i| patterns[i].matches(&event)).collect();
        assert_eq!(index.matching(&event), expected, "{event}");
    }
    assert_eq!(index.matching(&ec2_event()), vec![0, 3, 4, 5, 6, 7]);
}
