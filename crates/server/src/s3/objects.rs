//! Object operations: Put/Get/Head/Delete, DeleteObjects, CopyObject, ListObjects(V2).
//!
//! A write streams the body to a file ([`files::Bodies::write`]), checks it against the Content-MD5
//! and the checksums the client sent (in headers or aws-chunked trailers), and only then commits the
//! row: a refused or interrupted body leaves nothing visible.

use std::collections::BTreeMap;

use base64::Engine as _;
use s3s::checksum::ChecksumHasher;
use s3s::crypto::Checksum as _;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, TrailingHeaders, s3_error};
use serde::{Deserialize, Serialize};

use super::buckets::{now_ms, owner, timestamp};
use super::files::Written;
use super::notifications::{Happened, notify};
use super::operations::object_arn;
use super::{KEY_BYTES_MAX, Nimbus3, PUT_BYTES_MAX, authorize_more, files_error, store_error};
use nimbus_store::ObjectRecord;

/// ListObjects answers at most this many keys and common prefixes per page, as S3 does.
const LIST_MAX: usize = 1000;

/// The headers an object keeps, stored as the row's `headers` JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct StoredHeaders {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) cache_control: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) content_disposition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) content_encoding: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) content_language: Option<String>,
    #[serde(default)]
    pub(super) metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) checksums: Checksums,
}

/// Base64 checksums of the whole body, those the client asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Checksums {
    #[serde(skip_serializing_if = "Option::is_none")]
    crc32: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    crc32c: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    crc64nvme: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
}

impl Checksums {
    pub(super) fn from_dto(c: Checksum) -> Checksums {
        Checksums {
            crc32: c.checksum_crc32,
            crc32c: c.checksum_crc32c,
            crc64nvme: c.checksum_crc64nvme,
            sha1: c.checksum_sha1,
            sha256: c.checksum_sha256,
        }
    }

    /// `(algorithm, value)` pairs, in AWS's names.
    fn pairs(&self) -> [(&'static str, &Option<String>); 5] {
        [
            ("CRC32", &self.crc32),
            ("CRC32C", &self.crc32c),
            ("CRC64NVME", &self.crc64nvme),
            ("SHA1", &self.sha1),
            ("SHA256", &self.sha256),
        ]
    }

    /// A hasher for every algorithm this names a value for, or that `algorithm` / the trailer names.
    pub(super) fn hasher(&self, algorithms: &[String]) -> ChecksumHasher {
        let wants = |name: &str, value: &Option<String>| {
            value.is_some() || algorithms.iter().any(|a| a.eq_ignore_ascii_case(name))
        };
        ChecksumHasher {
            crc32: wants("CRC32", &self.crc32).then(s3s::crypto::Crc32::new),
            crc32c: wants("CRC32C", &self.crc32c).then(s3s::crypto::Crc32c::new),
            crc64nvme: wants("CRC64NVME", &self.crc64nvme).then(s3s::crypto::Crc64Nvme::new),
            sha1: wants("SHA1", &self.sha1).then(s3s::crypto::Sha1::new),
            sha256: wants("SHA256", &self.sha256).then(s3s::crypto::Sha256::new),
        }
    }

    pub(super) fn to_dto(&self) -> Checksum {
        Checksum {
            checksum_crc32: self.crc32.clone(),
            checksum_crc32c: self.crc32c.clone(),
            checksum_crc64nvme: self.crc64nvme.clone(),
            checksum_sha1: self.sha1.clone(),
            checksum_sha256: self.sha256.clone(),
            ..Default::default()
        }
    }

    pub(super) fn fill_from_trailer(&mut self, trailer: Option<&TrailingHeaders>) {
        let Some(trailer) = trailer else { return };
        let read =
            |name: &str| trailer.read(|h| h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)).flatten();
        for (slot, name) in [
            (&mut self.crc32, "x-amz-checksum-crc32"),
            (&mut self.crc32c, "x-amz-checksum-crc32c"),
            (&mut self.crc64nvme, "x-amz-checksum-crc64nvme"),
            (&mut self.sha1, "x-amz-checksum-sha1"),
            (&mut self.sha256, "x-amz-checksum-sha256"),
        ] {
            if slot.is_none() {
                *slot = read(name);
            }
        }
    }
}

/// Algorithms named by `x-amz-checksum-algorithm`/`x-amz-sdk-checksum-algorithm` or `x-amz-trailer`.
pub(super) fn requested_algorithms(algorithm: Option<&ChecksumAlgorithm>, headers: &http::HeaderMap) -> Vec<String> {
    let mut names: Vec<String> = algorithm.map(|a| a.as_str().to_owned()).into_iter().collect();
    for value in headers.get_all("x-amz-trailer").iter().filter_map(|v| v.to_str().ok()) {
        for name in value.split(',') {
            if let Some(algo) = name.trim().to_ascii_lowercase().strip_prefix("x-amz-checksum-") {
                names.push(algo.to_ascii_uppercase());
            }
        }
    }
    names
}

fn check_key(key: &str) -> S3Result<()> {
    if key.len() > KEY_BYTES_MAX {
        return Err(s3_error!(KeyTooLongError, "Your key is too long"));
    }
    Ok(())
}

fn no_such_key() -> s3s::S3Error {
    s3_error!(NoSuchKey, "The specified key does not exist.")
}

pub(super) fn headers_of(record: &ObjectRecord) -> StoredHeaders {
    serde_json::from_str(&record.headers).unwrap_or_else(|e| {
        tracing::warn!(key = record.key, error = %e, "unreadable stored object headers");
        StoredHeaders::default()
    })
}

fn etag(record: &ObjectRecord) -> ETag {
    ETag::Strong(record.etag.clone())
}

/// Verifies a written body against what the client said it is; removes it if it is not.
pub(super) fn verify(
    s3: &Nimbus3,
    written: &Written,
    content_md5: Option<&str>,
    expected: &Checksums,
) -> S3Result<Checksums> {
    let computed = Checksums::from_dto(written.checksum.clone());
    let fail = |err| {
        s3.bodies.remove(&written.file);
        Err(err)
    };
    if let Some(md5) = content_md5
        && base64::engine::general_purpose::STANDARD.decode(md5).ok().as_deref() != Some(&written.md5[..])
    {
        return fail(s3_error!(BadDigest, "The Content-MD5 you specified did not match what we received."));
    }
    for ((name, want), (_, got)) in expected.pairs().into_iter().zip(computed.pairs()) {
        if let Some(want) = want
            && got.as_ref() != Some(want)
        {
            return fail(s3_error!(BadDigest, "The {name} you specified did not match the calculated checksum."));
        }
    }
    Ok(computed)
}

/// Fails early (before reading the body) when the bucket does not exist or the size is over the limit.
pub(super) fn precheck(s3: &Nimbus3, bucket: &str, key: &str, content_length: Option<i64>) -> S3Result<()> {
    check_key(key)?;
    if content_length.is_some_and(|l| u64::try_from(l).unwrap_or(0) > PUT_BYTES_MAX) {
        return Err(s3_error!(EntityTooLarge, "Your proposed upload exceeds the maximum allowed size"));
    }
    s3.store.get_bucket(bucket).map_err(store_error)?;
    Ok(())
}

/// Commits a verified body under `key`, removing the body it replaced.
pub(super) fn commit(
    s3: &Nimbus3,
    bucket: &str,
    key: &str,
    written: &Written,
    etag: String,
    headers: &StoredHeaders,
) -> S3Result<ObjectRecord> {
    let record = ObjectRecord {
        key: key.to_owned(),
        file: written.file.clone(),
        size: i64::try_from(written.size).unwrap_or(i64::MAX),
        etag,
        modified_ms: now_ms(),
        headers: serde_json::to_string(headers).unwrap_or_else(|_| "{}".into()),
    };
    match s3.store.put_object(bucket, &record) {
        Ok(old) => {
            if let Some(old) = old {
                s3.bodies.remove(&old);
            }
            Ok(record)
        }
        Err(e) => {
            s3.bodies.remove(&written.file);
            Err(store_error(e))
        }
    }
}

pub(super) fn empty_body() -> StreamingBlob {
    StreamingBlob::wrap(futures::stream::empty::<Result<bytes::Bytes, std::io::Error>>())
}

pub(crate) async fn put(s3: &Nimbus3, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
    let input = req.input;
    precheck(s3, &input.bucket, &input.key, input.content_length)?;
    let tags = input.tagging.as_deref().map(super::tagging::parse_header).transpose()?;
    let mut expected = Checksums {
        crc32: input.checksum_crc32,
        crc32c: input.checksum_crc32c,
        crc64nvme: input.checksum_crc64nvme,
        sha1: input.checksum_sha1,
        sha256: input.checksum_sha256,
    };
    let hasher = expected.hasher(&requested_algorithms(input.checksum_algorithm.as_ref(), &req.headers));
    let body = input.body.unwrap_or_else(empty_body);
    let written = s3.bodies.write(body, PUT_BYTES_MAX, hasher).await.map_err(files_error)?;
    expected.fill_from_trailer(req.trailing_headers.as_ref());
    let checksums = verify(s3, &written, input.content_md5.as_deref(), &expected)?;
    let headers = StoredHeaders {
        content_type: input.content_type,
        cache_control: input.cache_control,
        content_disposition: input.content_disposition,
        content_encoding: input.content_encoding.filter(|e| e != "aws-chunked"),
        content_language: input.content_language,
        metadata: input.metadata.unwrap_or_default().into_iter().collect(),
        checksums: checksums.clone(),
    };
    let record = commit(s3, &input.bucket, &input.key, &written, hex::encode(written.md5), &headers)?;
    if let Some(tags) = tags {
        s3.store.set_object_tags(&input.bucket, &input.key, &tags).map_err(store_error)?;
    }
    let happened = Happened {
        bucket: &input.bucket,
        key: &input.key,
        event: "ObjectCreated:Put",
        object: Some((record.size, &record.etag)),
    };
    notify(s3, &req.extensions, happened).await;
    let c = checksums.to_dto();
    Ok(S3Response::new(PutObjectOutput {
        e_tag: Some(etag(&record)),
        checksum_crc32: c.checksum_crc32,
        checksum_crc32c: c.checksum_crc32c,
        checksum_crc64nvme: c.checksum_crc64nvme,
        checksum_sha1: c.checksum_sha1,
        checksum_sha256: c.checksum_sha256,
        ..Default::default()
    }))
}

fn find(s3: &Nimbus3, bucket: &str, key: &str) -> S3Result<ObjectRecord> {
    check_key(key)?;
    s3.store.get_object(bucket, key).map_err(store_error)?.ok_or_else(no_such_key)
}

/// If-Match / If-None-Match / If-Modified-Since / If-Unmodified-Since, in RFC 7232's order.
fn preconditions(
    record: &ObjectRecord,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
) -> S3Result<()> {
    let tag = etag(record);
    let matches = |c: &ETagCondition| match c {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value() == tag.value(),
    };
    let modified = time::OffsetDateTime::from(timestamp(record.modified_ms)).unix_timestamp();
    let seconds = |t: &Timestamp| time::OffsetDateTime::from(t.clone()).unix_timestamp();
    if let Some(c) = if_match {
        if !matches(c) {
            return Err(s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold"));
        }
    } else if if_unmodified_since.is_some_and(|t| modified > seconds(t)) {
        return Err(s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold"));
    }
    if let Some(c) = if_none_match {
        if matches(c) {
            return Err(s3_error!(NotModified));
        }
    } else if if_modified_since.is_some_and(|t| modified <= seconds(t)) {
        return Err(s3_error!(NotModified));
    }
    Ok(())
}

pub(crate) async fn get(s3: &Nimbus3, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
    let input = req.input;
    // A concurrent overwrite may remove the body between reading the row and opening the file: the
    // second look finds the new row.
    for _ in 0..3 {
        let record = find(s3, &input.bucket, &input.key)?;
        preconditions(
            &record,
            input.if_match.as_ref(),
            input.if_none_match.as_ref(),
            input.if_modified_since.as_ref(),
            input.if_unmodified_since.as_ref(),
        )?;
        let size = u64::try_from(record.size).unwrap_or(0);
        let range = match &input.range {
            Some(r) => Some(r.check(size)?),
            None => None,
        };
        let span = range.clone().unwrap_or(0..size);
        let body = match s3.bodies.read(&record.file, span.clone()).await {
            Ok(body) => body,
            Err(super::files::FilesError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                continue;
            }
            Err(e) => return Err(files_error(e)),
        };
        let headers = headers_of(&record);
        let checksums =
            if range.is_none() && input.checksum_mode.as_ref().is_some_and(|m| m.as_str() == ChecksumMode::ENABLED) {
                headers.checksums.to_dto()
            } else {
                Checksum::default()
            };
        let output = GetObjectOutput {
            body: Some(body),
            accept_ranges: Some("bytes".into()),
            content_length: Some(i64::try_from(span.end - span.start).unwrap_or(i64::MAX)),
            content_range: range.as_ref().map(|r| format!("bytes {}-{}/{size}", r.start, r.end.saturating_sub(1))),
            e_tag: Some(etag(&record)),
            last_modified: Some(timestamp(record.modified_ms)),
            content_type: input.response_content_type.or(headers.content_type),
            cache_control: input.response_cache_control.or(headers.cache_control),
            content_disposition: input.response_content_disposition.or(headers.content_disposition),
            content_encoding: input.response_content_encoding.or(headers.content_encoding),
            content_language: input.response_content_language.or(headers.content_language),
            metadata: (!headers.metadata.is_empty()).then(|| headers.metadata.into_iter().collect()),
            checksum_crc32: checksums.checksum_crc32,
            checksum_crc32c: checksums.checksum_crc32c,
            checksum_crc64nvme: checksums.checksum_crc64nvme,
            checksum_sha1: checksums.checksum_sha1,
            checksum_sha256: checksums.checksum_sha256,
            ..Default::default()
        };
        return Ok(S3Response::new(output));
    }
    Err(s3_error!(SlowDown, "The object is being rewritten; retry"))
}

pub(crate) async fn head(s3: &Nimbus3, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
    let input = req.input;
    let record = find(s3, &input.bucket, &input.key)?;
    preconditions(
        &record,
        input.if_match.as_ref(),
        input.if_none_match.as_ref(),
        input.if_modified_since.as_ref(),
        input.if_unmodified_since.as_ref(),
    )?;
    let headers = headers_of(&record);
    let checksums = if input.checksum_mode.as_ref().is_some_and(|m| m.as_str() == ChecksumMode::ENABLED) {
        headers.checksums.to_dto()
    } else {
        Checksum::default()
    };
    Ok(S3Response::new(HeadObjectOutput {
        accept_ranges: Some("bytes".into()),
        content_length: Some(record.size),
        e_tag: Some(etag(&record)),
        last_modified: Some(timestamp(record.modified_ms)),
        content_type: headers.content_type,
        cache_control: headers.cache_control,
        content_disposition: headers.content_disposition,
        content_encoding: headers.content_encoding,
        content_language: headers.content_language,
        metadata: (!headers.metadata.is_empty()).then(|| headers.metadata.into_iter().collect()),
        checksum_crc32: checksums.checksum_crc32,
        checksum_crc32c: checksums.checksum_crc32c,
        checksum_crc64nvme: checksums.checksum_crc64nvme,
        checksum_sha1: checksums.checksum_sha1,
        checksum_sha256: checksums.checksum_sha256,
        ..Default::default()
    }))
}

/// Deletes one key; `true` if an object was removed (S3 answers 204 either way).
pub(crate) fn delete_key(s3: &Nimbus3, bucket: &str, key: &str) -> S3Result<Option<ObjectRecord>> {
    check_key(key)?;
    let old = s3.store.delete_object(bucket, key).map_err(store_error)?;
    if let Some(old) = &old {
        s3.bodies.remove(&old.file);
    }
    Ok(old)
}

pub(crate) async fn delete(
    s3: &Nimbus3,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    if delete_key(s3, &req.input.bucket, &req.input.key)?.is_some() {
        let happened =
            Happened { bucket: &req.input.bucket, key: &req.input.key, event: "ObjectRemoved:Delete", object: None };
        notify(s3, &req.extensions, happened).await;
    }
    Ok(S3Response::new(DeleteObjectOutput::default()))
}

pub(crate) async fn delete_many(
    s3: &Nimbus3,
    req: S3Request<DeleteObjectsInput>,
) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let bucket = req.input.bucket;
    if req.input.delete.objects.len() > 1000 {
        return Err(s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema"
        ));
    }
    s3.store.get_bucket(&bucket).map_err(store_error)?;
    let quiet = req.input.delete.quiet.unwrap_or(false);
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for object in req.input.delete.objects {
        let result = authorize_more(&req.extensions, "s3:DeleteObject", &object_arn(&bucket, &object.key))
            .and_then(|()| delete_key(s3, &bucket, &object.key));
        match result {
            Ok(removed) => {
                if removed.is_some() {
                    let happened =
                        Happened { bucket: &bucket, key: &object.key, event: "ObjectRemoved:Delete", object: None };
                    notify(s3, &req.extensions, happened).await;
                }
                if !quiet {
                    deleted.push(DeletedObject { key: Some(object.key), ..Default::default() });
                }
            }
            Err(e) => errors.push(Error {
                code: Some(e.code().as_str().to_owned()),
                message: e.message().map(str::to_owned),
                key: Some(object.key),
                version_id: None,
            }),
        }
    }
    Ok(S3Response::new(DeleteObjectsOutput { deleted: Some(deleted), errors: Some(errors), ..Default::default() }))
}

pub(crate) async fn copy(s3: &Nimbus3, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
    let input = req.input;
    let CopySource::Bucket { bucket: src_bucket, key: src_key, .. } = &input.copy_source else {
        return Err(s3_error!(
            InvalidArgument,
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey"
        ));
    };
    authorize_more(&req.extensions, "s3:GetObject", &object_arn(src_bucket, src_key))?;
    precheck(s3, &input.bucket, &input.key, None)?;
    let source = find(s3, src_bucket, src_key)?;
    let replace = input.metadata_directive.as_ref().is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
    if !replace && **src_bucket == *input.bucket && **src_key == *input.key {
        return Err(s3_error!(
            InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
        ));
    }
    let source_headers = headers_of(&source);
    let algorithms: Vec<String> = input.checksum_algorithm.iter().map(|a| a.as_str().to_owned()).collect();
    let hasher = source_headers.checksums.hasher(&algorithms);
    let written =
        s3.bodies.copy(&source.file, u64::try_from(source.size).unwrap_or(0), hasher).await.map_err(files_error)?;
    let checksums = Checksums::from_dto(written.checksum.clone());
    let headers = if replace {
        StoredHeaders {
            content_type: input.content_type,
            cache_control: input.cache_control,
            content_disposition: input.content_disposition,
            content_encoding: input.content_encoding,
            content_language: input.content_language,
            metadata: input.metadata.unwrap_or_default().into_iter().collect(),
            checksums,
        }
    } else {
        StoredHeaders { checksums, ..source_headers }
    };
    // A copy keeps the source's ETag (a multipart source's `-N` one too), as S3 does.
    let record = commit(s3, &input.bucket, &input.key, &written, source.etag.clone(), &headers)?;
    let happened = Happened {
        bucket: &input.bucket,
        key: &input.key,
        event: "ObjectCreated:Copy",
        object: Some((record.size, &record.etag)),
    };
    notify(s3, &req.extensions, happened).await;
    let c = headers.checksums.to_dto();
    Ok(S3Response::new(CopyObjectOutput {
        copy_object_result: Some(CopyObjectResult {
            e_tag: Some(etag(&record)),
            last_modified: Some(timestamp(record.modified_ms)),
            checksum_crc32: c.checksum_crc32,
            checksum_crc32c: c.checksum_crc32c,
            checksum_crc64nvme: c.checksum_crc64nvme,
            checksum_sha1: c.checksum_sha1,
            checksum_sha256: c.checksum_sha256,
            ..Default::default()
        }),
        ..Default::default()
    }))
}

/// One page of a listing.
struct Page {
    objects: Vec<ObjectRecord>,
    prefixes: Vec<String>,
    truncated: bool,
    /// Where the next page starts (exclusive), when truncated.
    next_after: Option<String>,
    /// The last key or common prefix answered (ListObjects' NextMarker).
    last: Option<String>,
}

/// Lists keys after `after` under `prefix`, rolling keys that contain `delimiter` after the prefix into
/// common prefixes; each common prefix counts once toward `max`.
fn list_page(
    s3: &Nimbus3,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    after: &str,
    max: usize,
) -> S3Result<Page> {
    let mut page = Page { objects: Vec::new(), prefixes: Vec::new(), truncated: false, next_after: None, last: None };
    let mut cursor = after.to_owned();
    'pages: loop {
        let rows = s3.store.list_objects(bucket, prefix, &cursor, LIST_MAX + 1).map_err(store_error)?;
        let full = rows.len() > LIST_MAX;
        for row in rows {
            if page.objects.len() + page.prefixes.len() == max {
                page.truncated = true;
                page.next_after = Some(cursor);
                break 'pages;
            }
            let rolled = delimiter.filter(|d| !d.is_empty()).and_then(|d| {
                row.key[prefix.len()..].find(d).map(|i| row.key[..prefix.len() + i + d.len()].to_owned())
            });
            match rolled {
                Some(common) => {
                    // Skip every key under this common prefix: the largest char sorts after them.
                    cursor = format!("{common}{}", char::MAX);
                    page.last = Some(common.clone());
                    page.prefixes.push(common);
                    continue 'pages;
                }
                None => {
                    cursor = row.key.clone();
                    page.last = Some(row.key.clone());
                    page.objects.push(row);
                }
            }
        }
        if !full {
            break;
        }
    }
    Ok(page)
}

fn to_object(record: ObjectRecord, with_owner: bool) -> Object {
    Object {
        e_tag: Some(etag(&record)),
        last_modified: Some(timestamp(record.modified_ms)),
        size: Some(record.size),
        storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
        owner: with_owner.then(owner),
        key: Some(record.key),
        ..Default::default()
    }
}

fn max_keys(requested: Option<i32>) -> usize {
    requested.map_or(LIST_MAX, |n| usize::try_from(n).unwrap_or(0).min(LIST_MAX))
}

pub(crate) async fn list_v2(
    s3: &Nimbus3,
    req: S3Request<ListObjectsV2Input>,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let input = req.input;
    let prefix = input.prefix.clone().unwrap_or_default();
    let mut after = input.start_after.clone().unwrap_or_default();
    if let Some(token) = &input.continuation_token {
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| s3_error!(InvalidArgument, "The continuation token provided is incorrect"))?;
        after = after.max(decoded);
    }
    let max = max_keys(input.max_keys);
    let page = list_page(s3, &input.bucket, &prefix, input.delimiter.as_deref(), &after, max)?;
    let key_count = i32::try_from(page.objects.len() + page.prefixes.len()).unwrap_or(i32::MAX);
    let with_owner = input.fetch_owner.unwrap_or(false);
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(input.bucket),
        prefix: Some(prefix),
        delimiter: input.delimiter,
        max_keys: Some(i32::try_from(max).unwrap_or(i32::MAX)),
        key_count: Some(key_count),
        is_truncated: Some(page.truncated),
        continuation_token: input.continuation_token,
        next_continuation_token: page.next_after.map(|a| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(a)),
        start_after: input.start_after,
        contents: Some(page.objects.into_iter().map(|o| to_object(o, with_owner)).collect()),
        common_prefixes: Some(page.prefixes.into_iter().map(|p| CommonPrefix { prefix: Some(p) }).collect()),
        ..Default::default()
    }))
}

pub(crate) async fn list_v1(s3: &Nimbus3, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
    let input = req.input;
    let prefix = input.prefix.clone().unwrap_or_default();
    let marker = input.marker.clone().unwrap_or_default();
    let max = max_keys(input.max_keys);
    // A marker that is a common prefix resumes after everything under it.
    let after = match input.delimiter.as_deref() {
        Some(d) if !d.is_empty() && marker.ends_with(d) && marker.starts_with(&prefix) => {
            format!("{marker}{}", char::MAX)
        }
        _ => marker.clone(),
    };
    let page = list_page(s3, &input.bucket, &prefix, input.delimiter.as_deref(), &after, max)?;
    // S3 answers NextMarker only when a delimiter was given; clients use the last key otherwise.
    let next_marker = (page.truncated && input.delimiter.is_some()).then_some(page.last).flatten();
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(input.bucket),
        prefix: Some(prefix),
        marker: Some(marker),
        delimiter: input.delimiter,
        max_keys: Some(i32::try_from(max).unwrap_or(i32::MAX)),
        is_truncated: Some(page.truncated),
        next_marker,
        contents: Some(page.objects.into_iter().map(|o| to_object(o, true)).collect()),
        common_prefixes: Some(page.prefixes.into_iter().map(|p| CommonPrefix { prefix: Some(p) }).collect()),
        ..Default::default()
    }))
}
