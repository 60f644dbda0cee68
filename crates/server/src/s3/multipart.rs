//! Multipart upload: Create, UploadPart, Complete, Abort, ListParts, ListMultipartUploads.
//!
//! Each part is streamed to its own durable file and recorded; Complete checks the client's part list
//! against what was uploaded (AWS's `InvalidPart`, `InvalidPartOrder`, `EntityTooSmall`), joins the
//! parts into one new body file and commits the object and the end of the upload in one transaction.
//! The ETag is AWS's: the MD5 of the parts' binary MD5s, then `-<number of parts>`.

use md5::Digest as _;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::buckets::{now_ms, owner, timestamp};
use super::objects::{Checksums, StoredHeaders, empty_body, precheck, requested_algorithms, verify};
use super::{Nimbus3, PUT_BYTES_MAX, files_error, store_error};
use nimbus_store::{PartRecord, StoreError, UploadRecord};

/// Every part but the last must be at least this big, as on AWS (5 MiB).
const PART_BYTES_MIN: i64 = 5 * 1024 * 1024;
/// Part numbers run 1..=10,000, as on AWS.
const PART_NUMBER_MAX: i32 = 10_000;

fn no_such_upload() -> s3s::S3Error {
    s3_error!(
        NoSuchUpload,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
    )
}

/// The upload, checked to be for this bucket and key.
fn upload(s3: &Nimbus3, bucket: &str, key: &str, id: &str) -> S3Result<UploadRecord> {
    match s3.store.get_upload(id) {
        Ok(u) if u.bucket == bucket && u.key == key => Ok(u),
        Ok(_) | Err(StoreError::NotFound { .. }) => Err(no_such_upload()),
        Err(e) => Err(store_error(e)),
    }
}

fn upload_error(e: StoreError) -> s3s::S3Error {
    match e {
        StoreError::NotFound { what: "upload", .. } => no_such_upload(),
        e => store_error(e),
    }
}

pub(crate) async fn create(
    s3: &Nimbus3,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let input = req.input;
    precheck(s3, &input.bucket, &input.key, None)?;
    let headers = StoredHeaders {
        content_type: input.content_type,
        cache_control: input.cache_control,
        content_disposition: input.content_disposition,
        content_encoding: input.content_encoding,
        content_language: input.content_language,
        metadata: input.metadata.unwrap_or_default().into_iter().collect(),
        checksums: Checksums::default(),
    };
    let record = UploadRecord {
        id: uuid::Uuid::new_v4().simple().to_string(),
        bucket: input.bucket.clone(),
        key: input.key.clone(),
        created_ms: now_ms(),
        headers: serde_json::to_string(&headers).unwrap_or_else(|_| "{}".into()),
    };
    s3.store.create_upload(&record).map_err(store_error)?;
    Ok(S3Response::new(CreateMultipartUploadOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(record.id),
        checksum_algorithm: input.checksum_algorithm,
        ..Default::default()
    }))
}

pub(crate) async fn upload_part(
    s3: &Nimbus3,
    req: S3Request<UploadPartInput>,
) -> S3Result<S3Response<UploadPartOutput>> {
    let input = req.input;
    if !(1..=PART_NUMBER_MAX).contains(&input.part_number) {
        return Err(s3_error!(InvalidArgument, "Part number must be an integer between 1 and 10000, inclusive"));
    }
    precheck(s3, &input.bucket, &input.key, input.content_length)?;
    upload(s3, &input.bucket, &input.key, &input.upload_id)?;
    let mut expected = Checksums::from_dto(Checksum {
        checksum_crc32: input.checksum_crc32,
        checksum_crc32c: input.checksum_crc32c,
        checksum_crc64nvme: input.checksum_crc64nvme,
        checksum_sha1: input.checksum_sha1,
        checksum_sha256: input.checksum_sha256,
        ..Default::default()
    });
    let hasher = expected.hasher(&requested_algorithms(input.checksum_algorithm.as_ref(), &req.headers));
    let body = input.body.unwrap_or_else(empty_body);
    let written = s3.bodies.write(body, PUT_BYTES_MAX, hasher).await.map_err(files_error)?;
    expected.fill_from_trailer(req.trailing_headers.as_ref());
    let checksums = verify(s3, &written, input.content_md5.as_deref(), &expected)?;
    let part = PartRecord {
        number: input.part_number,
        file: written.file.clone(),
        size: i64::try_from(written.size).unwrap_or(i64::MAX),
        etag: hex::encode(written.md5),
        modified_ms: now_ms(),
        checksums: serde_json::to_string(&checksums).unwrap_or_else(|_| "{}".into()),
    };
    match s3.store.put_part(&input.upload_id, &part) {
        Ok(old) => {
            if let Some(old) = old {
                s3.bodies.remove(&old);
            }
        }
        Err(e) => {
            s3.bodies.remove(&written.file);
            return Err(upload_error(e));
        }
    }
    let c = checksums.to_dto();
    Ok(S3Response::new(UploadPartOutput {
        e_tag: Some(ETag::Strong(part.etag)),
        checksum_crc32: c.checksum_crc32,
        checksum_crc32c: c.checksum_crc32c,
        checksum_crc64nvme: c.checksum_crc64nvme,
        checksum_sha1: c.checksum_sha1,
        checksum_sha256: c.checksum_sha256,
        ..Default::default()
    }))
}

/// Checks the client's part list against the uploaded parts: ascending numbers, each uploaded with
/// that ETag, every part but the last at least 5 MiB. Answers the chosen parts in order.
fn choose_parts<'a>(requested: &[(i32, Option<String>)], uploaded: &'a [PartRecord]) -> S3Result<Vec<&'a PartRecord>> {
    if requested.is_empty() {
        return Err(s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema"
        ));
    }
    let mut chosen = Vec::with_capacity(requested.len());
    let mut previous = 0;
    for (number, etag) in requested {
        if *number <= previous {
            return Err(s3_error!(
                InvalidPartOrder,
                "The list of parts was not in ascending order. The parts list must be specified in order by part number."
            ));
        }
        previous = *number;
        let found = uploaded.iter().find(|p| p.number == *number);
        let Some(part) = found.filter(|p| etag.as_deref().is_none_or(|e| e.trim_matches('"') == p.etag)) else {
            return Err(s3_error!(
                InvalidPart,
                "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
            ));
        };
        chosen.push(part);
    }
    if chosen[..chosen.len() - 1].iter().any(|p| p.size < PART_BYTES_MIN) {
        return Err(s3_error!(EntityTooSmall, "Your proposed upload is smaller than the minimum allowed object size."));
    }
    Ok(chosen)
}

/// `md5(md5(part 1) ‖ … ‖ md5(part N))-N`, in hex.
fn multipart_etag(parts: &[&PartRecord]) -> String {
    let mut md5 = md5::Md5::new();
    for part in parts {
        md5.update(hex::decode(&part.etag).unwrap_or_default());
    }
    format!("{}-{}", hex::encode(md5.finalize()), parts.len())
}

pub(crate) async fn complete(
    s3: &Nimbus3,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let input = req.input;
    let upload = upload(s3, &input.bucket, &input.key, &input.upload_id)?;
    let uploaded = s3.store.list_parts(&upload.id).map_err(upload_error)?;
    let requested: Vec<(i32, Option<String>)> = input
        .multipart_upload
        .and_then(|m| m.parts)
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.part_number.unwrap_or(0), p.e_tag.map(|e| e.value().to_owned())))
        .collect();
    let chosen = choose_parts(&requested, &uploaded)?;
    let files: Vec<String> = chosen.iter().map(|p| p.file.clone()).collect();
    let size: i64 = chosen.iter().map(|p| p.size).sum();
    let etag = multipart_etag(&chosen);
    let file = s3.bodies.concat(&files).await.map_err(files_error)?;
    let headers: StoredHeaders = serde_json::from_str(&upload.headers).unwrap_or_default();
    let record = nimbus_store::ObjectRecord {
        key: input.key.clone(),
        file: file.clone(),
        size,
        etag: etag.clone(),
        modified_ms: now_ms(),
        headers: serde_json::to_string(&headers).unwrap_or_else(|_| "{}".into()),
    };
    match s3.store.complete_upload(&upload.id, &input.bucket, &record) {
        Ok(stale) => stale.iter().for_each(|f| s3.bodies.remove(f)),
        Err(e) => {
            s3.bodies.remove(&file);
            return Err(upload_error(e));
        }
    }
    let happened = super::notifications::Happened {
        bucket: &input.bucket,
        key: &input.key,
        event: "ObjectCreated:CompleteMultipartUpload",
        object: Some((record.size, &record.etag)),
    };
    super::notifications::notify(s3, &req.extensions, happened).await;
    Ok(S3Response::new(CompleteMultipartUploadOutput {
        bucket: Some(input.bucket.clone()),
        key: Some(input.key.clone()),
        location: Some(format!("/{}/{}", input.bucket, input.key)),
        e_tag: Some(ETag::Strong(etag)),
        ..Default::default()
    }))
}

pub(crate) async fn abort(
    s3: &Nimbus3,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let input = req.input;
    upload(s3, &input.bucket, &input.key, &input.upload_id)?;
    let files = s3.store.abort_upload(&input.upload_id).map_err(upload_error)?;
    files.iter().for_each(|f| s3.bodies.remove(f));
    Ok(S3Response::new(AbortMultipartUploadOutput::default()))
}

pub(crate) async fn list_parts(s3: &Nimbus3, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
    let input = req.input;
    upload(s3, &input.bucket, &input.key, &input.upload_id)?;
    let marker = input.part_number_marker.unwrap_or(0);
    let max = usize::try_from(input.max_parts.unwrap_or(1000).clamp(0, 1000)).unwrap_or(1000);
    let all: Vec<PartRecord> = s3
        .store
        .list_parts(&input.upload_id)
        .map_err(upload_error)?
        .into_iter()
        .filter(|p| p.number > marker)
        .collect();
    let truncated = all.len() > max;
    let page: Vec<PartRecord> = all.into_iter().take(max).collect();
    let next = page.last().map(|p| p.number);
    let parts = page
        .into_iter()
        .map(|p| {
            let c = serde_json::from_str::<Checksums>(&p.checksums).unwrap_or_default().to_dto();
            Part {
                part_number: Some(p.number),
                e_tag: Some(ETag::Strong(p.etag)),
                size: Some(p.size),
                last_modified: Some(timestamp(p.modified_ms)),
                checksum_crc32: c.checksum_crc32,
                checksum_crc32c: c.checksum_crc32c,
                checksum_crc64nvme: c.checksum_crc64nvme,
                checksum_sha1: c.checksum_sha1,
                checksum_sha256: c.checksum_sha256,
            }
        })
        .collect();
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(input.upload_id),
        part_number_marker: Some(marker),
        next_part_number_marker: next,
        max_parts: i32::try_from(max).ok(),
        is_truncated: Some(truncated),
        parts: Some(parts),
        owner: Some(owner()),
        ..Default::default()
    }))
}

pub(crate) async fn list_uploads(
    s3: &Nimbus3,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    let input = req.input;
    let prefix = input.prefix.clone().unwrap_or_default();
    let uploads = s3
        .store
        .list_uploads(&input.bucket)
        .map_err(store_error)?
        .into_iter()
        .filter(|u| u.key.starts_with(&prefix))
        .map(|u| MultipartUpload {
            key: Some(u.key),
            upload_id: Some(u.id),
            initiated: Some(timestamp(u.created_ms)),
            owner: Some(owner()),
            storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
            ..Default::default()
        })
        .collect();
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(input.bucket),
        prefix: input.prefix,
        max_uploads: Some(1000),
        is_truncated: Some(false),
        uploads: Some(uploads),
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(number: i32, size: i64) -> PartRecord {
        PartRecord {
            number,
            file: format!("f{number}"),
            size,
            etag: format!("{number:032x}"),
            modified_ms: 0,
            checksums: "{}".into(),
        }
    }

    #[test]
    fn completion_checks_order_etags_and_sizes() {
        let big = PART_BYTES_MIN;
        let uploaded = [part(1, big), part(2, big), part(3, 10)];
        let tag = |n: i32| Some(format!("\"{n:032x}\""));
        let ok = choose_parts(&[(1, tag(1)), (2, tag(2)), (3, tag(3))], &uploaded).unwrap();
        assert_eq!(ok.len(), 3);
        assert_eq!(choose_parts(&[(1, tag(1)), (3, tag(3))], &uploaded).unwrap().len(), 2);
        let code = |r: S3Result<Vec<&PartRecord>>| r.unwrap_err().code().as_str().to_owned();
        assert_eq!(code(choose_parts(&[(2, tag(2)), (1, tag(1))], &uploaded)), "InvalidPartOrder");
        assert_eq!(code(choose_parts(&[(1, tag(1)), (1, tag(1))], &uploaded)), "InvalidPartOrder");
        assert_eq!(code(choose_parts(&[(1, tag(2))], &uploaded)), "InvalidPart");
        assert_eq!(code(choose_parts(&[(4, None)], &uploaded)), "InvalidPart");
        assert_eq!(code(choose_parts(&[(3, tag(3)), (4, None)], &[part(3, 10), part(4, 1)])), "EntityTooSmall");
        assert_eq!(code(choose_parts(&[], &uploaded)), "MalformedXML");
    }

    #[test]
    fn multipart_etag_is_md5_of_part_md5s_with_count() {
        // Two parts whose MD5s are those of "a" and "b".
        let a = PartRecord { etag: hex::encode(md5::Md5::digest(b"a")), ..part(1, 1) };
        let b = PartRecord { etag: hex::encode(md5::Md5::digest(b"b")), ..part(2, 1) };
        let mut joined = md5::Md5::digest(b"a").to_vec();
        joined.extend(md5::Md5::digest(b"b"));
        assert_eq!(multipart_etag(&[&a, &b]), format!("{}-2", hex::encode(md5::Md5::digest(&joined))));
    }
}
