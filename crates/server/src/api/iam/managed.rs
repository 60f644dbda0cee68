//! The AWS managed policies Nimbus knows, under their real ARNs, with AWS's documents (from the AWS
//! Managed Policy Reference). `ReadOnlyAccess` is a subset: AWS's lists read actions of every
//! service; this one lists those of the services Nimbus serves and S3.

/// One AWS managed policy.
#[derive(Debug)]
pub struct AwsPolicy {
    pub name: &'static str,
    /// `/` or `/service-role/`.
    pub path: &'static str,
    pub id: &'static str,
    pub version: &'static str,
    pub description: &'static str,
    /// Unix seconds.
    pub created: i64,
    pub updated: i64,
    pub document: &'static str,
}

impl AwsPolicy {
    pub fn arn(&self) -> String {
        format!("arn:aws:iam::aws:policy{}{}", self.path, self.name)
    }
}

pub const POLICIES: &[AwsPolicy] = &[
    AwsPolicy {
        name: "AdministratorAccess",
        path: "/",
        id: "ANPAIWMBCKSKIEE64ZLYK",
        version: "v1",
        description: "Provides full access to AWS services and resources.",
        created: 1_423_248_026,
        updated: 1_423_248_026,
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    },
    AwsPolicy {
        name: "ReadOnlyAccess",
        path: "/",
        id: "ANPAILL3HVNFSB6DCOWYQ",
        version: "v1",
        description: "Provides read-only access to AWS services and resources.",
        created: 1_423_248_028,
        updated: 1_423_248_028,
        document: r#"{"Version":"2012-10-17","Statement":[{"Sid":"ReadOnlyActions","Effect":"Allow","Action":["iam:Generate*","iam:Get*","iam:List*","iam:Simulate*","lambda:Get*","lambda:List*","logs:Describe*","logs:FilterLogEvents","logs:Get*","logs:ListTagsForResource","logs:ListTagsLogGroup","logs:StartQuery","logs:StopQuery","logs:TestMetricFilter","s3:Describe*","s3:Get*","s3:List*","sqs:Get*","sqs:List*","sts:GetCallerIdentity"],"Resource":"*"}]}"#,
    },
    AwsPolicy {
        name: "AWSLambdaBasicExecutionRole",
        path: "/service-role/",
        id: "ANPAJNCQGXC42545SKXIK",
        version: "v1",
        description: "Provides write permissions to CloudWatch Logs.",
        created: 1_428_591_780,
        updated: 1_428_591_780,
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:CreateLogGroup","logs:CreateLogStream","logs:PutLogEvents"],"Resource":"*"}]}"#,
    },
    AwsPolicy {
        name: "AWSLambdaSQSQueueExecutionRole",
        path: "/service-role/",
        id: "ANPAJFWJZI6JNND4TSELK",
        version: "v2",
        description: "Provides receive message, delete message, and read attribute access to SQS queues, and write permissions to CloudWatch logs.",
        created: 1_480_467_431,
        updated: 1_480_467_431,
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sqs:ReceiveMessage","sqs:DeleteMessage","sqs:GetQueueAttributes","logs:CreateLogGroup","logs:CreateLogStream","logs:PutLogEvents"],"Resource":"*"}]}"#,
    },
    AwsPolicy {
        name: "AWSLambdaRole",
        path: "/service-role/",
        id: "ANPAJX4DPCRGTC4NFDUXI",
        version: "v1",
        description: "Default policy for AWS Lambda service role.",
        created: 1_423_248_060,
        updated: 1_423_248_060,
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["lambda:InvokeFunction"],"Resource":["*"]}]}"#,
    },
    AwsPolicy {
        name: "AmazonSQSFullAccess",
        path: "/",
        id: "ANPAI65L554VRJ33ECQS6",
        version: "v2",
        description: "Provides full access to Amazon SQS via the AWS Management Console.",
        created: 1_423_248_009,
        updated: 1_423_248_009,
        document: r#"{"Version":"2012-10-17","Statement":[{"Action":["sqs:*"],"Effect":"Allow","Resource":"*"}]}"#,
    },
    AwsPolicy {
        name: "AmazonS3FullAccess",
        path: "/",
        id: "ANPAIFIR6V6BVTRAHWINE",
        version: "v2",
        description: "Provides full access to all buckets via the AWS Management Console.",
        created: 1_423_248_004,
        updated: 1_423_248_004,
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*","s3-object-lambda:*"],"Resource":"*"}]}"#,
    },
    AwsPolicy {
        name: "AmazonS3ReadOnlyAccess",
        path: "/",
        id: "ANPAIZTJ4DXE7G6AGAE6M",
        version: "v3",
        description: "Provides read only access to all buckets via the AWS Management Console.",
        created: 1_423_248_005,
        updated: 1_423_248_005,
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:Get*","s3:List*","s3:Describe*","s3-object-lambda:Get*","s3-object-lambda:List*"],"Resource":"*"}]}"#,
    },
    AwsPolicy {
        name: "CloudWatchLogsFullAccess",
        path: "/",
        id: "ANPAJ3ZGNWK2R5HW5BQFO",
        version: "v2",
        description: "Provides full access to CloudWatch Logs",
        created: 1_423_248_017,
        updated: 1_423_248_017,
        document: r#"{"Version":"2012-10-17","Statement":[{"Sid":"CloudWatchLogsFullAccess","Effect":"Allow","Action":["logs:*","cloudwatch:GenerateQuery"],"Resource":"*"}]}"#,
    },
];

/// The AWS managed policy with this ARN, if Nimbus knows it.
pub fn find(arn: &str) -> Option<&'static AwsPolicy> {
    let rest = arn.strip_prefix("arn:aws:iam::aws:policy")?;
    POLICIES.iter().find(|p| rest.strip_prefix(p.path) == Some(p.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_by_their_real_arns() {
        assert_eq!(find("arn:aws:iam::aws:policy/AdministratorAccess").map(|p| p.name), Some("AdministratorAccess"));
        assert!(find("arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole").is_some());
        assert!(find("arn:aws:iam::aws:policy/AWSLambdaBasicExecutionRole").is_none(), "it lives under service-role/");
        for p in POLICIES {
            assert!(serde_json::from_str::<serde_json::Value>(p.document).is_ok(), "{}", p.name);
            assert_eq!(p.id.len(), 21, "{}", p.name);
        }
    }
}
