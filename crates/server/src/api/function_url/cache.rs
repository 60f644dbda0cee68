//! What serving a URL reads on every request — its config and, for `NONE` URLs, its compiled resource
//! policy — kept in memory while `nimbus.db` is unchanged (the store's generation, as its catalog of
//! versions does), so a warm URL request makes no SQLite read and parses no policy.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use nimbus_model::policy::{PolicyDocument, PolicyKind};
use nimbus_model::{FunctionName, UrlAuthType, UrlId, policy_document};
use nimbus_store::{PolicyScope, Store, StoreError, UrlConfig};

/// Entries kept per generation; past it the cache starts over (bounds memory whatever the URL count).
const ENTRIES_MAX: usize = 4096;

/// One URL as a request needs it.
#[derive(Debug, Clone)]
pub struct ResolvedUrl {
    pub config: Arc<UrlConfig>,
    /// The resource policy of a `NONE` URL's function or alias; `None` when it has no statement (or,
    /// logged, when a stored one does not parse): nobody may call it.
    pub policy: Option<PolicyDocument>,
}

#[derive(Default)]
pub struct UrlCache {
    state: Mutex<(u64, HashMap<UrlId, ResolvedUrl>)>,
}

impl UrlCache {
    pub fn resolve(&self, store: &Store, id: &UrlId) -> Result<Option<ResolvedUrl>, StoreError> {
        let generation = store.meta_generation();
        {
            let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if state.0 == generation
                && let Some(hit) = state.1.get(id)
            {
                return Ok(Some(hit.clone()));
            }
        }
        let Some(config) = store.url_config_by_id(id)? else { return Ok(None) };
        let policy = match config.auth_type {
            UrlAuthType::AwsIam => None,
            UrlAuthType::None => load_policy(store, &config)?,
        };
        let resolved = ResolvedUrl { config: Arc::new(config), policy };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // A newer generation was seen since this one was read: what was read may predate a write.
        if generation >= state.0 {
            if generation > state.0 || state.1.len() >= ENTRIES_MAX {
                state.1.clear();
                state.0 = generation;
            }
            state.1.insert(id.clone(), resolved.clone());
        }
        Ok(Some(resolved))
    }
}

fn load_policy(store: &Store, config: &UrlConfig) -> Result<Option<PolicyDocument>, StoreError> {
    let scope = match &config.alias {
        Some(a) => PolicyScope::Alias(a.clone()),
        None => PolicyScope::Function,
    };
    function_policy(store, &config.function, &scope)
}

/// The compiled resource policy of a function, version or alias; `None` when it has no statement
/// (or, logged, when a stored one does not parse): no other principal may call it. Function URLs
/// and HTTP APIs read it the same way.
pub fn function_policy(
    store: &Store,
    function: &FunctionName,
    scope: &PolicyScope,
) -> Result<Option<PolicyDocument>, StoreError> {
    let policy = match store.function_policy(function, scope) {
        Ok(Some(p)) => p,
        Ok(None) | Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let text = policy_document(policy.statements.iter().map(String::as_str));
    match PolicyDocument::parse(PolicyKind::Resource, &text) {
        Ok(document) => Ok(Some(document)),
        Err(e) => {
            tracing::warn!(%function, ?scope, error = %e, "a stored function policy does not parse");
            Ok(None)
        }
    }
}
