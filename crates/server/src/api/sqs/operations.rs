//! The SQS operations Nimbus serves (by `X-Amz-Target: AmazonSQS.<Operation>`): one row each, with
//! the IAM action and resource AWS's Service Authorization Reference gives it. `dispatch` matches on
//! this enum, so an operation is served only if it has a row here, and so it is always authorized.

use nimbus_model::policy::Action;

/// What an operation acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// No resource (`*`): ListQueues.
    Any,
    /// The queue the body's `QueueUrl` names.
    QueueUrl,
    /// The queue the body's `QueueName` names (CreateQueue, GetQueueUrl).
    QueueName,
}

macro_rules! operations {
    ($( $op:ident $action:literal $target:ident; )+) => {
        /// One variant per SQS operation Nimbus serves.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum SqsOperation { $($op),+ }

        impl SqsOperation {
            #[cfg(test)]
            pub const ALL: &'static [SqsOperation] = &[$(SqsOperation::$op),+];

            /// The operation named by `X-Amz-Target`'s suffix, if Nimbus serves it.
            pub fn parse(name: &str) -> Option<SqsOperation> {
                match name { $(stringify!($op) => Some(SqsOperation::$op),)+ _ => None }
            }

            #[cfg(test)]
            pub fn name(self) -> &'static str {
                match self { $(SqsOperation::$op => stringify!($op)),+ }
            }

            /// Its IAM action (the batch operations are authorized as their single forms, as on AWS).
            pub fn action(self) -> Action {
                match self { $(SqsOperation::$op => Action::from_static($action)),+ }
            }

            pub fn target(self) -> Target {
                match self { $(SqsOperation::$op => Target::$target),+ }
            }
        }
    };
}

operations! {
    CreateQueue "sqs:CreateQueue" QueueName;
    GetQueueUrl "sqs:GetQueueUrl" QueueName;
    ListQueues "sqs:ListQueues" Any;
    DeleteQueue "sqs:DeleteQueue" QueueUrl;
    GetQueueAttributes "sqs:GetQueueAttributes" QueueUrl;
    SetQueueAttributes "sqs:SetQueueAttributes" QueueUrl;
    PurgeQueue "sqs:PurgeQueue" QueueUrl;
    SendMessage "sqs:SendMessage" QueueUrl;
    SendMessageBatch "sqs:SendMessage" QueueUrl;
    ReceiveMessage "sqs:ReceiveMessage" QueueUrl;
    DeleteMessage "sqs:DeleteMessage" QueueUrl;
    DeleteMessageBatch "sqs:DeleteMessage" QueueUrl;
    ChangeMessageVisibility "sqs:ChangeMessageVisibility" QueueUrl;
    ChangeMessageVisibilityBatch "sqs:ChangeMessageVisibility" QueueUrl;
    TagQueue "sqs:TagQueue" QueueUrl;
    UntagQueue "sqs:UntagQueue" QueueUrl;
    ListQueueTags "sqs:ListQueueTags" QueueUrl;
    ListDeadLetterSourceQueues "sqs:ListDeadLetterSourceQueues" QueueUrl;
}

/// The queue ARN an operation acts on (`arn:aws:sqs:<region>:<account>:<name>`), from the request body.
/// A body that does not name a queue still yields an ARN (with an empty name); the handler then
/// refuses the request with its own error.
pub fn resource(arns: &crate::arn::Arns, op: SqsOperation, body: &[u8]) -> String {
    #[derive(serde::Deserialize, Default)]
    struct Names {
        #[serde(rename = "QueueUrl")]
        queue_url: Option<String>,
        #[serde(rename = "QueueName")]
        queue_name: Option<String>,
    }
    let names: Names = serde_json::from_slice(body).unwrap_or_default();
    let name = match op.target() {
        Target::Any => return "*".to_owned(),
        // A queue URL is `<endpoint>/<account>/<name>`: the name is its last segment.
        Target::QueueUrl => names.queue_url.as_deref().and_then(|u| u.rsplit('/').next()).unwrap_or("").to_owned(),
        Target::QueueName => names.queue_name.unwrap_or_default(),
    };
    format!("arn:aws:sqs:{}:{}:{name}", arns.region, arns.account)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_its_iam_action_and_resource() {
        let arns = crate::arn::Arns { region: "us-east-1".into(), account: "123456789012".into() };
        for op in SqsOperation::ALL {
            assert_eq!(SqsOperation::parse(op.name()), Some(*op));
            // Batches are authorized as their single forms; everything else as itself.
            let single = op.name().strip_suffix("Batch").unwrap_or(op.name());
            assert_eq!(op.action().as_str(), format!("sqs:{single}"));
        }
        assert_eq!(SqsOperation::parse("AddPermission"), None);
        let url = br#"{"QueueUrl": "http://127.0.0.1:9000/123456789012/jobs"}"#;
        let name = br#"{"QueueName": "jobs"}"#;
        let queue = "arn:aws:sqs:us-east-1:123456789012:jobs";
        assert_eq!(resource(&arns, SqsOperation::SendMessageBatch, url), queue);
        assert_eq!(resource(&arns, SqsOperation::CreateQueue, name), queue);
        assert_eq!(resource(&arns, SqsOperation::ListQueues, url), "*");
        assert_eq!(resource(&arns, SqsOperation::DeleteQueue, b"not json"), "arn:aws:sqs:us-east-1:123456789012:");
    }
}
