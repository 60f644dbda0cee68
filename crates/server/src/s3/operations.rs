//! The one table from an S3 operation (as s3s names it after routing) to the IAM action it needs and
//! the resource it acts on, for `authz`: `s3:GetObject` on `arn:aws:s3:::bucket/key`, `s3:ListBucket`
//! on `arn:aws:s3:::bucket`, `s3:ListAllMyBuckets` on `*` (AWS's action names, per its Service
//! Authorization Reference: HeadBucket needs ListBucket, HeadObject needs GetObject, the multipart
//! steps need PutObject, DeleteBucketTagging needs PutBucketTagging).

use nimbus_model::policy::Action;
use s3s::path::S3Path;

/// What an operation acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum On {
    Account,
    Bucket,
    Object,
}

/// `(s3s operation name, IAM action, resource kind)`.
const OPERATIONS: &[(&str, &str, On)] = &[
    ("ListBuckets", "s3:ListAllMyBuckets", On::Account),
    ("CreateBucket", "s3:CreateBucket", On::Bucket),
    ("DeleteBucket", "s3:DeleteBucket", On::Bucket),
    ("HeadBucket", "s3:ListBucket", On::Bucket),
    ("GetBucketLocation", "s3:GetBucketLocation", On::Bucket),
    ("ListObjects", "s3:ListBucket", On::Bucket),
    ("ListObjectsV2", "s3:ListBucket", On::Bucket),
    ("ListObjectVersions", "s3:ListBucketVersions", On::Bucket),
    ("ListMultipartUploads", "s3:ListBucketMultipartUploads", On::Bucket),
    ("GetBucketNotificationConfiguration", "s3:GetBucketNotification", On::Bucket),
    ("PutBucketNotificationConfiguration", "s3:PutBucketNotification", On::Bucket),
    ("GetBucketTagging", "s3:GetBucketTagging", On::Bucket),
    ("PutBucketTagging", "s3:PutBucketTagging", On::Bucket),
    ("DeleteBucketTagging", "s3:PutBucketTagging", On::Bucket),
    ("GetBucketVersioning", "s3:GetBucketVersioning", On::Bucket),
    ("PutBucketVersioning", "s3:PutBucketVersioning", On::Bucket),
    // Each key of a DeleteObjects is decided again as s3:DeleteObject on its own ARN.
    ("DeleteObjects", "s3:DeleteObject", On::Bucket),
    ("GetObject", "s3:GetObject", On::Object),
    ("HeadObject", "s3:GetObject", On::Object),
    ("PutObject", "s3:PutObject", On::Object),
    // The copy's source is decided in the operation, as s3:GetObject on the source's ARN.
    ("CopyObject", "s3:PutObject", On::Object),
    ("DeleteObject", "s3:DeleteObject", On::Object),
    ("CreateMultipartUpload", "s3:PutObject", On::Object),
    ("UploadPart", "s3:PutObject", On::Object),
    ("UploadPartCopy", "s3:PutObject", On::Object),
    ("CompleteMultipartUpload", "s3:PutObject", On::Object),
    ("AbortMultipartUpload", "s3:AbortMultipartUpload", On::Object),
    ("ListParts", "s3:ListMultipartUploadParts", On::Object),
    ("GetObjectTagging", "s3:GetObjectTagging", On::Object),
    ("PutObjectTagging", "s3:PutObjectTagging", On::Object),
    ("DeleteObjectTagging", "s3:DeleteObjectTagging", On::Object),
];

/// `arn:aws:s3:::bucket`
pub fn bucket_arn(bucket: &str) -> String {
    format!("arn:aws:s3:::{bucket}")
}

/// `arn:aws:s3:::bucket/key`
pub fn object_arn(bucket: &str, key: &str) -> String {
    format!("arn:aws:s3:::{bucket}/{key}")
}

/// The action and resource ARN of a routed operation; `None` for operations Nimbus does not serve
/// (they are refused to everyone but root, and answered NotImplemented).
pub fn decide(operation: &str, path: &S3Path) -> Option<(Action, String)> {
    let &(_, action, on) = OPERATIONS.iter().find(|(name, _, _)| *name == operation)?;
    let resource = match (on, path) {
        (On::Account, _) => "*".to_owned(),
        (On::Bucket, S3Path::Bucket { bucket }) => bucket_arn(bucket),
        (On::Object, S3Path::Object { bucket, key }) => object_arn(bucket, key),
        _ => return None,
    };
    Some((Action::from_static(action), resource))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_map_to_their_action_and_resource() {
        let cases = [
            ("GetObject", S3Path::object("b", "a/k"), Some(("s3:GetObject", "arn:aws:s3:::b/a/k"))),
            ("HeadObject", S3Path::object("b", "k"), Some(("s3:GetObject", "arn:aws:s3:::b/k"))),
            ("ListObjectsV2", S3Path::bucket("b"), Some(("s3:ListBucket", "arn:aws:s3:::b"))),
            ("HeadBucket", S3Path::bucket("b"), Some(("s3:ListBucket", "arn:aws:s3:::b"))),
            ("ListBuckets", S3Path::root(), Some(("s3:ListAllMyBuckets", "*"))),
            ("UploadPart", S3Path::object("b", "k"), Some(("s3:PutObject", "arn:aws:s3:::b/k"))),
            ("DeleteBucketTagging", S3Path::bucket("b"), Some(("s3:PutBucketTagging", "arn:aws:s3:::b"))),
            // An object operation on a bucket path cannot be decided: refused.
            ("GetObject", S3Path::bucket("b"), None),
            ("PutBucketAcl", S3Path::bucket("b"), None),
        ];
        for (operation, path, want) in cases {
            let got = decide(operation, &path).map(|(a, r)| (a.to_string(), r));
            assert_eq!(got, want.map(|(a, r)| (a.to_owned(), r.to_owned())), "{operation} {path:?}");
        }
        for (name, action, _) in OPERATIONS {
            assert!(action.starts_with("s3:"), "{name}");
        }
    }
}
