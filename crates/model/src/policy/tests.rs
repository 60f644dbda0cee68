//! Table-driven tests of the engine, built from the examples in AWS's IAM documentation (policy evaluation
//! logic, condition operators, single- vs multi-valued context keys, policy variables, NotAction,
//! NotPrincipal, the grammar) and the errors IAM answers malformed documents with.

use super::*;

const ACCT: &str = "111122223333";
const OTHER: &str = "444455556666";

fn user(name: &str) -> Principal {
    Principal {
        arn: format!("arn:aws:iam::{ACCT}:user/{name}"),
        account: ACCT.into(),
        user_id: format!("AIDA{}", name.to_uppercase()),
        kind: PrincipalKind::User { name: name.into() },
    }
}

fn other_user(name: &str) -> Principal {
    Principal {
        arn: format!("arn:aws:iam::{OTHER}:user/{name}"),
        account: OTHER.into(),
        user_id: "AIDAOTHER".into(),
        kind: PrincipalKind::User { name: name.into() },
    }
}

fn session(role: &str, name: &str) -> Principal {
    Principal {
        arn: format!("arn:aws:sts::{ACCT}:assumed-role/{role}/{name}"),
        account: ACCT.into(),
        user_id: format!("AROAROLE:{name}"),
        kind: PrincipalKind::AssumedRole {
            role_arn: format!("arn:aws:iam::{ACCT}:role/{role}"),
            session_name: name.into(),
        },
    }
}

fn root() -> Principal {
    Principal {
        arn: format!("arn:aws:iam::{ACCT}:root"),
        account: ACCT.into(),
        user_id: ACCT.into(),
        kind: PrincipalKind::Root,
    }
}

fn service(name: &str) -> Principal {
    Principal {
        arn: String::new(),
        account: String::new(),
        user_id: String::new(),
        kind: PrincipalKind::Service { name: name.into() },
    }
}

fn doc(kind: PolicyKind, text: &str) -> PolicyDocument {
    PolicyDocument::parse(kind, text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A 2012-10-17 identity policy with the given statements.
fn id(statements: &str) -> PolicyDocument {
    doc(PolicyKind::Identity, &format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#))
}

fn res(statements: &str) -> PolicyDocument {
    doc(PolicyKind::Resource, &format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#))
}

const FN: &str = "arn:aws:lambda:us-east-1:111122223333:function:my-function";
const BUCKET: &str = "arn:aws:s3:::amzn-s3-demo-bucket";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Want {
    Allow,
    Deny,
    Implicit(DenyReason),
}

struct Case {
    name: &'static str,
    principal: Principal,
    action: &'static str,
    resource: String,
    keys: Vec<(&'static str, Vec<&'static str>)>,
    identity: Vec<PolicyDocument>,
    resource_policy: Option<PolicyDocument>,
    boundary: Option<PolicyDocument>,
    session: Option<Vec<PolicyDocument>>,
    want: Want,
}

fn case(name: &'static str, action: &'static str, resource: &str, identity: Vec<PolicyDocument>, want: Want) -> Case {
    Case {
        name,
        principal: user("Bob"),
        action,
        resource: resource.to_owned(),
        keys: Vec::new(),
        identity,
        resource_policy: None,
        boundary: None,
        session: None,
        want,
    }
}

impl Case {
    fn keys(mut self, keys: &[(&'static str, &[&'static str])]) -> Self {
        self.keys = keys.iter().map(|(k, v)| (*k, v.to_vec())).collect();
        self
    }
    fn by(mut self, p: Principal) -> Self {
        self.principal = p;
        self
    }
    fn resource_policy(mut self, d: PolicyDocument) -> Self {
        self.resource_policy = Some(d);
        self
    }
    fn boundary(mut self, d: PolicyDocument) -> Self {
        self.boundary = Some(d);
        self
    }
    fn session(mut self, d: Vec<PolicyDocument>) -> Self {
        self.session = Some(d);
        self
    }
    fn run(&self) -> Decision {
        let mut ctx =
            RequestContext::new(self.principal.clone(), Action::parse(self.action).unwrap(), self.resource.clone());
        for (k, v) in &self.keys {
            ctx.set_all(k, v.iter().map(|s| s.to_string()).collect());
        }
        let policies = Policies {
            identity: &self.identity,
            resource: self.resource_policy.as_ref(),
            boundary: self.boundary.as_ref(),
            session: self.session.as_deref(),
        };
        evaluate(&policies, &ctx)
    }
}

use Want::{Allow, Deny, Implicit};
const NO_ID: Want = Implicit(DenyReason::NoIdentityAllow);

fn allow(action: &str, resource: &str) -> String {
    format!(r#"{{"Effect":"Allow","Action":"{action}","Resource":"{resource}"}}"#)
}

fn cond(effect: &str, action: &str, condition: &str) -> PolicyDocument {
    id(&format!(r#"{{"Effect":"{effect}","Action":"{action}","Resource":"*","Condition":{condition}}}"#))
}

fn cases() -> Vec<Case> {
    let fn_v1 = format!("{FN}:1");
    vec![
        // --- Policy evaluation logic: deny by default, allow, explicit deny wins -----------------------
        case("no policies: implicit deny", "lambda:InvokeFunction", FN, vec![], NO_ID),
        case("allow by action and resource", "lambda:InvokeFunction", FN, vec![id(&allow("lambda:InvokeFunction", FN))], Allow),
        case("allow for another resource does not apply", "lambda:InvokeFunction", &fn_v1, vec![id(&allow("lambda:InvokeFunction", FN))], NO_ID),
        case("action matching is case-insensitive", "lambda:invokefunction", FN, vec![id(&allow("LAMBDA:InvokeFunction", "*"))], Allow),
        case("resource matching is case-sensitive", "lambda:InvokeFunction", &FN.replace("my-function", "My-Function"), vec![id(&allow("lambda:InvokeFunction", FN))], NO_ID),
        case("action wildcard", "lambda:GetFunctionConfiguration", FN, vec![id(&allow("lambda:Get*", "*"))], Allow),
        case("action ? wildcard", "lambda:GetAlias", FN, vec![id(&allow("lambda:GetA?ias", "*"))], Allow),
        case("wildcard in the service prefix", "lambda:InvokeFunction", FN, vec![id(&allow("lamb?a*:Invoke*", "*"))], Allow),
        case("service wildcard does not cross services", "sqs:SendMessage", FN, vec![id(&allow("lambda:*", "*"))], NO_ID),
        case("resource wildcard over qualifiers", "lambda:InvokeFunction", &fn_v1, vec![id(&allow("lambda:InvokeFunction", &format!("{FN}:*")))], Allow),
        case("explicit deny beats allow", "lambda:DeleteFunction", FN, vec![id(&format!(r#"{},{{"Effect":"Deny","Action":"lambda:Delete*","Resource":"*"}}"#, allow("*", "*")))], Deny),
        case("explicit deny in another attached policy wins", "lambda:DeleteFunction", FN, vec![id(&allow("*", "*")), id(r#"{"Effect":"Deny","Action":"*","Resource":"*"}"#)], Deny),
        case("unknown actions are accepted and simply never match", "lambda:InvokeFunction", FN, vec![id(&allow("lambda:NoSuchAction", "*"))], NO_ID),
        case("lone Statement object", "s3:ListBucket", BUCKET, vec![doc(PolicyKind::Identity, &format!(r#"{{"Version":"2012-10-17","Statement":{}}}"#, allow("s3:ListBucket", BUCKET)))], Allow),
        case("multiple actions and resources", "s3:GetObject", &format!("{BUCKET}/a.txt"), vec![id(&format!(r#"{{"Effect":"Allow","Action":["s3:ListBucket","s3:GetObject"],"Resource":["{BUCKET}","{BUCKET}/*"]}}"#))], Allow),
        // --- NotAction / NotResource -------------------------------------------------------------------
        case("NotAction allow: everything but IAM", "lambda:DeleteFunction", FN, vec![id(r#"{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}"#)], Allow),
        case("NotAction allow does not grant the excluded action", "iam:CreateUser", "arn:aws:iam::111122223333:user/x", vec![id(r#"{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}"#)], NO_ID),
        case("NotAction with a literal name start excludes it", "lambda:DeleteFunction", FN, vec![id(r#"{"Effect":"Allow","NotAction":["lambda:Delete*","lambda:Update*"],"Resource":"*"}"#)], NO_ID),
        case("NotAction with a literal name start allows others", "lambda:InvokeFunction", FN, vec![id(r#"{"Effect":"Allow","NotAction":["lambda:Delete*","lambda:Update*"],"Resource":"*"}"#)], Allow),
        case("NotAction deny: deny all but listed without MFA", "s3:GetObject", BUCKET, vec![id(&allow("*", "*")), id(r#"{"Effect":"Deny","NotAction":["iam:ListUsers","sts:GetSessionToken"],"Resource":"*","Condition":{"BoolIfExists":{"aws:MultiFactorAuthPresent":"false"}}}"#)], Deny),
        case("NotAction deny leaves the listed actions alone", "iam:ListUsers", "*", vec![id(&allow("*", "*")), id(r#"{"Effect":"Deny","NotAction":["iam:ListUsers","sts:GetSessionToken"],"Resource":"*","Condition":{"BoolIfExists":{"aws:MultiFactorAuthPresent":"false"}}}"#)], Allow),
        case("NotAction deny passes with MFA", "s3:GetObject", BUCKET, vec![id(&allow("*", "*")), id(r#"{"Effect":"Deny","NotAction":"iam:*","Resource":"*","Condition":{"BoolIfExists":{"aws:MultiFactorAuthPresent":"false"}}}"#)], Allow).keys(&[("aws:MultiFactorAuthPresent", &["true"])]),
        case("NotResource deny outside one bucket", "s3:PutObject", "arn:aws:s3:::other/x", vec![id(&allow("s3:*", "*")), id(&format!(r#"{{"Effect":"Deny","Action":"s3:*","NotResource":["{BUCKET}","{BUCKET}/*"]}}"#))], Deny),
        case("NotResource deny spares the bucket", "s3:PutObject", &format!("{BUCKET}/x"), vec![id(&allow("s3:*", "*")), id(&format!(r#"{{"Effect":"Deny","Action":"s3:*","NotResource":["{BUCKET}","{BUCKET}/*"]}}"#))], Allow),
        // --- String conditions ---------------------------------------------------------------------------
        case("StringEquals on a tag", "ec2:StartInstances", "*", vec![cond("Allow", "ec2:StartInstances", r#"{"StringEquals":{"aws:PrincipalTag/job-category":"iamuser-admin"}}"#)], Allow).keys(&[("aws:PrincipalTag/job-category", &["iamuser-admin"])]),
        case("StringEquals is case-sensitive in values", "ec2:StartInstances", "*", vec![cond("Allow", "ec2:StartInstances", r#"{"StringEquals":{"aws:PrincipalTag/job-category":"iamuser-admin"}}"#)], NO_ID).keys(&[("aws:PrincipalTag/job-category", &["IAMUSER-ADMIN"])]),
        case("condition keys are case-insensitive", "ec2:StartInstances", "*", vec![cond("Allow", "ec2:StartInstances", r#"{"StringEquals":{"AWS:PRINCIPALTAG/JOB-CATEGORY":"a"}}"#)], Allow).keys(&[("aws:PrincipalTag/job-category", &["a"])]),
        case("StringEqualsIgnoreCase", "ec2:StartInstances", "*", vec![cond("Allow", "ec2:StartInstances", r#"{"StringEqualsIgnoreCase":{"aws:PrincipalTag/team":"Blue"}}"#)], Allow).keys(&[("aws:PrincipalTag/team", &["BLUE"])]),
        case("values of one key are OR'd", "s3:GetObject", "*", vec![cond("Allow", "s3:GetObject", r#"{"StringEquals":{"aws:PrincipalTag/dept":["HR","Finance"]}}"#)], Allow).keys(&[("aws:PrincipalTag/dept", &["Finance"])]),
        case("keys are AND'd", "s3:GetObject", "*", vec![cond("Allow", "s3:GetObject", r#"{"StringEquals":{"aws:PrincipalTag/dept":"HR","aws:PrincipalTag/level":"2"}}"#)], NO_ID).keys(&[("aws:PrincipalTag/dept", &["HR"]), ("aws:PrincipalTag/level", &["3"])]),
        case("operators are AND'd", "s3:GetObject", "*", vec![cond("Allow", "s3:GetObject", r#"{"StringEquals":{"aws:PrincipalTag/dept":"HR"},"Bool":{"aws:SecureTransport":"true"}}"#)], Allow).keys(&[("aws:PrincipalTag/dept", &["HR"]), ("aws:SecureTransport", &["true"])]),
        case("missing key: positive operator is false", "s3:GetObject", "*", vec![cond("Allow", "s3:GetObject", r#"{"StringEquals":{"aws:PrincipalTag/dept":"HR"}}"#)], NO_ID),
        case("missing key: negated operator is true", "s3:GetObject", "*", vec![cond("Allow", "s3:GetObject", r#"{"StringNotEquals":{"aws:PrincipalTag/dept":"HR"}}"#)], Allow),
        case("StringNotEquals: none of the values may match", "s3:GetObject", "*", vec![cond("Allow", "s3:GetObject", r#"{"StringNotEquals":{"aws:PrincipalTag/dept":["HR","Finance"]}}"#)], NO_ID).keys(&[("aws:PrincipalTag/dept", &["Finance"])]),
        case("StringNotEquals holds for an unlisted value", "s3:GetObject", "*", vec![cond("Allow", "s3:GetObject", r#"{"StringNotEquals":{"aws:PrincipalTag/dept":["HR","Finance"]}}"#)], Allow).keys(&[("aws:PrincipalTag/dept", &["IT"])]),
        case("StringLike with wildcards", "s3:ListBucket", BUCKET, vec![id(&format!(r#"{{"Effect":"Allow","Action":"s3:ListBucket","Resource":"{BUCKET}","Condition":{{"StringLike":{{"s3:prefix":["home/*","home/${{aws:username}}/*"]}}}}}}"#))], Allow).keys(&[("s3:prefix", &["home/Bob/photos"])]),
        case("StringNotLike", "s3:ListBucket", "*", vec![cond("Allow", "s3:ListBucket", r#"{"StringNotLike":{"s3:prefix":"private/*"}}"#)], NO_ID).keys(&[("s3:prefix", &["private/x"])]),
        case("IfExists: missing key passes", "ec2:RunInstances", "*", vec![cond("Allow", "ec2:RunInstances", r#"{"StringLikeIfExists":{"ec2:InstanceType":["t1.*","t2.*","m3.*"]}}"#)], Allow),
        case("IfExists: present key is checked", "ec2:RunInstances", "*", vec![cond("Allow", "ec2:RunInstances", r#"{"StringLikeIfExists":{"ec2:InstanceType":["t1.*","t2.*","m3.*"]}}"#)], NO_ID).keys(&[("ec2:InstanceType", &["c5.large"])]),
        // --- Numeric, Date, Bool, Binary, IP, Null ------------------------------------------------------------
        case("NumericLessThanEquals", "s3:ListBucket", "*", vec![cond("Allow", "s3:ListBucket", r#"{"NumericLessThanEquals":{"s3:max-keys":"10"}}"#)], Allow).keys(&[("s3:max-keys", &["10"])]),
        case("NumericLessThanEquals refuses more", "s3:ListBucket", "*", vec![cond("Allow", "s3:ListBucket", r#"{"NumericLessThanEquals":{"s3:max-keys":"10"}}"#)], NO_ID).keys(&[("s3:max-keys", &["11"])]),
        case("NumericGreaterThan with a JSON number", "s3:ListBucket", "*", vec![cond("Allow", "s3:ListBucket", r#"{"NumericGreaterThan":{"s3:max-keys":2.5}}"#)], Allow).keys(&[("s3:max-keys", &["3"])]),
        case("Numeric: a non-number never matches", "s3:ListBucket", "*", vec![cond("Allow", "s3:ListBucket", r#"{"NumericEquals":{"s3:max-keys":"10"}}"#)], NO_ID).keys(&[("s3:max-keys", &["ten"])]),
        case("DateLessThan before the date", "lambda:InvokeFunction", "*", vec![cond("Allow", "lambda:*", r#"{"DateLessThan":{"aws:CurrentTime":"2020-04-01T00:00:00Z"}}"#)], Allow).keys(&[("aws:CurrentTime", &["2020-03-31T23:59:59Z"])]),
        case("DateLessThan after the date", "lambda:InvokeFunction", "*", vec![cond("Allow", "lambda:*", r#"{"DateLessThan":{"aws:CurrentTime":"2020-04-01T00:00:00Z"}}"#)], NO_ID).keys(&[("aws:CurrentTime", &["2020-04-01T00:00:01Z"])]),
        case("DateGreaterThan with a bare date and an offset", "lambda:InvokeFunction", "*", vec![cond("Allow", "lambda:*", r#"{"DateGreaterThan":{"aws:CurrentTime":"2020-01-01"}}"#)], Allow).keys(&[("aws:CurrentTime", &["2020-01-01T00:30:00+00:00"])]),
        case("Date against epoch seconds", "lambda:InvokeFunction", "*", vec![cond("Allow", "lambda:*", r#"{"DateGreaterThanEquals":{"aws:EpochTime":"1577836800"}}"#)], Allow).keys(&[("aws:EpochTime", &["1577836800"])]),
        case("Bool true", "s3:GetObject", "*", vec![cond("Allow", "s3:GetObject", r#"{"Bool":{"aws:SecureTransport":"true"}}"#)], Allow).keys(&[("aws:SecureTransport", &["true"])]),
        case("Bool deny on insecure transport", "s3:GetObject", "*", vec![id(&allow("s3:*", "*")), cond("Deny", "s3:*", r#"{"Bool":{"aws:SecureTransport":false}}"#)], Deny).keys(&[("aws:SecureTransport", &["false"])]),
        case("BinaryEquals", "s3:GetObject", "*", vec![cond("Allow", "s3:GetObject", r#"{"BinaryEquals":{"k":"QmluYXJ5VmFsdWVJbkJhc2U2NA=="}}"#)], Allow).keys(&[("k", &["QmluYXJ5VmFsdWVJbkJhc2U2NA=="])]),
        case("IpAddress in CIDR", "s3:GetObject", "*", vec![cond("Allow", "s3:GetObject", r#"{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#)], Allow).keys(&[("aws:SourceIp", &["203.0.113.7"])]),
        case("IpAddress outside", "s3:GetObject", "*", vec![cond("Allow", "s3:GetObject", r#"{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#)], NO_ID).keys(&[("aws:SourceIp", &["198.51.100.1"])]),
        case("IpAddress IPv6 and a bare address", "s3:GetObject", "*", vec![cond("Allow", "s3:GetObject", r#"{"IpAddress":{"aws:SourceIp":["2001:DB8:1234:5678::/64","198.51.100.1"]}}"#)], Allow).keys(&[("aws:SourceIp", &["2001:db8:1234:5678::10"])]),
        case("NotIpAddress deny from outside ranges", "ec2:StartInstances", "*", vec![id(&allow("*", "*")), cond("Deny", "*", r#"{"NotIpAddress":{"aws:SourceIp":["192.0.2.0/24","203.0.113.0/24"]}}"#)], Deny).keys(&[("aws:SourceIp", &["198.51.100.9"])]),
        case("NotIpAddress spares the ranges", "ec2:StartInstances", "*", vec![id(&allow("*", "*")), cond("Deny", "*", r#"{"NotIpAddress":{"aws:SourceIp":["192.0.2.0/24","203.0.113.0/24"]}}"#)], Allow).keys(&[("aws:SourceIp", &["192.0.2.33"])]),
        case("Null true: key absent", "ec2:RunInstances", "*", vec![cond("Allow", "ec2:RunInstances", r#"{"Null":{"aws:TokenIssueTime":"true"}}"#)], Allow),
        case("Null true: key present", "ec2:RunInstances", "*", vec![cond("Allow", "ec2:RunInstances", r#"{"Null":{"aws:TokenIssueTime":"true"}}"#)], NO_ID).keys(&[("aws:TokenIssueTime", &["2020-01-01T00:00:00Z"])]),
        case("Null false: tag must be present", "ec2:CreateTags", "*", vec![cond("Allow", "ec2:CreateTags", r#"{"Null":{"aws:RequestTag/team":"false"}}"#)], Allow).keys(&[("aws:RequestTag/team", &["x"])]),
        case("ArnLike with wildcards per part", "sqs:SendMessage", "*", vec![cond("Allow", "sqs:SendMessage", r#"{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:111122223333:topic-*"}}"#)], Allow).keys(&[("aws:SourceArn", &["arn:aws:sns:us-west-2:111122223333:topic-a"])]),
        case("ArnEquals: other account", "sqs:SendMessage", "*", vec![cond("Allow", "sqs:SendMessage", r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:sns:*:111122223333:topic"}}"#)], NO_ID).keys(&[("aws:SourceArn", &["arn:aws:sns:us-west-2:444455556666:topic"])]),
        case("ArnNotLike", "sqs:SendMessage", "*", vec![cond("Allow", "sqs:SendMessage", r#"{"ArnNotLike":{"aws:SourceArn":"arn:aws:sns:*:*:blocked"}}"#)], Allow).keys(&[("aws:SourceArn", &["arn:aws:sns:us-east-1:111122223333:fine"])]),
        case("Arn: a value that is no ARN matches nothing", "sqs:SendMessage", "*", vec![cond("Allow", "sqs:SendMessage", r#"{"ArnLike":{"aws:SourceArn":"*"}}"#)], NO_ID).keys(&[("aws:SourceArn", &["not-an-arn"])]),
        // --- Multivalued keys: ForAnyValue / ForAllValues -------------------------------------------------
        case("ForAllValues: every tag key allowed", "ec2:CreateTags", "*", vec![cond("Allow", "ec2:CreateTags", r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["environment","cost-center"]}}"#)], Allow).keys(&[("aws:TagKeys", &["environment"])]),
        case("ForAllValues: one tag key not allowed", "ec2:CreateTags", "*", vec![cond("Allow", "ec2:CreateTags", r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["environment","cost-center"]}}"#)], NO_ID).keys(&[("aws:TagKeys", &["environment", "owner"])]),
        case("ForAllValues: missing key is true", "ec2:CreateTags", "*", vec![cond("Allow", "ec2:CreateTags", r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["environment"]}}"#)], Allow),
        case("ForAnyValue: one matches", "ec2:CreateTags", "*", vec![cond("Allow", "ec2:CreateTags", r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["environment"]}}"#)], Allow).keys(&[("aws:TagKeys", &["owner", "environment"])]),
        case("ForAnyValue: missing key is false", "ec2:CreateTags", "*", vec![cond("Allow", "ec2:CreateTags", r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["environment"]}}"#)], NO_ID),
        case("ForAnyValue:StringNotEquals deny when a key is outside the list", "ec2:CreateTags", "*", vec![id(&allow("*", "*")), cond("Deny", "ec2:CreateTags", r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["environment","cost-center"]}}"#)], Deny).keys(&[("aws:TagKeys", &["environment", "owner"])]),
        case("ForAllValues:StringLike", "dynamodb:GetItem", "*", vec![cond("Allow", "dynamodb:GetItem", r#"{"ForAllValues:StringLike":{"dynamodb:Attributes":["Id","Name*"]}}"#)], Allow).keys(&[("dynamodb:Attributes", &["Id", "NameFirst"])]),
        // --- Policy variables ----------------------------------------------------------------------------------
        case("${aws:username} in Resource", "s3:GetObject", &format!("{BUCKET}/home/Bob/a"), vec![id(&allow("s3:GetObject", &format!("{BUCKET}/home/${{aws:username}}/*")))], Allow),
        case("${aws:username} is someone else's home", "s3:GetObject", &format!("{BUCKET}/home/Alice/a"), vec![id(&allow("s3:GetObject", &format!("{BUCKET}/home/${{aws:username}}/*")))], NO_ID),
        case("${aws:userid} for a role session", "s3:GetObject", &format!("{BUCKET}/AROAROLE:app/x"), vec![id(&allow("s3:GetObject", &format!("{BUCKET}/${{aws:userid}}/*")))], Allow).by(session("r", "app")),
        case("unresolved variable never matches", "s3:GetObject", &format!("{BUCKET}/home//a"), vec![id(&allow("s3:GetObject", &format!("{BUCKET}/home/${{aws:username}}/*")))], NO_ID).by(session("r", "app")),
        case("variables are literal under 2008-10-17", "s3:GetObject", &format!("{BUCKET}/${{aws:username}}"), vec![doc(PolicyKind::Identity, &format!(r#"{{"Version":"2008-10-17","Statement":[{}]}}"#, allow("s3:GetObject", &format!("{BUCKET}/${{aws:username}}"))))], Allow),
        case("${*} escapes a literal star", "s3:GetObject", &format!("{BUCKET}/a*b"), vec![id(&allow("s3:GetObject", &format!("{BUCKET}/a${{*}}b")))], Allow),
        case("${*} star is not a wildcard", "s3:GetObject", &format!("{BUCKET}/aXb"), vec![id(&allow("s3:GetObject", &format!("{BUCKET}/a${{*}}b")))], NO_ID),
        case("variable in a condition value", "iam:ChangePassword", "*", vec![cond("Allow", "iam:*", r#"{"StringEquals":{"aws:PrincipalTag/owner":"${aws:username}"}}"#)], Allow).keys(&[("aws:PrincipalTag/owner", &["Bob"])]),
        // --- Resource-based policies, Principal, same and cross account ---------------------------------------
        case("resource policy naming the user grants alone", "lambda:InvokeFunction", FN, vec![], Allow).resource_policy(res(&format!(r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCT}:user/Bob"}},"Action":"lambda:InvokeFunction","Resource":"{FN}"}}"#))),
        case("resource policy naming the account root delegates to identity policies", "lambda:InvokeFunction", FN, vec![], NO_ID).resource_policy(res(&format!(r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCT}:root"}},"Action":"lambda:InvokeFunction","Resource":"{FN}"}}"#))),
        case("account id principal delegates too; identity allow grants", "lambda:InvokeFunction", FN, vec![id(&allow("lambda:InvokeFunction", "*"))], Allow).resource_policy(res(&format!(r#"{{"Effect":"Allow","Principal":{{"AWS":"{ACCT}"}},"Action":"lambda:InvokeFunction","Resource":"{FN}"}}"#))),
        case("the account principal is the root user itself", "lambda:InvokeFunction", FN, vec![], Allow).by(root()).resource_policy(res(&format!(r#"{{"Effect":"Allow","Principal":{{"AWS":"{ACCT}"}},"Action":"lambda:InvokeFunction","Resource":"{FN}"}}"#))),
        case("Principal * grants", "lambda:InvokeFunction", FN, vec![], Allow).resource_policy(res(&format!(r#"{{"Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction","Resource":"{FN}"}}"#))),
        case("service principal", "lambda:InvokeFunction", FN, vec![], Allow).by(service("s3.amazonaws.com")).keys(&[("aws:SourceAccount", &[ACCT])]).resource_policy(res(&format!(r#"{{"Effect":"Allow","Principal":{{"Service":"s3.amazonaws.com"}},"Action":"lambda:InvokeFunction","Resource":"{FN}","Condition":{{"StringEquals":{{"AWS:SourceAccount":"{ACCT}"}}}}}}"#))),
        case("another service is not named", "lambda:InvokeFunction", FN, vec![], Implicit(DenyReason::NoResourceAllow)).by(service("sns.amazonaws.com")).resource_policy(res(&format!(r#"{{"Effect":"Allow","Principal":{{"Service":"s3.amazonaws.com"}},"Action":"lambda:InvokeFunction","Resource":"{FN}"}}"#))),
        case("resource policy deny for the principal wins", "lambda:InvokeFunction", FN, vec![id(&allow("*", "*"))], Deny).resource_policy(res(&format!(r#"{{"Effect":"Deny","Principal":{{"AWS":"arn:aws:iam::{ACCT}:user/Bob"}},"Action":"lambda:*","Resource":"{FN}"}}"#))),
        case("resource policy deny for others does not apply", "lambda:InvokeFunction", FN, vec![id(&allow("*", "*"))], Allow).resource_policy(res(&format!(r#"{{"Effect":"Deny","Principal":{{"AWS":"arn:aws:iam::{ACCT}:user/Alice"}},"Action":"lambda:*","Resource":"{FN}"}}"#))),
        case("cross account: identity allow alone is not enough", "lambda:InvokeFunction", FN, vec![id(&allow("lambda:InvokeFunction", "*"))], Implicit(DenyReason::NoResourceAllow)).by(other_user("Carol")),
        case("cross account: resource allow alone is not enough", "lambda:InvokeFunction", FN, vec![], NO_ID).by(other_user("Carol")).resource_policy(res(&format!(r#"{{"Effect":"Allow","Principal":{{"AWS":"{OTHER}"}},"Action":"lambda:InvokeFunction","Resource":"{FN}"}}"#))),
        case("cross account: both allow", "lambda:InvokeFunction", FN, vec![id(&allow("lambda:InvokeFunction", "*"))], Allow).by(other_user("Carol")).resource_policy(res(&format!(r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{OTHER}:root"}},"Action":"lambda:InvokeFunction","Resource":"{FN}"}}"#))),
        case("role ARN principal matches its sessions", "lambda:InvokeFunction", FN, vec![], Allow).by(session("deployer", "ci")).resource_policy(res(&format!(r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCT}:role/deployer"}},"Action":"lambda:InvokeFunction","Resource":"{FN}"}}"#))),
        case("session ARN principal matches only that session", "lambda:InvokeFunction", FN, vec![], NO_ID).by(session("deployer", "other")).resource_policy(res(&format!(r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:sts::{ACCT}:assumed-role/deployer/ci"}},"Action":"lambda:InvokeFunction","Resource":"{FN}"}}"#))),
        // --- NotPrincipal ---------------------------------------------------------------------------------------
        case("NotPrincipal deny applies to everyone else", "s3:GetObject", BUCKET, vec![id(&allow("*", "*"))], Deny).by(user("Alice")).resource_policy(res(&format!(r#"{{"Effect":"Deny","NotPrincipal":{{"AWS":["arn:aws:iam::{ACCT}:user/Bob","arn:aws:iam::{ACCT}:root"]}},"Action":"s3:*","Resource":"{BUCKET}"}}"#))),
        case("NotPrincipal deny spares the user listed with its account", "s3:GetObject", BUCKET, vec![id(&allow("*", "*"))], Allow).resource_policy(res(&format!(r#"{{"Effect":"Deny","NotPrincipal":{{"AWS":["arn:aws:iam::{ACCT}:user/Bob","arn:aws:iam::{ACCT}:root"]}},"Action":"s3:*","Resource":"{BUCKET}"}}"#))),
        case("NotPrincipal without the account still denies the user", "s3:GetObject", BUCKET, vec![id(&allow("*", "*"))], Deny).resource_policy(res(&format!(r#"{{"Effect":"Deny","NotPrincipal":{{"AWS":"arn:aws:iam::{ACCT}:user/Bob"}},"Action":"s3:*","Resource":"{BUCKET}"}}"#))),
        case("NotPrincipal for a role session needs role, session and account", "s3:GetObject", BUCKET, vec![id(&allow("*", "*"))], Allow).by(session("cross", "s")).resource_policy(res(&format!(r#"{{"Effect":"Deny","NotPrincipal":{{"AWS":["arn:aws:iam::{ACCT}:role/cross","arn:aws:sts::{ACCT}:assumed-role/cross/s","arn:aws:iam::{ACCT}:root"]}},"Action":"s3:*","Resource":"{BUCKET}"}}"#))),
        case("NotPrincipal listing only the role still denies its session", "s3:GetObject", BUCKET, vec![id(&allow("*", "*"))], Deny).by(session("cross", "s")).resource_policy(res(&format!(r#"{{"Effect":"Deny","NotPrincipal":{{"AWS":["arn:aws:iam::{ACCT}:role/cross","arn:aws:iam::{ACCT}:root"]}},"Action":"s3:*","Resource":"{BUCKET}"}}"#))),
        // --- Permissions boundaries and session policies ----------------------------------------------------------
        case("boundary limits identity allows", "iam:CreateUser", "*", vec![id(&allow("iam:*", "*"))], Implicit(DenyReason::NoBoundaryAllow)).boundary(id(&allow("s3:*", "*"))),
        case("boundary and identity both allow", "s3:GetObject", "*", vec![id(&allow("s3:GetObject", "*"))], Allow).boundary(id(&allow("s3:*", "*"))),
        case("boundary alone grants nothing", "s3:GetObject", "*", vec![], NO_ID).boundary(id(&allow("s3:*", "*"))),
        case("boundary explicit deny", "s3:DeleteObject", "*", vec![id(&allow("*", "*"))], Deny).boundary(id(&format!(r#"{},{{"Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"}}"#, allow("*", "*")))),
        case("resource policy naming the user is not limited by the boundary", "lambda:InvokeFunction", FN, vec![], Allow).boundary(id(&allow("s3:*", "*"))).resource_policy(res(&format!(r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCT}:user/Bob"}},"Action":"lambda:InvokeFunction","Resource":"{FN}"}}"#))),
        case("session policy intersects", "s3:PutObject", "*", vec![id(&allow("s3:*", "*"))], Implicit(DenyReason::NoSessionAllow)).by(session("r", "s")).session(vec![id(&allow("s3:GetObject", "*"))]),
        case("session policy and role allow", "s3:GetObject", "*", vec![id(&allow("s3:*", "*"))], Allow).by(session("r", "s")).session(vec![id(&allow("s3:Get*", "*"))]),
        case("session policies are a union", "s3:PutObject", "*", vec![id(&allow("s3:*", "*"))], Allow).by(session("r", "s")).session(vec![id(&allow("s3:GetObject", "*")), id(&allow("s3:PutObject", "*"))]),
        case("session policy alone grants nothing", "s3:GetObject", "*", vec![], NO_ID).by(session("r", "s")).session(vec![id(&allow("s3:*", "*"))]),
        case("resource policy naming the role is limited by the session policy", "lambda:InvokeFunction", FN, vec![], Implicit(DenyReason::NoIdentityAllow)).by(session("r", "s")).session(vec![id(&allow("s3:*", "*"))]).resource_policy(res(&format!(r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCT}:role/r"}},"Action":"lambda:InvokeFunction","Resource":"{FN}"}}"#))),
        case("resource policy naming the session is not limited by the session policy", "lambda:InvokeFunction", FN, vec![], Allow).by(session("r", "s")).session(vec![id(&allow("s3:*", "*"))]).resource_policy(res(&format!(r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:sts::{ACCT}:assumed-role/r/s"}},"Action":"lambda:InvokeFunction","Resource":"{FN}"}}"#))),
        // --- Trust policies ------------------------------------------------------------------------------------------
        case("trust policy lets Lambda assume the role", "sts:AssumeRole", "arn:aws:iam::111122223333:role/exec", vec![], Allow).by(service("lambda.amazonaws.com")).resource_policy(doc(PolicyKind::Trust, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)),
        case("trust policy naming the account needs the caller's sts:AssumeRole allow", "sts:AssumeRole", "arn:aws:iam::111122223333:role/exec", vec![], NO_ID).resource_policy(doc(PolicyKind::Trust, &format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCT}:root"}},"Action":"sts:AssumeRole"}}]}}"#))),
        case("trust policy naming the account with an identity allow", "sts:AssumeRole", "arn:aws:iam::111122223333:role/exec", vec![id(&allow("sts:AssumeRole", "arn:aws:iam::111122223333:role/*"))], Allow).resource_policy(doc(PolicyKind::Trust, &format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCT}:root"}},"Action":"sts:AssumeRole"}}]}}"#))),
    ]
}

#[test]
fn decisions_follow_aws_evaluation_logic() {
    let cases = cases();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let got = c.run();
        let got_want = match got {
            Decision::Allow(_) => Want::Allow,
            Decision::ExplicitDeny(_) => Want::Deny,
            Decision::ImplicitDeny(r) => Want::Implicit(r),
        };
        if got_want != c.want {
            failures.push(format!("{}: want {:?}, got {got:?}", c.name, c.want));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn decisions_name_their_statement_and_aws_message() {
    let policies = [
        id(&allow("lambda:Get*", "*")),
        id(r#"{"Sid":"NoDelete","Effect":"Deny","Action":"lambda:DeleteFunction","Resource":"*"}"#),
    ];
    let p = Policies { identity: &policies, ..Default::default() };
    let ctx = |action: &'static str| RequestContext::new(user("Bob"), Action::from_static(action), FN);
    let get = evaluate(&p, &ctx("lambda:GetFunction"));
    assert_eq!(get, Decision::Allow(StatementRef { source: PolicySource::Identity(0), statement: 0 }));
    assert_eq!(get.denial_message(&ctx("lambda:GetFunction")), None);
    let delete = evaluate(&p, &ctx("lambda:DeleteFunction"));
    assert_eq!(delete, Decision::ExplicitDeny(StatementRef { source: PolicySource::Identity(1), statement: 0 }));
    assert_eq!(policies[1].statement(0).unwrap().sid, Some("NoDelete"));
    assert_eq!(
        delete.denial_message(&ctx("lambda:DeleteFunction")).unwrap(),
        format!(
            "User: arn:aws:iam::{ACCT}:user/Bob is not authorized to perform: lambda:DeleteFunction on resource: {FN} with an explicit deny in an identity-based policy"
        )
    );
    let update = evaluate(&p, &ctx("lambda:UpdateAlias"));
    assert_eq!(
        update.denial_message(&ctx("lambda:UpdateAlias")).unwrap(),
        format!(
            "User: arn:aws:iam::{ACCT}:user/Bob is not authorized to perform: lambda:UpdateAlias on resource: {FN} because no identity-based policy allows the lambda:UpdateAlias action"
        )
    );
}

#[test]
fn denials_of_services_and_anonymous_callers_name_them() {
    let ctx = RequestContext::new(service("sns.amazonaws.com"), Action::from_static("lambda:InvokeFunction"), FN);
    let d = evaluate(&Policies::default(), &ctx);
    assert_eq!(d, Decision::ImplicitDeny(DenyReason::NoResourceAllow));
    assert_eq!(
        d.denial_message(&ctx).unwrap(),
        format!(
            "User: sns.amazonaws.com is not authorized to perform: lambda:InvokeFunction on resource: {FN} because no resource-based policy allows the lambda:InvokeFunction action"
        )
    );
    let anonymous = Principal {
        arn: String::new(),
        account: String::new(),
        user_id: String::new(),
        kind: PrincipalKind::Anonymous,
    };
    let ctx = RequestContext::new(anonymous, Action::from_static("lambda:InvokeFunction"), FN);
    let public =
        res(&format!(r#"{{"Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction","Resource":"{FN}"}}"#));
    let named = res(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"{ACCT}"}},"Action":"lambda:InvokeFunction","Resource":"{FN}"}}"#
    ));
    assert!(evaluate(&Policies { resource: Some(&public), ..Default::default() }, &ctx).is_allowed());
    let d = evaluate(&Policies { resource: Some(&named), ..Default::default() }, &ctx);
    assert!(d.denial_message(&ctx).unwrap().starts_with("User: anonymous is not authorized"));
}

#[test]
fn malformed_documents_get_aws_messages() {
    use PolicyKind::*;
    let s = |body: &str| format!(r#"{{"Version":"2012-10-17","Statement":[{body}]}}"#);
    let cases: Vec<(PolicyKind, String, &str)> = vec![
        (Identity, "not json".into(), "Syntax errors in policy."),
        (Identity, "[]".into(), "Syntax errors in policy."),
        (Identity, r#"{"Version":"2012-10-17"}"#.into(), "Missing required field Statement"),
        (
            Identity,
            r#"{"Version":"2012-10-18","Statement":[]}"#.into(),
            "The policy must contain a valid version string",
        ),
        (Identity, r#"{"Version":"2012-10-17","Statement":[],"Foo":1}"#.into(), "Unknown field Foo"),
        (Identity, s(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Bogus":1}"#), "Unknown field Bogus"),
        (Identity, s(r#"{"Action":"s3:*","Resource":"*"}"#), "Missing required field Effect"),
        (Identity, s(r#"{"Effect":"Permit","Action":"s3:*","Resource":"*"}"#), "Invalid effect: Permit"),
        (Identity, s(r#"{"Effect":"Allow","Resource":"*"}"#), "Missing required field Action"),
        (Identity, s(r#"{"Effect":"Allow","Action":"s3:*"}"#), "Missing required field Resource"),
        (
            Identity,
            s(r#"{"Effect":"Allow","Action":"s3:*","NotAction":"iam:*","Resource":"*"}"#),
            "Statement cannot contain both Action and NotAction",
        ),
        (
            Identity,
            s(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","NotResource":"*"}"#),
            "Statement cannot contain both Resource and NotResource",
        ),
        (
            Identity,
            s(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Principal":"*"}"#),
            "Policy document should not specify a principal.",
        ),
        (
            Session,
            s(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","NotPrincipal":{"AWS":"*"}}"#),
            "Policy document should not specify a principal.",
        ),
        (Resource, s(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"}"#), "Missing required field Principal"),
        (Trust, s(r#"{"Effect":"Allow","Action":"sts:AssumeRole"}"#), "Missing required field Principal"),
        (
            Trust,
            s(r#"{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"s3:GetObject"}"#),
            "AssumeRole policy may only specify STS AssumeRole actions.",
        ),
        (
            Trust,
            s(
                r#"{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole","Resource":"*"}"#,
            ),
            "Has prohibited field Resource",
        ),
        (
            Identity,
            s(r#"{"Effect":"Allow","Action":"GetObject","Resource":"*"}"#),
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
        ),
        (
            Identity,
            s(r#"{"Effect":"Allow","Action":"s3:*","Resource":"bucket"}"#),
            "Resource bucket must be in ARN format or \"*\".",
        ),
        (
            Resource,
            s(r#"{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"s3:*"}"#),
            "Invalid principal in policy: bob",
        ),
        (
            Resource,
            s(r#"{"Effect":"Allow","Principal":{"Robot":"x"},"Action":"s3:*"}"#),
            "Invalid principal in policy: x",
        ),
        (
            Identity,
            s(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEqualz":{"a":"b"}}}"#),
            "Invalid Condition type : StringEqualz",
        ),
        (
            Identity,
            s(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"NullIfExists":{"a":"true"}}}"#),
            "Invalid Condition type : NullIfExists",
        ),
        (
            Identity,
            s(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"NumericEquals":{"a":"ten"}}}"#),
            "Invalid value for condition NumericEquals with key a: ten",
        ),
        (
            Identity,
            s(
                r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"300.0.0.0/8"}}}"#,
            ),
            "Invalid value for condition IpAddress with key aws:SourceIp: 300.0.0.0/8",
        ),
        (
            Identity,
            s(
                r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"yesterday"}}}"#,
            ),
            "Invalid value for condition DateLessThan with key aws:CurrentTime: yesterday",
        ),
        (
            Identity,
            s(r#"{"Sid":"a-b","Effect":"Allow","Action":"s3:*","Resource":"*"}"#),
            "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*",
        ),
        (
            Identity,
            s(
                r#"{"Sid":"A","Effect":"Allow","Action":"s3:*","Resource":"*"},{"Sid":"A","Effect":"Deny","Action":"s3:*","Resource":"*"}"#,
            ),
            "Statement IDs (SID) in a single policy must be unique",
        ),
        (Identity, s(r#"{"Effect":"Allow","Action":[],"Resource":"*"}"#), "Policy statement must contain Action"),
    ];
    for (kind, text, message) in cases {
        match PolicyDocument::parse(kind, &text) {
            Ok(_) => panic!("accepted {kind:?}: {text}"),
            Err(e) => assert_eq!(e.to_string(), message, "{text}"),
        }
    }
    // Accepted as AWS accepts them: unknown actions, no Version, Sids with dashes in resource policies,
    // a missing Resource in a resource policy, deep but sane nesting.
    for (kind, text) in [
        (Identity, s(r#"{"Effect":"Allow","Action":"lambda:NoSuchThing","Resource":"*"}"#)),
        (Identity, r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#.to_owned()),
        (
            Resource,
            s(
                r#"{"Sid":"allow-s3-1","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction"}"#,
            ),
        ),
        (
            Trust,
            s(
                r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["sts:AssumeRole","sts:TagSession"]}"#,
            ),
        ),
    ] {
        PolicyDocument::parse(kind, &text).unwrap_or_else(|e| panic!("{e}: {text}"));
    }
    // Hostile sizes are refused without work proportional to their size beyond parsing.
    let many = vec![r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"}"#; STATEMENTS_HOSTILE].join(",");
    assert_eq!(PolicyDocument::parse(Identity, &s(&many)).unwrap_err(), PolicyError::TooLarge);
}

const STATEMENTS_HOSTILE: usize = 1_001;
