//! The HTTP APIs serving reads on every request, kept in memory while `nimbus.db` is unchanged (the
//! store's generation, as `function_url::UrlCache` does), so a warm request neither reads SQLite nor
//! parses the API's document. Misses (unknown ids) are not kept: they cost one indexed read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use nimbus_model::http_api::HttpApi;
use nimbus_store::{Store, StoreError};

/// APIs kept per generation; past it the cache starts over (bounds memory whatever the API count).
const ENTRIES_MAX: usize = 1024;

#[derive(Default)]
pub struct ApiCache {
    state: Mutex<(u64, HashMap<String, Arc<HttpApi>>)>,
}

impl ApiCache {
    /// The API `api_id`, or `None` when there is none.
    pub fn resolve(&self, store: &Store, api_id: &str) -> Result<Option<Arc<HttpApi>>, StoreError> {
        let generation = store.meta_generation();
        {
            let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if state.0 == generation
                && let Some(hit) = state.1.get(api_id)
            {
                return Ok(Some(hit.clone()));
            }
        }
        let api = match store.get_http_api(api_id) {
            Ok(api) => Arc::new(api),
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // A newer generation was seen since this one was read: what was read may predate a write.
        if generation >= state.0 {
            if generation > state.0 || state.1.len() >= ENTRIES_MAX {
                state.1.clear();
                state.0 = generation;
            }
            state.1.insert(api_id.to_owned(), api.clone());
        }
        Ok(Some(api))
    }
}
