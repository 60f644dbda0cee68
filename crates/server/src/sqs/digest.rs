//! The MD5 digests SQS returns and SDKs verify (the Java, Go and JavaScript SDKs recompute them and
//! reject a response whose digests differ).
//!
//! `MD5OfMessageBody` is the MD5 of the body's UTF-8 bytes. `MD5OfMessageAttributes` (and
//! `MD5OfMessageSystemAttributes`) is the MD5 of the attributes sorted by name, each encoded as: the
//! name, the data type, one transport byte (1 for String and Number types, 2 for Binary), then the value;
//! every name, type and value is preceded by its length as a 4-byte big-endian integer.

use md5::{Digest, Md5};

use super::AttributeValue;

pub fn body(body: &str) -> String {
    hex::encode(Md5::digest(body.as_bytes()))
}

fn put(hasher: &mut Md5, bytes: &[u8]) {
    hasher.update((bytes.len() as u32).to_be_bytes());
    hasher.update(bytes);
}

/// `None` for no attributes (SQS then leaves the digest out).
pub fn attributes<'a>(attrs: impl IntoIterator<Item = (&'a String, &'a AttributeValue)>) -> Option<String> {
    let mut sorted: Vec<_> = attrs.into_iter().collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut hasher = Md5::new();
    for (name, value) in sorted {
        put(&mut hasher, name.as_bytes());
        put(&mut hasher, value.data_type.as_bytes());
        match (&value.string_value, &value.binary_value) {
            (Some(s), _) => {
                hasher.update([1u8]);
                put(&mut hasher, s.as_bytes());
            }
            (None, Some(b)) => {
                hasher.update([2u8]);
                put(&mut hasher, b);
            }
            (None, None) => {}
        }
    }
    Some(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn body_digest() {
        // RFC 1321's test suite.
        assert_eq!(body(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(body("abc"), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn attribute_digest_follows_the_length_prefixed_encoding() {
        let mut attrs = BTreeMap::new();
        attrs.insert(
            "b".to_string(),
            AttributeValue { data_type: "Binary".into(), string_value: None, binary_value: Some(vec![1, 2]) },
        );
        attrs.insert(
            "a".to_string(),
            AttributeValue { data_type: "String".into(), string_value: Some("x".into()), binary_value: None },
        );
        let mut expected = Vec::new();
        for part in [&b"a"[..], b"String"] {
            expected.extend((part.len() as u32).to_be_bytes());
            expected.extend(part);
        }
        expected.push(1);
        expected.extend(1u32.to_be_bytes());
        expected.extend(b"x");
        for part in [&b"b"[..], b"Binary"] {
            expected.extend((part.len() as u32).to_be_bytes());
            expected.extend(part);
        }
        expected.push(2);
        expected.extend(2u32.to_be_bytes());
        expected.extend([1, 2]);
        assert_eq!(attributes(&attrs), Some(hex::encode(Md5::digest(&expected))));
        assert_eq!(attributes(&BTreeMap::new()), None);
    }
}
