//! Marker paging, as every Lambda List operation does it: `MaxItems` bounds the page, the store is asked
//! for one item more than that to learn whether another page follows, and `NextMarker` names the last
//! item returned.

use serde_json::{Value, json};

use crate::api::ApiError;

/// `MaxItems` checked against the model's range (1..=`allowed_max`) and capped at the largest page
/// AWS returns (`page_max`), which is also the default.
pub fn page_size(max_items: Option<i64>, allowed_max: i64, page_max: usize) -> Result<usize, ApiError> {
    match max_items {
        None => Ok(page_max),
        Some(n) if (1..=allowed_max).contains(&n) => Ok((n as usize).min(page_max)),
        Some(n) => Err(ApiError::invalid(format!("Invalid MaxItems: {n}; it must be between 1 and {allowed_max}"))),
    }
}

/// Turns `items` (fetched with a limit of `limit + 1`) into the response body: `{key: [...]}` plus
/// `NextMarker` when there is more.
pub fn page_json<T>(
    mut items: Vec<T>,
    limit: usize,
    key: &str,
    marker: impl Fn(&T) -> String,
    render: impl Fn(&T) -> Value,
) -> Value {
    let more = items.len() > limit;
    items.truncate(limit);
    let mut out = json!({ key: items.iter().map(render).collect::<Vec<_>>() });
    if more && let Some(last) = items.last() {
        out["NextMarker"] = marker(last).into();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_markers() {
        let body = page_json(vec![1, 2, 3], 2, "Items", |n| n.to_string(), |n| json!(n));
        assert_eq!(body, json!({ "Items": [1, 2], "NextMarker": "2" }));
        let last = page_json(vec![1, 2], 2, "Items", |n| n.to_string(), |n| json!(n));
        assert_eq!(last, json!({ "Items": [1, 2] }));
        assert_eq!(page_size(None, 10_000, 50).unwrap(), 50);
        assert_eq!(page_size(Some(500), 10_000, 50).unwrap(), 50);
        assert_eq!(page_size(Some(3), 10_000, 50).unwrap(), 3);
        assert!(page_size(Some(0), 10_000, 50).is_err());
    }
}
