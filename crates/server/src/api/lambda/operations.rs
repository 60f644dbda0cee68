//! The Lambda operations Nimbus serves: one row per operation, giving its method, its paths, its IAM
//! action and which resource it acts on, as AWS's Service Authorization Reference lists them. The
//! router is built from this table (`super::routes` binds each operation to its handler), and each
//! route's layer decides the request from its own row, so what is authorized is exactly what the
//! matched handler will do, whatever the path's text (a function named `invocations` is a name, not
//! a route).

use axum::body::Body;
use axum::extract::{RawPathParams, Request, State};
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use axum::{RequestPartsExt, Router};
use http_body_util::BodyExt;
use nimbus_model::FunctionRef;
use nimbus_model::policy::Action;

use crate::api::{ApiError, SharedState};
use crate::authz::{self, Identity};

/// What an operation acts on, for its resource ARN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// No resource: the ARN is `*` (ListFunctions, GetAccountSettings, ListEventSourceMappings,
    /// CreateEventSourceMapping).
    Any,
    /// The function in the `{name}` path label, with its qualifier when the request names one.
    Function,
    /// The function named by the body's `FunctionName` (CreateFunction).
    NewFunction,
    /// `arn:aws:lambda:<region>:<account>:event-source-mapping:<uuid>` from the `{uuid}` label.
    EventSourceMapping,
    /// The ARN in the `{arn}` label (tag operations).
    TaggedArn,
}

macro_rules! operations {
    ($( $op:ident => $method:ident [$($path:literal),+] $action:literal $target:ident; )+) => {
        /// One variant per Lambda operation Nimbus serves.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum LambdaOperation { $($op),+ }

        impl LambdaOperation {
            #[cfg(test)]
            pub const ALL: &'static [LambdaOperation] = &[$(LambdaOperation::$op),+];

            /// The operation's name in botocore's model.
            #[cfg(test)]
            pub fn name(self) -> &'static str {
                match self { $(LambdaOperation::$op => stringify!($op)),+ }
            }

            pub fn method(self) -> Method {
                match self { $(LambdaOperation::$op => Method::$method),+ }
            }

            /// The paths it is served on (AWS accepts some with a trailing slash).
            pub fn paths(self) -> &'static [&'static str] {
                match self { $(LambdaOperation::$op => &[$($path),+]),+ }
            }

            /// Its IAM action.
            pub fn action(self) -> Action {
                match self { $(LambdaOperation::$op => Action::from_static($action)),+ }
            }

            pub fn target(self) -> Target {
                match self { $(LambdaOperation::$op => Target::$target),+ }
            }
        }
    };
}

operations! {
    CreateFunction => POST ["/2015-03-31/functions", "/2015-03-31/functions/"] "lambda:CreateFunction" NewFunction;
    ListFunctions => GET ["/2015-03-31/functions", "/2015-03-31/functions/"] "lambda:ListFunctions" Any;
    GetFunction => GET ["/2015-03-31/functions/{name}"] "lambda:GetFunction" Function;
    DeleteFunction => DELETE ["/2015-03-31/functions/{name}"] "lambda:DeleteFunction" Function;
    GetFunctionConfiguration => GET ["/2015-03-31/functions/{name}/configuration"] "lambda:GetFunctionConfiguration" Function;
    UpdateFunctionConfiguration => PUT ["/2015-03-31/functions/{name}/configuration"] "lambda:UpdateFunctionConfiguration" Function;
    UpdateFunctionCode => PUT ["/2015-03-31/functions/{name}/code"] "lambda:UpdateFunctionCode" Function;
    PublishVersion => POST ["/2015-03-31/functions/{name}/versions"] "lambda:PublishVersion" Function;
    ListVersionsByFunction => GET ["/2015-03-31/functions/{name}/versions"] "lambda:ListVersionsByFunction" Function;
    // The alias operations act on the function (the reference lists the function resource for them).
    CreateAlias => POST ["/2015-03-31/functions/{name}/aliases"] "lambda:CreateAlias" Function;
    ListAliases => GET ["/2015-03-31/functions/{name}/aliases"] "lambda:ListAliases" Function;
    GetAlias => GET ["/2015-03-31/functions/{name}/aliases/{alias}"] "lambda:GetAlias" Function;
    UpdateAlias => PUT ["/2015-03-31/functions/{name}/aliases/{alias}"] "lambda:UpdateAlias" Function;
    DeleteAlias => DELETE ["/2015-03-31/functions/{name}/aliases/{alias}"] "lambda:DeleteAlias" Function;
    Invoke => POST ["/2015-03-31/functions/{name}/invocations"] "lambda:InvokeFunction" Function;
    InvokeAsync => POST ["/2014-11-13/functions/{name}/invoke-async", "/2014-11-13/functions/{name}/invoke-async/"] "lambda:InvokeAsync" Function;
    GetAccountSettings => GET ["/2016-08-19/account-settings", "/2016-08-19/account-settings/"] "lambda:GetAccountSettings" Any;
    PutFunctionConcurrency => PUT ["/2017-10-31/functions/{name}/concurrency"] "lambda:PutFunctionConcurrency" Function;
    DeleteFunctionConcurrency => DELETE ["/2017-10-31/functions/{name}/concurrency"] "lambda:DeleteFunctionConcurrency" Function;
    GetFunctionConcurrency => GET ["/2019-09-30/functions/{name}/concurrency"] "lambda:GetFunctionConcurrency" Function;
    // `GET …/provisioned-concurrency?List=ALL` is ListProvisionedConcurrencyConfigs: see `refine`.
    GetProvisionedConcurrencyConfig => GET ["/2019-09-30/functions/{name}/provisioned-concurrency"] "lambda:GetProvisionedConcurrencyConfig" Function;
    ListProvisionedConcurrencyConfigs => GET ["/2019-09-30/functions/{name}/provisioned-concurrency"] "lambda:ListProvisionedConcurrencyConfigs" Function;
    PutProvisionedConcurrencyConfig => PUT ["/2019-09-30/functions/{name}/provisioned-concurrency"] "lambda:PutProvisionedConcurrencyConfig" Function;
    DeleteProvisionedConcurrencyConfig => DELETE ["/2019-09-30/functions/{name}/provisioned-concurrency"] "lambda:DeleteProvisionedConcurrencyConfig" Function;
    ListTags => GET ["/2017-03-31/tags/{arn}"] "lambda:ListTags" TaggedArn;
    TagResource => POST ["/2017-03-31/tags/{arn}"] "lambda:TagResource" TaggedArn;
    UntagResource => DELETE ["/2017-03-31/tags/{arn}"] "lambda:UntagResource" TaggedArn;
    GetFunctionEventInvokeConfig => GET ["/2019-09-25/functions/{name}/event-invoke-config"] "lambda:GetFunctionEventInvokeConfig" Function;
    PutFunctionEventInvokeConfig => PUT ["/2019-09-25/functions/{name}/event-invoke-config"] "lambda:PutFunctionEventInvokeConfig" Function;
    UpdateFunctionEventInvokeConfig => POST ["/2019-09-25/functions/{name}/event-invoke-config"] "lambda:UpdateFunctionEventInvokeConfig" Function;
    DeleteFunctionEventInvokeConfig => DELETE ["/2019-09-25/functions/{name}/event-invoke-config"] "lambda:DeleteFunctionEventInvokeConfig" Function;
    ListFunctionEventInvokeConfigs => GET ["/2019-09-25/functions/{name}/event-invoke-config/list"] "lambda:ListFunctionEventInvokeConfigs" Function;
    CreateEventSourceMapping => POST ["/2015-03-31/event-source-mappings", "/2015-03-31/event-source-mappings/"] "lambda:CreateEventSourceMapping" Any;
    ListEventSourceMappings => GET ["/2015-03-31/event-source-mappings", "/2015-03-31/event-source-mappings/"] "lambda:ListEventSourceMappings" Any;
    GetEventSourceMapping => GET ["/2015-03-31/event-source-mappings/{uuid}"] "lambda:GetEventSourceMapping" EventSourceMapping;
    UpdateEventSourceMapping => PUT ["/2015-03-31/event-source-mappings/{uuid}"] "lambda:UpdateEventSourceMapping" EventSourceMapping;
    DeleteEventSourceMapping => DELETE ["/2015-03-31/event-source-mappings/{uuid}"] "lambda:DeleteEventSourceMapping" EventSourceMapping;
}

impl LambdaOperation {
    /// The operation a request on this operation's route really is, where one route serves two
    /// operations told apart by the query (`?List=ALL`).
    pub fn refine(self, query: Option<&str>) -> LambdaOperation {
        let listing = || query.is_some_and(|q| q.split('&').any(|kv| kv == "List=ALL"));
        match self {
            LambdaOperation::GetProvisionedConcurrencyConfig if listing() => {
                LambdaOperation::ListProvisionedConcurrencyConfigs
            }
            other => other,
        }
    }

    /// Whether this row is served by a route of its own (the List variant shares Get's route).
    fn routed(self) -> bool {
        self != LambdaOperation::ListProvisionedConcurrencyConfigs
    }
}

/// Adds `op`'s routes to `router`, served by `handler`, behind `op`'s authorization.
pub fn route<H, T>(
    router: Router<SharedState>,
    state: &SharedState,
    op: LambdaOperation,
    handler: H,
) -> Router<SharedState>
where
    H: Handler<T, SharedState>,
    T: 'static,
{
    debug_assert!(op.routed(), "{op:?} shares another operation's route");
    let filter = MethodFilter::try_from(op.method()).expect("the table's methods are standard");
    op.paths().iter().fold(router, |router, path| {
        let endpoint =
            on(filter, handler.clone()).route_layer(middleware::from_fn_with_state((state.clone(), op), authorize));
        router.route(path, endpoint)
    })
}

/// Decides a request on `op`'s route before its handler runs.
async fn authorize(
    State((state, op)): State<(SharedState, LambdaOperation)>,
    request: Request,
    next: Next,
) -> Response {
    let identity = request.extensions().get::<Identity>().cloned();
    let Some(identity) = identity else {
        return next.run(request).await;
    };
    let op = op.refine(request.uri().query());
    let (mut parts, body) = request.into_parts();
    let labels = match parts.extract::<RawPathParams>().await {
        Ok(labels) => labels,
        Err(rejection) => return rejection.into_response(),
    };
    let label = |name: &str| labels.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_owned());
    // Only CreateFunction needs the body (its resource is the function it creates); it is already
    // buffered and bounded by `authenticate`.
    let (body, new_name) = if op.target() == Target::NewFunction {
        let bytes = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => Default::default(),
        };
        #[derive(serde::Deserialize)]
        struct Named {
            #[serde(rename = "FunctionName")]
            function_name: Option<String>,
        }
        let name = serde_json::from_slice::<Named>(&bytes).ok().and_then(|n| n.function_name);
        (Body::from(bytes), name)
    } else {
        (body, None)
    };
    let qualifier = query_qualifier(parts.uri.query());
    let name = label("name").or(new_name);
    let resource = resource(&state.arns, op, name.as_deref(), qualifier.as_deref(), label("uuid"), label("arn"));
    if let Err(denied) = authz::authorize(Some(&identity), &op.action(), &resource) {
        return ApiError::access_denied(denied.message).into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

fn query_qualifier(query: Option<&str>) -> Option<String> {
    let query = query?;
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, v)| k == "Qualifier" && !v.is_empty())
        .map(|(_, v)| v)
}

/// The resource ARN `op` acts on. A function name that does not parse still names a resource (the
/// handler refuses it afterwards with its validation error); the decision never depends on parsing.
pub fn resource(
    arns: &crate::arn::Arns,
    op: LambdaOperation,
    name: Option<&str>,
    query_qualifier: Option<&str>,
    uuid: Option<String>,
    arn: Option<String>,
) -> String {
    let (region, account) = (&arns.region, &arns.account);
    match op.target() {
        Target::Any => "*".to_owned(),
        Target::TaggedArn => arn.unwrap_or_else(|| "*".to_owned()),
        Target::EventSourceMapping => {
            format!("arn:aws:lambda:{region}:{account}:event-source-mapping:{}", uuid.unwrap_or_default())
        }
        Target::Function | Target::NewFunction => {
            let raw = name.unwrap_or_default();
            match FunctionRef::parse(raw) {
                Ok(parsed) => {
                    let qualifier = parsed.qualifier.map(|q| q.to_string()).or(query_qualifier.map(str::to_owned));
                    match qualifier {
                        Some(q) => format!("arn:aws:lambda:{region}:{account}:function:{}:{q}", parsed.name),
                        None => format!("arn:aws:lambda:{region}:{account}:function:{}", parsed.name),
                    }
                }
                Err(_) => format!("arn:aws:lambda:{region}:{account}:function:{raw}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (operation, method, requestUri) as botocore's Lambda model (shared/reference/lambda-operations.tsv)
    /// gives them, for every operation Nimbus serves, and the IAM action AWS's Service Authorization
    /// Reference gives it.
    const REFERENCE: &[(&str, &str, &str, &str)] = &[
        ("CreateFunction", "POST", "/2015-03-31/functions", "lambda:CreateFunction"),
        ("ListFunctions", "GET", "/2015-03-31/functions", "lambda:ListFunctions"),
        ("GetFunction", "GET", "/2015-03-31/functions/{FunctionName}", "lambda:GetFunction"),
        ("DeleteFunction", "DELETE", "/2015-03-31/functions/{FunctionName}", "lambda:DeleteFunction"),
        (
            "GetFunctionConfiguration",
            "GET",
            "/2015-03-31/functions/{FunctionName}/configuration",
            "lambda:GetFunctionConfiguration",
        ),
        (
            "UpdateFunctionConfiguration",
            "PUT",
            "/2015-03-31/functions/{FunctionName}/configuration",
            "lambda:UpdateFunctionConfiguration",
        ),
        ("UpdateFunctionCode", "PUT", "/2015-03-31/functions/{FunctionName}/code", "lambda:UpdateFunctionCode"),
        ("PublishVersion", "POST", "/2015-03-31/functions/{FunctionName}/versions", "lambda:PublishVersion"),
        (
            "ListVersionsByFunction",
            "GET",
            "/2015-03-31/functions/{FunctionName}/versions",
            "lambda:ListVersionsByFunction",
        ),
        ("CreateAlias", "POST", "/2015-03-31/functions/{FunctionName}/aliases", "lambda:CreateAlias"),
        ("ListAliases", "GET", "/2015-03-31/functions/{FunctionName}/aliases", "lambda:ListAliases"),
        ("GetAlias", "GET", "/2015-03-31/functions/{FunctionName}/aliases/{Name}", "lambda:GetAlias"),
        ("UpdateAlias", "PUT", "/2015-03-31/functions/{FunctionName}/aliases/{Name}", "lambda:UpdateAlias"),
        ("DeleteAlias", "DELETE", "/2015-03-31/functions/{FunctionName}/aliases/{Name}", "lambda:DeleteAlias"),
        ("Invoke", "POST", "/2015-03-31/functions/{FunctionName}/invocations", "lambda:InvokeFunction"),
        ("InvokeAsync", "POST", "/2014-11-13/functions/{FunctionName}/invoke-async", "lambda:InvokeAsync"),
        ("GetAccountSettings", "GET", "/2016-08-19/account-settings", "lambda:GetAccountSettings"),
        (
            "PutFunctionConcurrency",
            "PUT",
            "/2017-10-31/functions/{FunctionName}/concurrency",
            "lambda:PutFunctionConcurrency",
        ),
        (
            "DeleteFunctionConcurrency",
            "DELETE",
            "/2017-10-31/functions/{FunctionName}/concurrency",
            "lambda:DeleteFunctionConcurrency",
        ),
        (
            "GetFunctionConcurrency",
            "GET",
            "/2019-09-30/functions/{FunctionName}/concurrency",
            "lambda:GetFunctionConcurrency",
        ),
        (
            "GetProvisionedConcurrencyConfig",
            "GET",
            "/2019-09-30/functions/{FunctionName}/provisioned-concurrency",
            "lambda:GetProvisionedConcurrencyConfig",
        ),
        (
            "ListProvisionedConcurrencyConfigs",
            "GET",
            "/2019-09-30/functions/{FunctionName}/provisioned-concurrency?List=ALL",
            "lambda:ListProvisionedConcurrencyConfigs",
        ),
        (
            "PutProvisionedConcurrencyConfig",
            "PUT",
            "/2019-09-30/functions/{FunctionName}/provisioned-concurrency",
            "lambda:PutProvisionedConcurrencyConfig",
        ),
        (
            "DeleteProvisionedConcurrencyConfig",
            "DELETE",
            "/2019-09-30/functions/{FunctionName}/provisioned-concurrency",
            "lambda:DeleteProvisionedConcurrencyConfig",
        ),
        ("ListTags", "GET", "/2017-03-31/tags/{Resource}", "lambda:ListTags"),
        ("TagResource", "POST", "/2017-03-31/tags/{Resource}", "lambda:TagResource"),
        ("UntagResource", "DELETE", "/2017-03-31/tags/{Resource}", "lambda:UntagResource"),
        (
            "GetFunctionEventInvokeConfig",
            "GET",
            "/2019-09-25/functions/{FunctionName}/event-invoke-config",
            "lambda:GetFunctionEventInvokeConfig",
        ),
        (
            "PutFunctionEventInvokeConfig",
            "PUT",
            "/2019-09-25/functions/{FunctionName}/event-invoke-config",
            "lambda:PutFunctionEventInvokeConfig",
        ),
        (
            "UpdateFunctionEventInvokeConfig",
            "POST",
            "/2019-09-25/functions/{FunctionName}/event-invoke-config",
            "lambda:UpdateFunctionEventInvokeConfig",
        ),
        (
            "DeleteFunctionEventInvokeConfig",
            "DELETE",
            "/2019-09-25/functions/{FunctionName}/event-invoke-config",
            "lambda:DeleteFunctionEventInvokeConfig",
        ),
        (
            "ListFunctionEventInvokeConfigs",
            "GET",
            "/2019-09-25/functions/{FunctionName}/event-invoke-config/list",
            "lambda:ListFunctionEventInvokeConfigs",
        ),
        ("CreateEventSourceMapping", "POST", "/2015-03-31/event-source-mappings", "lambda:CreateEventSourceMapping"),
        ("ListEventSourceMappings", "GET", "/2015-03-31/event-source-mappings", "lambda:ListEventSourceMappings"),
        ("GetEventSourceMapping", "GET", "/2015-03-31/event-source-mappings/{UUID}", "lambda:GetEventSourceMapping"),
        (
            "UpdateEventSourceMapping",
            "PUT",
            "/2015-03-31/event-source-mappings/{UUID}",
            "lambda:UpdateEventSourceMapping",
        ),
        (
            "DeleteEventSourceMapping",
            "DELETE",
            "/2015-03-31/event-source-mappings/{UUID}",
            "lambda:DeleteEventSourceMapping",
        ),
    ];

    /// botocore's label names to the router's.
    fn our_path(uri: &str) -> String {
        let path = uri.split('?').next().unwrap_or(uri);
        path.replace("{FunctionName}", "{name}")
            .replace("{Name}", "{alias}")
            .replace("{UUID}", "{uuid}")
            .replace("{Resource}", "{arn}")
    }

    #[test]
    fn every_served_operation_matches_the_model_and_its_iam_action() {
        assert_eq!(REFERENCE.len(), LambdaOperation::ALL.len(), "one reference row per served operation");
        for (name, method, uri, action) in REFERENCE {
            let op = *LambdaOperation::ALL
                .iter()
                .find(|op| op.name() == *name)
                .unwrap_or_else(|| panic!("{name} has no row in the table"));
            assert_eq!(op.method().as_str(), *method, "{name}");
            assert!(op.paths().contains(&our_path(uri).as_str()), "{name}: {:?} lacks {uri}", op.paths());
            assert_eq!(op.action().as_str(), *action, "{name}");
            let query = uri.split_once('?').map(|(_, q)| q);
            if query.is_some() {
                assert!(!op.routed(), "{name} is told apart by its query, on another's route");
                let routed = LambdaOperation::ALL
                    .iter()
                    .find(|o| o.routed() && o.method() == op.method() && o.paths() == op.paths())
                    .unwrap();
                assert_eq!(routed.refine(query), op, "{name}");
            } else {
                assert_eq!(op.refine(None), op, "{name}");
            }
        }
    }

    #[test]
    fn no_two_routed_operations_share_a_method_and_path() {
        let mut seen = std::collections::HashSet::new();
        for op in LambdaOperation::ALL.iter().filter(|o| o.routed()) {
            for path in op.paths() {
                assert!(seen.insert((op.method(), *path)), "{op:?} {path} is routed twice");
            }
        }
    }

    #[test]
    fn resources_are_arns_of_what_the_operation_acts_on() {
        let arns = crate::arn::Arns { region: "us-east-1".into(), account: "123456789012".into() };
        let f = "arn:aws:lambda:us-east-1:123456789012:function";
        type Case<'a> = (LambdaOperation, Option<&'a str>, Option<&'a str>, Option<&'a str>, Option<&'a str>, String);
        let cases: &[Case] = &[
            (LambdaOperation::ListFunctions, None, None, None, None, "*".into()),
            (LambdaOperation::GetAccountSettings, None, None, None, None, "*".into()),
            (LambdaOperation::DeleteFunction, Some("invocations"), None, None, None, format!("{f}:invocations")),
            (LambdaOperation::Invoke, Some("echo"), Some("live"), None, None, format!("{f}:echo:live")),
            (LambdaOperation::Invoke, Some("echo:3"), None, None, None, format!("{f}:echo:3")),
            (LambdaOperation::Invoke, Some(&format!("{f}:echo")), None, None, None, format!("{f}:echo")),
            (LambdaOperation::UpdateAlias, Some("versions"), None, None, None, format!("{f}:versions")),
            (LambdaOperation::CreateFunction, Some("policy"), None, None, None, format!("{f}:policy")),
            // A name that does not parse still names a resource; the handler refuses it afterwards.
            (LambdaOperation::GetFunction, Some("bad name!"), None, None, None, format!("{f}:bad name!")),
            (
                LambdaOperation::GetEventSourceMapping,
                None,
                None,
                Some("6b1c"),
                None,
                "arn:aws:lambda:us-east-1:123456789012:event-source-mapping:6b1c".into(),
            ),
            (LambdaOperation::TagResource, None, None, None, Some(&format!("{f}:echo")), format!("{f}:echo")),
        ];
        for (op, name, qualifier, uuid, arn, expected) in cases {
            let got = resource(&arns, *op, *name, *qualifier, uuid.map(str::to_owned), arn.map(str::to_owned));
            assert_eq!(&got, expected, "{op:?} {name:?}");
        }
    }
}
