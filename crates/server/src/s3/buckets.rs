//! Bucket operations: Create/Delete/Head/List, GetBucketLocation.

use std::time::{Duration, SystemTime};

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::{Nimbus3, store_error};

pub(crate) fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// AWS's naming rules for new buckets (3–63 characters of lowercase letters, digits, `.` and `-`,
/// starting and ending with a letter or digit, no `..`, not an IPv4 address, none of the reserved
/// prefixes and suffixes).
pub(crate) fn valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
        && name.parse::<std::net::Ipv4Addr>().is_err()
        && !["xn--", "sthree-", "amzn-s3-demo-"].iter().any(|p| name.starts_with(p))
        && !["-s3alias", "--ol-s3", ".mrap", "--x-s3"].iter().any(|s| name.ends_with(s))
}

pub(crate) async fn create(
    s3: &Nimbus3,
    req: S3Request<CreateBucketInput>,
) -> S3Result<S3Response<CreateBucketOutput>> {
    let name = req.input.bucket;
    if !valid_bucket_name(&name) {
        return Err(s3_error!(InvalidBucketName, "The specified bucket is not valid."));
    }
    if let Some(constraint) = req.input.create_bucket_configuration.and_then(|c| c.location_constraint) {
        if constraint.as_str() != s3.region {
            return Err(s3_error!(
                IllegalLocationConstraintException,
                "The {} location constraint is incompatible for the region specific endpoint this request was sent to.",
                constraint.as_str()
            ));
        }
    } else if s3.region != "us-east-1" {
        // AWS outside us-east-1 requires the constraint to match the endpoint's region.
        return Err(s3_error!(
            IllegalLocationConstraintException,
            "The unspecified location constraint is incompatible for the region specific endpoint this request was sent to."
        ));
    }
    if !s3.store.create_bucket(&name, now_ms()).map_err(store_error)? {
        return Err(s3_error!(
            BucketAlreadyOwnedByYou,
            "Your previous request to create the named bucket succeeded and you already own it."
        ));
    }
    Ok(S3Response::new(CreateBucketOutput { location: Some(format!("/{name}")) }))
}

pub(crate) async fn delete(
    s3: &Nimbus3,
    req: S3Request<DeleteBucketInput>,
) -> S3Result<S3Response<DeleteBucketOutput>> {
    let parts = s3.store.delete_bucket(&req.input.bucket).map_err(store_error)?;
    parts.iter().for_each(|f| s3.bodies.remove(f));
    Ok(S3Response::new(DeleteBucketOutput {}))
}

pub(crate) async fn head(s3: &Nimbus3, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
    s3.store.get_bucket(&req.input.bucket).map_err(store_error)?;
    Ok(S3Response::new(HeadBucketOutput { bucket_region: Some(s3.region.clone()), ..Default::default() }))
}

pub(crate) async fn list(s3: &Nimbus3, _req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
    let buckets = s3.store.list_buckets().map_err(store_error)?;
    let buckets = buckets
        .into_iter()
        .map(|b| Bucket {
            name: Some(b.name),
            creation_date: Some(timestamp(b.created_ms)),
            bucket_region: Some(s3.region.clone()),
        })
        .collect();
    Ok(S3Response::new(ListBucketsOutput { buckets: Some(buckets), owner: Some(owner()), ..Default::default() }))
}

pub(crate) fn owner() -> Owner {
    Owner { display_name: Some("nimbus".into()), id: Some(CANONICAL_USER_ID.into()) }
}

/// The canonical user id S3 shows for the account's owner (a fixed 64-hex value here).
pub(crate) const CANONICAL_USER_ID: &str = "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a";

pub(crate) async fn location(
    s3: &Nimbus3,
    req: S3Request<GetBucketLocationInput>,
) -> S3Result<S3Response<GetBucketLocationOutput>> {
    s3.store.get_bucket(&req.input.bucket).map_err(store_error)?;
    // us-east-1 answers an empty constraint, as AWS does.
    let location_constraint = (s3.region != "us-east-1").then(|| BucketLocationConstraint::from(s3.region.clone()));
    Ok(S3Response::new(GetBucketLocationOutput { location_constraint }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_aws_rules() {
        for ok in ["abc", "my-bucket.data", "a1b", &"a".repeat(63)] {
            assert!(valid_bucket_name(ok), "{ok}");
        }
        for bad in
            ["ab", "Abc", "-abc", "abc-", "a..b", "192.168.1.1", "xn--abc", "abc-s3alias", "a_b", &"a".repeat(64)]
        {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
    }
}
