//! Why a policy document was refused. Every variant is AWS's `MalformedPolicyDocument` (HTTP 400 in
//! IAM's query protocol); the Display text is AWS's message for it.

/// A policy document AWS would refuse, with AWS's message as its Display text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Not JSON, not an object where one is required, or a value of the wrong JSON type.
    #[error("Syntax errors in policy.")]
    Syntax,
    /// `Version` is not `2012-10-17` or `2008-10-17`.
    #[error("The policy must contain a valid version string")]
    Version,
    /// A field AWS does not know, at the top level or in a statement.
    #[error("Unknown field {field}")]
    UnknownField { field: String },
    /// A required field is missing: `Statement`, `Effect`, one of `Action`/`NotAction`, one of
    /// `Resource`/`NotResource` (identity and session policies), `Principal` (resource and trust policies).
    #[error("Missing required field {field}")]
    MissingField { field: &'static str },
    /// Both of a mutually exclusive pair (`Action`/`NotAction`, `Resource`/`NotResource`,
    /// `Principal`/`NotPrincipal`).
    #[error("Statement cannot contain both {first} and {second}")]
    BothFields { first: &'static str, second: &'static str },
    /// `Effect` other than `Allow` or `Deny`.
    #[error("Invalid effect: {effect}")]
    Effect { effect: String },
    /// A field the document's kind may not have (`Resource` in a trust policy).
    #[error("Has prohibited field {field}")]
    ProhibitedField { field: &'static str },
    /// `Principal` or `NotPrincipal` in an identity-based or session policy.
    #[error("Policy document should not specify a principal.")]
    PrincipalNotAllowed,
    /// A trust policy statement with an action that is not an STS assume action (`sts:AssumeRole`,
    /// `sts:AssumeRoleWithSAML`, `sts:AssumeRoleWithWebIdentity`, `sts:TagSession`, `sts:SetSourceIdentity`, …).
    #[error("AssumeRole policy may only specify STS AssumeRole actions.")]
    TrustAction,
    /// An action that is not `*` and not `service:name` (the name may hold wildcards).
    #[error("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.")]
    ActionVendor,
    /// A resource that is not `*` and not an ARN (`arn:partition:service:region:account:resource`).
    #[error("Resource {resource} must be in ARN format or \"*\".")]
    ResourceFormat { resource: String },
    /// A principal AWS does not accept (not an account id, ARN, `*`, or a known principal type).
    #[error("Invalid principal in policy: {principal}")]
    Principal { principal: String },
    /// A condition operator AWS does not know, or a qualifier on one that does not take it.
    #[error("Invalid Condition type : {operator}")]
    ConditionOperator { operator: String },
    /// A condition value that does not parse for its operator (a number, a date, a CIDR, a bool).
    #[error("Invalid value for condition {operator} with key {key}: {value}")]
    ConditionValue { operator: String, key: String, value: String },
    /// Two statements with the same `Sid`.
    #[error("Statement IDs (SID) in a single policy must be unique")]
    DuplicateSid,
    /// A `Sid` with characters other than ASCII letters and digits (identity and session policies).
    #[error(
        "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*"
    )]
    SidFormat,
    /// A statement with no actions, or no resources, or no principals (an empty array).
    #[error("Policy statement must contain {field}")]
    EmptyField { field: &'static str },
    /// More than the engine's bound on statements, values or nesting (hostile input; far above
    /// anything AWS's size limits admit).
    #[error("Syntax errors in policy.")]
    TooLarge,
}

impl PolicyError {
    /// The AWS error code for every variant.
    pub const CODE: &'static str = "MalformedPolicyDocument";
}
