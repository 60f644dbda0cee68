//! Object and bucket tagging: Put/Get/DeleteObjectTagging, Put/Get/DeleteBucketTagging, and the
//! `x-amz-tagging` header of PutObject. Tags are kept as a JSON object on the row; AWS's limits apply
//! (10 per object, 50 per bucket, keys up to 128 and values up to 256 characters, no duplicate keys).

use std::collections::BTreeMap;

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use super::{Nimbus3, store_error};

const OBJECT_TAGS_MAX: usize = 10;
const BUCKET_TAGS_MAX: usize = 50;

/// Checks a tag set against AWS's rules.
fn parse(tags: TagSet, max: usize) -> S3Result<BTreeMap<String, String>> {
    if tags.len() > max {
        return Err(if max == OBJECT_TAGS_MAX {
            // AWS answers this one with a code s3s has no variant for.
            let mut err = S3Error::with_message(
                S3ErrorCode::from_bytes(b"BadRequest").unwrap_or(S3ErrorCode::InvalidTag),
                "Object tags cannot be greater than 10",
            );
            err.set_status_code(http::StatusCode::BAD_REQUEST);
            err
        } else {
            s3_error!(InvalidTag, "Bucket tag count cannot be greater than 50")
        });
    }
    let mut out = BTreeMap::new();
    for tag in tags {
        let key = tag.key.unwrap_or_default();
        let value = tag.value.unwrap_or_default();
        if key.is_empty() || key.chars().count() > 128 {
            return Err(s3_error!(InvalidTag, "The TagKey you have provided is invalid"));
        }
        if value.chars().count() > 256 {
            return Err(s3_error!(InvalidTag, "The TagValue you have provided is invalid"));
        }
        if out.insert(key, value).is_some() {
            return Err(s3_error!(InvalidTag, "Cannot provide multiple Tags with the same key"));
        }
    }
    Ok(out)
}

/// The `x-amz-tagging` header: a URL query string of `key=value` pairs.
pub(crate) fn parse_header(header: &str) -> S3Result<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(header)
        .map_err(|_| s3_error!(InvalidArgument, "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates."))?;
    let tags = pairs.into_iter().map(|(k, v)| Tag { key: Some(k), value: Some(v) }).collect();
    Ok(to_json(&parse(tags, OBJECT_TAGS_MAX)?))
}

fn to_json(tags: &BTreeMap<String, String>) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "{}".into())
}

fn tag_set(json: &str) -> TagSet {
    let tags: BTreeMap<String, String> = serde_json::from_str(json).unwrap_or_default();
    tags.into_iter().map(|(k, v)| Tag { key: Some(k), value: Some(v) }).collect()
}

fn no_such_key() -> s3s::S3Error {
    s3_error!(NoSuchKey, "The specified key does not exist.")
}

pub(crate) async fn put_object(
    s3: &Nimbus3,
    req: S3Request<PutObjectTaggingInput>,
) -> S3Result<S3Response<PutObjectTaggingOutput>> {
    let input = req.input;
    let tags = to_json(&parse(input.tagging.tag_set, OBJECT_TAGS_MAX)?);
    if !s3.store.set_object_tags(&input.bucket, &input.key, &tags).map_err(store_error)? {
        return Err(no_such_key());
    }
    Ok(S3Response::new(PutObjectTaggingOutput::default()))
}

pub(crate) async fn get_object(
    s3: &Nimbus3,
    req: S3Request<GetObjectTaggingInput>,
) -> S3Result<S3Response<GetObjectTaggingOutput>> {
    let tags =
        s3.store.get_object_tags(&req.input.bucket, &req.input.key).map_err(store_error)?.ok_or_else(no_such_key)?;
    Ok(S3Response::new(GetObjectTaggingOutput { tag_set: tag_set(&tags), version_id: None }))
}

pub(crate) async fn delete_object(
    s3: &Nimbus3,
    req: S3Request<DeleteObjectTaggingInput>,
) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
    if !s3.store.set_object_tags(&req.input.bucket, &req.input.key, "{}").map_err(store_error)? {
        return Err(no_such_key());
    }
    Ok(S3Response::new(DeleteObjectTaggingOutput::default()))
}

pub(crate) async fn put_bucket(
    s3: &Nimbus3,
    req: S3Request<PutBucketTaggingInput>,
) -> S3Result<S3Response<PutBucketTaggingOutput>> {
    let tags = to_json(&parse(req.input.tagging.tag_set, BUCKET_TAGS_MAX)?);
    s3.store.set_bucket_tags(&req.input.bucket, &tags).map_err(store_error)?;
    Ok(S3Response::new(PutBucketTaggingOutput::default()))
}

pub(crate) async fn get_bucket(
    s3: &Nimbus3,
    req: S3Request<GetBucketTaggingInput>,
) -> S3Result<S3Response<GetBucketTaggingOutput>> {
    let tags = tag_set(&s3.store.get_bucket_tags(&req.input.bucket).map_err(store_error)?);
    if tags.is_empty() {
        return Err(s3_error!(NoSuchTagSet, "The TagSet does not exist"));
    }
    Ok(S3Response::new(GetBucketTaggingOutput { tag_set: tags }))
}

pub(crate) async fn delete_bucket(
    s3: &Nimbus3,
    req: S3Request<DeleteBucketTaggingInput>,
) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
    s3.store.set_bucket_tags(&req.input.bucket, "{}").map_err(store_error)?;
    Ok(S3Response::new(DeleteBucketTaggingOutput::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> TagSet {
        pairs.iter().map(|(k, v)| Tag { key: Some((*k).into()), value: Some((*v).into()) }).collect()
    }

    #[test]
    fn tag_sets_follow_aws_limits() {
        assert_eq!(parse(tags(&[("a", "1"), ("b", "")]), OBJECT_TAGS_MAX).unwrap().len(), 2);
        let code = |r: S3Result<BTreeMap<String, String>>| r.unwrap_err().code().as_str().to_owned();
        assert_eq!(code(parse(tags(&[("a", "1"), ("a", "2")]), OBJECT_TAGS_MAX)), "InvalidTag");
        assert_eq!(code(parse(tags(&[("", "1")]), OBJECT_TAGS_MAX)), "InvalidTag");
        assert_eq!(code(parse(tags(&[(&"k".repeat(129), "1")]), OBJECT_TAGS_MAX)), "InvalidTag");
        let eleven: Vec<(String, String)> = (0..11).map(|i| (format!("k{i}"), String::new())).collect();
        let eleven: Vec<(&str, &str)> = eleven.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(code(parse(tags(&eleven), OBJECT_TAGS_MAX)), "BadRequest");
        assert_eq!(parse(tags(&eleven), BUCKET_TAGS_MAX).unwrap().len(), 11);
        assert_eq!(parse_header("a=1&b=x%20y").unwrap(), r#"{"a":"1","b":"x y"}"#);
    }
}
