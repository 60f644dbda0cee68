//! Benchmark: the cost of matching one event against 1,000 EventBridge rules on a bus (issue 12's
//! target: under 50 µs per event). Prints numbers; asserts nothing.
//!
//! `cargo run --release -p nimbus-server --example pattern_match`

use std::hint::black_box;
use std::time::Instant;

use nimbus_server::events::filter::index::PatternIndex;
use nimbus_server::events::filter::{Mode, Pattern};
use serde_json::json;

fn main() {
    // Rules as applications write them: a source and detail-type each, most with a condition on the
    // detail; a tenth use only content operators (no exact source), so the index must try them all.
    let rules: Vec<Pattern> = (0..1000)
        .map(|i| {
            let text = if i % 10 == 9 {
                json!({"detail": {"amount": [{"numeric": [">", i, "<=", i + 100]}], "customer": [{"prefix": format!("c{i}")}]}})
            } else {
                json!({
                    "source": [format!("app.service{}", i % 100)],
                    "detail-type": [format!("Order {}", i / 100)],
                    "detail": {"status": [{"anything-but": ["cancelled", "void"]}], "region": [{"prefix": "eu-"}]}
                })
            };
            Pattern::parse_in(&text.to_string(), Mode::EventBridge).expect("valid pattern")
        })
        .collect();
    let events: Vec<serde_json::Value> = (0..64)
        .map(|i| {
            json!({
                "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
                "detail-type": format!("Order {}", i % 10), "source": format!("app.service{}", i % 100),
                "account": "123456789012", "time": "2026-12-06T21:00:00Z", "region": "us-east-1", "resources": [],
                "detail": {"status": "placed", "region": "eu-west-1", "amount": i * 13, "customer": format!("c{i}x"),
                           "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}]}
            })
        })
        .collect();

    let index = PatternIndex::new(rules.clone());
    let brute = |event: &serde_json::Value| (0..rules.len()).filter(|&i| rules[i].matches(event)).count();
    let mut matched = 0;
    for event in &events {
        assert_eq!(index.matching(event).len(), brute(event));
        matched += brute(event);
    }
    println!(
        "1000 rules, {} events, {:.1} matching rules per event",
        events.len(),
        matched as f64 / events.len() as f64
    );

    for (name, run) in [
        (
            "indexed (PatternIndex)",
            &(|e: &serde_json::Value| index.matching(e).len()) as &dyn Fn(&serde_json::Value) -> usize,
        ),
        ("every rule tried", &brute),
    ] {
        let rounds = 2000;
        let start = Instant::now();
        for _ in 0..rounds {
            for event in &events {
                black_box(run(black_box(event)));
            }
        }
        let per_event = start.elapsed().as_secs_f64() * 1e6 / (rounds * events.len()) as f64;
        println!("{name:<24} {per_event:8.2} µs per event");
    }
}
