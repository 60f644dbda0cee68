//! The policy engine's benchmark: how long one authorization decision takes in the policy engine
//! (`nimbus_model::policy`) for a principal with ten attached managed-policy-sized documents
//! (each near IAM's 6,144-character limit, with wildcards, conditions and policy variables).
//!
//! Prints p50/p99/max per scenario: an allow found in the last statement of the last document, an
//! implicit deny (every statement scanned), an explicit deny; each both for `evaluate` alone and for
//! building the request context plus `evaluate` (what `authz::authorize` does per request). Prints
//! numbers and asserts nothing about speed. An ignored test, so that it runs only when asked, in release:
//! `cargo test --release -p nimbus-model --test policy_bench -- --ignored --nocapture` (single-threaded,
//! a few seconds; a test in the model crate rather than a `nimbus-bench` binary, so that it builds only
//! the engine).

use std::hint::black_box;
use std::time::Instant;

use nimbus_model::policy::{
    Action, Decision, Policies, PolicyDocument, PolicyKind, Principal, PrincipalKind, RequestContext,
    chars_without_whitespace, evaluate, limits,
};

const ACCOUNT: &str = "111122223333";
const SAMPLES: usize = 200_000;

/// One managed-policy-sized document: statements of read-style actions over services, with resources,
/// conditions and a policy variable, like AWS's larger managed policies.
/// `one_service`: every statement names `lambda:` actions (none matching the scenarios' actions), so the
/// engine's per-service index cannot skip them: the worst case.
fn document(index: usize, last: bool, one_service: bool) -> String {
    let mut statements = Vec::new();
    let mut n = 0;
    loop {
        let service = if one_service { "lambda".to_owned() } else { format!("svc{index}x{n}") };
        let actions: Vec<String> = ["Get*", "List*", "Describe*", "BatchGet*", "Query", "Scan", "Search*", "Lookup*"]
            .iter()
            .map(|a| if one_service { format!("\"{service}:{a}X{n}\"") } else { format!("\"{service}:{a}\"") })
            .collect();
        let statement = format!(
            r#"{{"Sid":"S{n}","Effect":"Allow","Action":[{}],"Resource":["arn:aws:{service}:*:{ACCOUNT}:table/${{aws:username}}-*","arn:aws:{service}:us-east-1:{ACCOUNT}:index/*"],"Condition":{{"StringEquals":{{"aws:RequestedRegion":["us-east-1","eu-west-1"]}},"Bool":{{"aws:SecureTransport":"true"}},"IpAddress":{{"aws:SourceIp":["10.0.0.0/8","192.168.0.0/16"]}}}}}}"#,
            actions.join(",")
        );
        let candidate = statements.iter().chain(std::iter::once(&statement)).cloned().collect::<Vec<_>>().join(",");
        if chars_without_whitespace(&candidate) > limits::MANAGED_POLICY_CHARS - 400 {
            break;
        }
        statements.push(statement);
        n += 1;
    }
    if last {
        statements.push(
            r#"{"Sid":"Invoke","Effect":"Allow","Action":["lambda:InvokeFunction","lambda:Get*"],"Resource":"arn:aws:lambda:us-east-1:111122223333:function:app-*"}"#
                .to_owned(),
        );
    }
    if index == 4 {
        statements.insert(
            0,
            r#"{"Sid":"NoDeletes","Effect":"Deny","Action":["lambda:Delete*","iam:*"],"Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/protected":"true"}}}"#
                .to_owned(),
        );
    }
    format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, statements.join(","))
}

fn principal() -> Principal {
    Principal {
        arn: format!("arn:aws:iam::{ACCOUNT}:user/ci"),
        account: ACCOUNT.into(),
        user_id: "AIDACIUSER".into(),
        kind: PrincipalKind::User { name: "ci".into() },
    }
}

fn context(action: &'static str, protected: bool) -> RequestContext {
    let mut ctx = RequestContext::new(
        principal(),
        Action::from_static(action),
        "arn:aws:lambda:us-east-1:111122223333:function:app-worker",
    );
    ctx.set("aws:SecureTransport", "false")
        .set("aws:SourceIp", "127.0.0.1")
        .set("aws:CurrentTime", "2026-12-06T20:00:00Z");
    if protected {
        ctx.set("aws:PrincipalTag/protected", "true");
    }
    ctx
}

fn percentiles(mut ns: Vec<u64>) -> (u64, u64, u64) {
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() as f64 * q) as usize).min(ns.len() - 1)];
    (at(0.50), at(0.99), *ns.last().unwrap_or(&0))
}

#[test]
#[ignore = "a benchmark: run in release with --ignored --nocapture"]
fn one_decision_with_ten_managed_policies() {
    println!("policy engine, ten managed-policy-sized identity policies per principal:");
    println!("  statements about many services (the per-service index skips most):");
    run(false);
    println!("  every statement about lambda (nothing skipped: the worst case):");
    run(true);
}

fn run(one_service: bool) {
    let texts: Vec<String> = (0..10).map(|i| document(i, i == 9, one_service)).collect();
    let sizes: Vec<usize> = texts.iter().map(|t| chars_without_whitespace(t)).collect();
    let started = Instant::now();
    let docs: Vec<PolicyDocument> = texts
        .iter()
        .map(|t| PolicyDocument::parse(PolicyKind::Identity, t).expect("the benchmark's documents are valid"))
        .collect();
    let compile = started.elapsed();
    let statements: usize = docs.iter().map(PolicyDocument::statement_count).sum();
    println!(
        "  10 identity policies, {statements} statements, {}..{} chars each (limit {}), compiled in {:.1} µs",
        sizes.iter().min().unwrap_or(&0),
        sizes.iter().max().unwrap_or(&0),
        limits::MANAGED_POLICY_CHARS,
        compile.as_secs_f64() * 1e6
    );
    let policies = Policies { identity: &docs, ..Default::default() };

    /// (name, action, whether the principal carries the protected tag, the decision expected).
    type Scenario = (&'static str, &'static str, bool, fn(&Decision) -> bool);
    let scenarios: [Scenario; 4] = [
        ("allow (last statement of the last policy)", "lambda:InvokeFunction", false, |d| d.is_allowed()),
        ("implicit deny (every statement scanned)", "lambda:UpdateFunctionCode", false, |d| {
            matches!(d, Decision::ImplicitDeny(_))
        }),
        // `List…` passes the first-character filter of every statement: all their patterns are matched.
        ("implicit deny, a List… action (no filter helps)", "lambda:ListLayers", false, |d| {
            matches!(d, Decision::ImplicitDeny(_))
        }),
        ("explicit deny (condition on a principal tag)", "lambda:DeleteFunction", true, |d| {
            matches!(d, Decision::ExplicitDeny(_))
        }),
    ];
    println!("  {:<48} {:>22} {:>22}", "scenario", "evaluate p50/p99/max", "context+evaluate p50/p99/max");
    for (name, action, protected, expect) in scenarios {
        let ctx = context(action, protected);
        let decision = evaluate(&policies, &ctx);
        assert!(expect(&decision), "{name}: unexpected {decision:?}");
        for _ in 0..10_000 {
            black_box(evaluate(&policies, black_box(&ctx)));
        }
        let mut alone = Vec::with_capacity(SAMPLES);
        let mut whole = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            let t = Instant::now();
            black_box(evaluate(&policies, black_box(&ctx)));
            alone.push(t.elapsed().as_nanos() as u64);
            let t = Instant::now();
            let c = context(action, protected);
            black_box(evaluate(&policies, black_box(&c)));
            whole.push(t.elapsed().as_nanos() as u64);
        }
        let (a50, a99, amax) = percentiles(alone);
        let (w50, w99, wmax) = percentiles(whole);
        let us = |ns: u64| ns as f64 / 1000.0;
        println!(
            "  {name:<48} {:>6.2}/{:>6.2}/{:>7.1} µs {:>6.2}/{:>6.2}/{:>7.1} µs",
            us(a50),
            us(a99),
            us(amax),
            us(w50),
            us(w99),
            us(wmax)
        );
    }
}
