use nimbus_model::LogRetentionDays;

use super::*;

const G: &str = "/aws/lambda/f";

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(dir.path()).unwrap()
}

fn events(items: &[(i64, &str)]) -> Vec<LogEvent> {
    items.iter().map(|(t, m)| LogEvent { timestamp_ms: *t, message: m.to_string() }).collect()
}

fn times(events: &[StoredLogEvent]) -> Vec<i64> {
    events.iter().map(|e| e.timestamp_ms).collect()
}

fn messages(events: &[StoredLogEvent]) -> Vec<&str> {
    events.iter().map(|e| e.message.as_str()).collect()
}

#[test]
fn prefix_bounds_cover_exactly_the_prefixed_names() {
    assert_eq!(prefix_upper_bound("/aws/lambda/"), Some("/aws/lambda0".to_owned()));
    assert_eq!(prefix_upper_bound(""), None);
    assert_eq!(prefix_upper_bound("a\u{10FFFF}"), Some("b".to_owned()));
    assert_eq!(prefix_upper_bound("\u{D7FF}"), Some("\u{E000}".to_owned()));
    assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
}

#[test]
fn append_creates_groups_and_streams_and_counts_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.append_logs(G, "s1", &events(&[(10, "héllo"), (20, "x")]), 100).unwrap();
    store.append_logs("/aws/lambda/g", "s1", &[], 110).unwrap();
    store.append_logs("/other", "s1", &events(&[(5, "y")]), 120).unwrap();

    let groups = summaries(store.describe_log_groups(None, None, 10).unwrap());
    assert_eq!(
        groups,
        vec![(G.to_owned(), 100, 7), ("/aws/lambda/g".to_owned(), 110, 0), ("/other".to_owned(), 120, 1)]
    );
    let lambda = store.describe_log_groups(Some("/aws/lambda/"), None, 10).unwrap();
    assert_eq!(lambda.len(), 2);
    let page = store.describe_log_groups(Some("/aws/lambda/"), Some(G), 10).unwrap();
    assert_eq!(page.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), ["/aws/lambda/g"]);
    assert_eq!(store.describe_log_groups(None, None, 1).unwrap().len(), 1);

    store.append_logs(G, "s1", &events(&[(5, "early")]), 130).unwrap();
    let (streams, next) = store.describe_log_streams(G, None, false, false, None, 10).unwrap();
    assert_eq!(next, None);
    assert_eq!(
        streams,
        vec![LogStreamInfo {
            name: "s1".to_owned(),
            created_ms: 100,
            first_event_ms: Some(5),
            last_event_ms: Some(20),
            last_ingestion_ms: 130,
            stored_bytes: 12,
        }]
    );
    drop(store);
    let store = open(&dir);
    assert_eq!(summaries(store.describe_log_groups(None, None, 10).unwrap())[0], (G.to_owned(), 100, 12));
}

#[test]
fn get_log_events_pages_both_ways_and_keeps_the_forward_token_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.append_logs(G, "s", &events(&[(10, "a"), (20, "b"), (30, "c"), (40, "d"), (50, "e")]), 100).unwrap();
    let get = |head, token: Option<&str>| store.get_log_events(G, "s", None, None, head, token, 2).unwrap();

    let (page, mut forward, _) = get(true, None);
    assert_eq!(times(&page), [10, 20]);
    let mut seen = times(&page);
    loop {
        let (page, next, _) = get(true, Some(&forward));
        if page.is_empty() {
            assert_eq!(next, forward, "at the end the forward token is returned unchanged");
            break;
        }
        seen.extend(times(&page));
        forward = next;
    }
    assert_eq!(seen, [10, 20, 30, 40, 50]);

    // New events appear behind the token a reader is polling with.
    store.append_logs(G, "s", &events(&[(60, "f")]), 200).unwrap();
    let (page, next, back) = get(true, Some(&forward));
    assert_eq!(messages(&page), ["f"]);
    assert_ne!(next, forward);
    assert_eq!(page[0].stream, "s");
    assert_eq!(page[0].ingestion_ms, 200);
    let (older, _, _) = get(true, Some(&back));
    assert_eq!(times(&older), [40, 50]);

    // Without startFromHead the newest come first, then backward tokens walk to the beginning.
    let (page, _, mut backward) = get(false, None);
    assert_eq!(times(&page), [50, 60]);
    let mut seen = times(&page);
    loop {
        let (page, forward, next) = get(false, Some(&backward));
        if page.is_empty() {
            assert_eq!(next, backward);
            let (after, _, _) = get(true, Some(&forward));
            assert_eq!(times(&after), [10, 20], "the forward token of an empty backward page starts at the top");
            break;
        }
        seen.splice(0..0, times(&page));
        backward = next;
    }
    assert_eq!(seen, [10, 20, 30, 40, 50, 60]);
}

#[test]
fn get_log_events_respects_the_time_range_and_timestamp_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.append_logs(G, "s", &events(&[(10, "a"), (30, "c"), (20, "b")]), 100).unwrap();
    store.append_logs(G, "s", &events(&[(20, "b2"), (40, "d")]), 101).unwrap();
    let (all, _, _) = store.get_log_events(G, "s", None, None, true, None, 100).unwrap();
    assert_eq!(messages(&all), ["a", "b", "b2", "c", "d"]);
    let (range, forward, _) = store.get_log_events(G, "s", Some(20), Some(40), true, None, 100).unwrap();
    assert_eq!(messages(&range), ["b", "b2", "c"], "start inclusive, end exclusive");
    let (beyond, same, _) = store.get_log_events(G, "s", Some(20), Some(40), true, Some(&forward), 100).unwrap();
    assert!(beyond.is_empty(), "the end bound holds for token pages too");
    assert_eq!(same, forward);
    let (latest, _, _) = store.get_log_events(G, "s", Some(20), Some(40), false, None, 2).unwrap();
    assert_eq!(messages(&latest), ["b2", "c"]);
}

#[test]
fn polling_an_empty_stream_sees_later_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.append_logs(G, "s", &[], 100).unwrap();
    for head in [true, false] {
        let (page, forward, _) = store.get_log_events(G, "s", None, None, head, None, 10).unwrap();
        assert!(page.is_empty());
        let (page, again, _) = store.get_log_events(G, "s", None, None, true, Some(&forward), 10).unwrap();
        assert!(page.is_empty());
        assert_eq!(again, forward);
    }
    let (_, forward, _) = store.get_log_events(G, "s", None, None, false, None, 10).unwrap();
    store.append_logs(G, "s", &events(&[(1_000, "late")]), 200).unwrap();
    let (page, _, _) = store.get_log_events(G, "s", None, None, true, Some(&forward), 10).unwrap();
    assert_eq!(messages(&page), ["late"]);
}

#[test]
fn get_log_events_errors_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.append_logs(G, "s", &events(&[(1, "a")]), 1).unwrap();
    let err = store.get_log_events("/nope", "s", None, None, true, None, 10).unwrap_err();
    assert!(matches!(err, StoreError::NotFound { what: "log group", .. }), "{err}");
    let err = store.get_log_events(G, "nope", None, None, true, None, 10).unwrap_err();
    assert!(matches!(err, StoreError::NotFound { what: "log stream", .. }), "{err}");
    let err = store.get_log_events(G, "s", None, None, true, Some("garbage"), 10).unwrap_err();
    assert!(matches!(err, StoreError::InvalidToken { .. }), "{err}");
}

#[test]
fn filter_log_events_merges_streams_in_time_order_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.append_logs(G, "2024/[1]a", &events(&[(10, "START a"), (30, "ERROR db down"), (50, "END a")]), 1).unwrap();
    store.append_logs(G, "2024/[1]b", &events(&[(20, "START b"), (30, "ERROR timed out"), (60, "END b")]), 2).unwrap();
    store.append_logs(G, "2025/[1]c", &events(&[(40, "ERROR elsewhere")]), 3).unwrap();
    let filter = |streams: Option<&[String]>, prefix, start, end, pattern, token: Option<&str>, limit| {
        store.filter_log_events(G, streams, prefix, start, end, pattern, token, limit).unwrap()
    };

    let (all, next) = filter(None, None, None, None, None, None, 100);
    assert_eq!(next, None);
    assert_eq!(
        messages(&all),
        ["START a", "START b", "ERROR db down", "ERROR timed out", "ERROR elsewhere", "END a", "END b"]
    );
    assert!(all.windows(2).all(|w| (w[0].timestamp_ms, w[0].id) < (w[1].timestamp_ms, w[1].id)));

    let (errors, _) = filter(None, None, None, None, Some("ERROR -elsewhere"), None, 100);
    assert_eq!(messages(&errors), ["ERROR db down", "ERROR timed out"]);
    let (phrase, _) = filter(None, None, None, None, Some("\"timed out\""), None, 100);
    assert_eq!(phrase[0].stream, "2024/[1]b");
    let named = ["2024/[1]a".to_owned(), "2025/[1]c".to_owned()];
    let (some, _) = filter(Some(&named), None, None, None, Some("ERROR"), None, 100);
    assert_eq!(messages(&some), ["ERROR db down", "ERROR elsewhere"]);
    let (prefixed, _) = filter(None, Some("2024/"), Some(30), Some(50), None, None, 100);
    assert_eq!(messages(&prefixed), ["ERROR db down", "ERROR timed out", "END a"], "both ends inclusive");

    let mut token = None;
    let mut paged = Vec::new();
    loop {
        let (page, next) = filter(None, None, None, None, None, token.as_deref(), 2);
        assert!(page.len() <= 2);
        paged.extend(page);
        match next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(paged, all);
    assert!(matches!(
        store.filter_log_events(G, None, None, None, None, Some("{ $.x = 1 }"), None, 10),
        Err(StoreError::InvalidPattern { .. })
    ));
    assert!(matches!(
        store.filter_log_events(G, None, None, None, None, None, Some("f/1"), 10),
        Err(StoreError::InvalidToken { .. })
    ));
}

#[test]
fn a_rare_match_returns_a_short_page_with_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let noise: Vec<LogEvent> =
        (0..read::FILTER_SCAN_MAX as i64 + 5).map(|i| LogEvent { timestamp_ms: i, message: "noise".into() }).collect();
    store.append_logs(G, "s", &noise, 1).unwrap();
    store.append_logs(G, "s", &events(&[(1_000_000, "needle")]), 2).unwrap();
    let (page, token) = store.filter_log_events(G, None, None, None, None, Some("needle"), None, 10).unwrap();
    assert!(page.is_empty());
    let (page, token) =
        store.filter_log_events(G, None, None, None, None, Some("needle"), token.as_deref(), 10).unwrap();
    assert_eq!(messages(&page), ["needle"]);
    assert_eq!(token, None);
}

#[test]
fn describe_log_streams_orders_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.append_logs(G, "b", &events(&[(300, "x")]), 1).unwrap();
    store.append_logs(G, "a", &events(&[(200, "x")]), 2).unwrap();
    store.append_logs(G, "d", &events(&[(300, "x")]), 3).unwrap();
    store.append_logs(G, "c", &[], 4).unwrap();
    store.append_logs(G, "e", &events(&[(100, "x")]), 5).unwrap();

    let all = |by_time, desc| {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (page, next) = store.describe_log_streams(G, None, by_time, desc, token.as_deref(), 2).unwrap();
            assert!(page.len() <= 2);
            names.extend(page.into_iter().map(|s| s.name));
            match next {
                Some(next) => token = Some(next),
                None => return names,
            }
        }
    };
    assert_eq!(all(false, false), ["a", "b", "c", "d", "e"]);
    assert_eq!(all(false, true), ["e", "d", "c", "b", "a"]);
    assert_eq!(all(true, false), ["c", "e", "a", "b", "d"]);
    assert_eq!(all(true, true), ["d", "b", "a", "e", "c"]);

    store.append_logs(G, "ab", &[], 6).unwrap();
    let (page, _) = store.describe_log_streams(G, Some("a"), false, false, None, 10).unwrap();
    assert_eq!(page.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["a", "ab"]);
    assert!(matches!(
        store.describe_log_streams(G, None, true, false, Some("n/a"), 10),
        Err(StoreError::InvalidToken { .. })
    ));
    assert!(matches!(
        store.describe_log_streams("/nope", None, false, false, None, 10),
        Err(StoreError::NotFound { what: "log group", .. })
    ));
}

#[test]
fn deleting_a_group_removes_its_streams_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.append_logs(G, "s", &events(&[(1, "a")]), 1).unwrap();
    store.append_logs("/keep", "s", &events(&[(1, "b")]), 1).unwrap();
    store.delete_log_group(G).unwrap();
    assert!(matches!(store.delete_log_group(G), Err(StoreError::NotFound { .. })));
    assert!(matches!(store.get_log_events(G, "s", None, None, true, None, 10), Err(StoreError::NotFound { .. })));
    store.append_logs(G, "s", &events(&[(2, "new")]), 2).unwrap();
    let (page, _, _) = store.get_log_events(G, "s", None, None, true, None, 10).unwrap();
    assert_eq!(messages(&page), ["new"]);
    let (kept, _, _) = store.get_log_events("/keep", "s", None, None, true, None, 10).unwrap();
    assert_eq!(messages(&kept), ["b"]);
}

#[test]
fn retention_drops_old_events_and_empty_streams_but_keeps_groups() {
    const DAY_MS: i64 = 86_400_000;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.append_logs(G, "old", &events(&[(10, "aaaa"), (20, "bb")]), 20).unwrap();
    store.append_logs(G, "mixed", &events(&[(15, "ccc"), (DAY_MS + 150, "d")]), DAY_MS + 150).unwrap();
    store.append_logs("/empty", "s", &[], 5).unwrap();
    store.append_logs("/forever", "s", &events(&[(1, "kept")]), 1).unwrap();
    assert_eq!(store.expire_logs(DAY_MS + 100).unwrap(), 0, "no group has a policy yet");

    let one_day = Some(LogRetentionDays::new(1).unwrap());
    store.set_log_retention(G, one_day).unwrap();
    store.set_log_retention("/empty", one_day).unwrap();
    assert!(matches!(store.set_log_retention("/nope", one_day), Err(StoreError::NotFound { .. })));
    assert_eq!(store.expire_logs(DAY_MS + 100).unwrap(), 3);

    let (streams, _) = store.describe_log_streams(G, None, false, false, None, 10).unwrap();
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0].name, "mixed");
    assert_eq!(
        (streams[0].first_event_ms, streams[0].last_event_ms, streams[0].stored_bytes),
        (Some(DAY_MS + 150), Some(DAY_MS + 150), 1)
    );
    let groups = store.describe_log_groups(None, None, 10).unwrap();
    assert_eq!(
        summaries(groups.clone()),
        vec![(G.to_owned(), 20, 1), ("/empty".to_owned(), 5, 0), ("/forever".to_owned(), 1, 4)]
    );
    assert_eq!(groups.iter().map(|g| g.retention).collect::<Vec<_>>(), [one_day, one_day, None]);
    let (page, _) = store.filter_log_events(G, None, None, None, None, None, None, 10).unwrap();
    assert_eq!(messages(&page), ["d"]);
    let (empty, _) = store.describe_log_streams("/empty", None, false, false, None, 10).unwrap();
    assert!(empty.is_empty(), "a stream idle since before the cutoff goes");
    assert_eq!(store.expire_logs(DAY_MS + 100).unwrap(), 0);

    store.set_log_retention(G, None).unwrap();
    assert_eq!(store.expire_logs(10 * DAY_MS).unwrap(), 0, "without a policy nothing expires");
}

#[test]
fn a_log_group_can_be_created_before_it_has_logs_but_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.create_log_group(G, 7).unwrap();
    assert!(matches!(store.create_log_group(G, 8), Err(StoreError::Conflict { .. })));
    assert_eq!(summaries(store.describe_log_groups(None, None, 10).unwrap()), vec![(G.to_owned(), 7, 0)]);
    store.append_logs(G, "s", &events(&[(9, "x")]), 9).unwrap();
    assert_eq!(summaries(store.describe_log_groups(None, None, 10).unwrap()), vec![(G.to_owned(), 7, 1)]);
}

fn summaries(groups: Vec<LogGroupInfo>) -> Vec<(String, i64, u64)> {
    groups.into_iter().map(|g| (g.name, g.created_ms, g.stored_bytes)).collect()
}

#[test]
fn batches_in_one_call_land_as_if_appended_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let a1 = events(&[(10, "START a"), (12, "héllo")]);
    let b1 = events(&[(11, "START b")]);
    let a2 = events(&[(15, "END a"), (16, "REPORT a")]);
    let other = events(&[(20, "x")]);
    store
        .append_log_batches(
            &[
                LogBatch { group: G, stream: "a", events: &a1 },
                LogBatch { group: G, stream: "b", events: &b1 },
                LogBatch { group: G, stream: "a", events: &a2 },
                LogBatch { group: "/other", stream: "s", events: &other },
                LogBatch { group: G, stream: "empty", events: &[] },
            ],
            100,
        )
        .unwrap();

    let (streams, _) = store.describe_log_streams(G, None, false, false, None, 10).unwrap();
    let summary: Vec<_> =
        streams.iter().map(|s| (s.name.as_str(), s.first_event_ms, s.last_event_ms, s.stored_bytes)).collect();
    assert_eq!(summary, vec![("a", Some(10), Some(16), 26), ("b", Some(11), Some(11), 7), ("empty", None, None, 0)]);
    let (a, _, _) = store.get_log_events(G, "a", None, None, true, None, 10).unwrap();
    assert_eq!(messages(&a), vec!["START a", "héllo", "END a", "REPORT a"]);
    let groups = store.describe_log_groups(None, None, 10).unwrap();
    assert_eq!(summaries(groups), vec![("/aws/lambda/f".to_owned(), 100, 33), ("/other".to_owned(), 100, 1)]);
}

#[test]
fn pages_stop_at_one_megabyte_and_their_tokens_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    // 12 events of 200 KB: 5 fit in 1 MB (each counts its bytes + 26), the 6th does not.
    let big: Vec<LogEvent> = (0..12)
        .map(|i| LogEvent { timestamp_ms: i, message: format!("{i:03}{}", "x".repeat(200 * 1024 - 3)) })
        .collect();
    store.append_logs(G, "s", &big, 1).unwrap();
    let size = |page: &[StoredLogEvent]| page.iter().map(|e| e.message.len() + 26).sum::<usize>();

    // GetLogEvents forward from the head, then backward from the tail.
    let (mut seen, mut token) = (Vec::new(), None::<String>);
    loop {
        let (page, forward, _) = store.get_log_events(G, "s", None, None, true, token.as_deref(), 10_000).unwrap();
        assert!(size(&page) <= 1024 * 1024, "{}", size(&page));
        if page.is_empty() {
            break;
        }
        assert_eq!(page.len(), if seen.len() == 10 { 2 } else { 5 });
        seen.extend(times(&page));
        token = Some(forward);
    }
    assert_eq!(seen, (0..12).collect::<Vec<_>>());
    let (page, _, backward) = store.get_log_events(G, "s", None, None, false, None, 10_000).unwrap();
    assert_eq!(times(&page), [7, 8, 9, 10, 11]);
    let (page, _, _) = store.get_log_events(G, "s", None, None, false, Some(&backward), 10_000).unwrap();
    assert_eq!(times(&page), [2, 3, 4, 5, 6]);

    // FilterLogEvents: the same 1 MB pages, and a token at each cut.
    let (mut seen, mut token) = (Vec::new(), None::<String>);
    loop {
        let (page, next) =
            store.filter_log_events(G, None, None, None, None, Some("x"), token.as_deref(), 10_000).unwrap();
        assert!(size(&page) <= 1024 * 1024);
        seen.extend(times(&page));
        match next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, (0..12).collect::<Vec<_>>());
}

#[test]
fn a_filter_scans_a_bounded_number_of_bytes_per_call() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    // 100 events of 256 KB = 25 MB, none matching: more than one call's byte budget.
    let big: Vec<LogEvent> = (0..100).map(|i| LogEvent { timestamp_ms: i, message: "y".repeat(256 * 1024) }).collect();
    store.append_logs(G, "s", &big, 1).unwrap();
    let (page, token) = store.filter_log_events(G, None, None, None, None, Some("needle"), None, 10).unwrap();
    assert!(page.is_empty());
    let token = token.expect("the budget ran out before the events did");
    let (_, rest) = store.filter_log_events(G, None, None, None, None, Some("needle"), Some(&token), 10).unwrap();
    assert_eq!(rest, None, "the second call finishes the 25 MB");
}
