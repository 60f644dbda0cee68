//! The function versions and aliases the invoke path reads on every invocation, kept in memory while
//! `nimbus.db` is unchanged. Reading them from SQLite (a pooled connection, a transaction, a row parsed
//! back into validated types) cost about a tenth of the server's CPU per warm invoke.
//!
//! Invalidation is by generation, not by naming what changed: every write transaction on `nimbus.db`
//! bumps the database's generation once it is over ([`crate::db::Db::write`]), and the cache drops all it
//! holds when it sees a new one. So no write path can forget to invalidate, whatever table it touches;
//! the price is that unrelated writes (the async event journal) empty the cache too, which only costs
//! the reads that were being made anyway. A lookup reads the generation before it queries, so a record
//! read while a write was committing is filed under the old generation and never served after it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use nimbus_model::FunctionName;

use crate::aliases::AliasRecord;
use crate::db::Store;
use crate::error::Result;
use crate::functions::{FunctionRecord, VersionId};

/// Entries kept per generation; past it the cache starts over, which bounds its memory whatever the
/// number of functions and versions invoked.
const CATALOG_ENTRIES_MAX: usize = 4096;

#[derive(Default)]
pub(crate) struct Catalog {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    generation: u64,
    functions: HashMap<(FunctionName, VersionId), Arc<FunctionRecord>>,
    aliases: HashMap<(FunctionName, String), Arc<AliasRecord>>,
}

impl State {
    /// The state for `generation`, emptied first if it was filled under an older one; `None` for a
    /// caller whose generation is already older than what the cache holds (a write has committed since
    /// it looked), which must neither read nor file anything.
    fn at(&mut self, generation: u64) -> Option<&mut State> {
        if generation < self.generation {
            return None;
        }
        if generation > self.generation {
            self.functions.clear();
            self.aliases.clear();
            self.generation = generation;
        }
        Some(self)
    }

    fn make_room(&mut self) {
        if self.functions.len() + self.aliases.len() >= CATALOG_ENTRIES_MAX {
            self.functions.clear();
            self.aliases.clear();
        }
    }
}

impl Catalog {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn function(
        &self,
        generation: u64,
        name: &FunctionName,
        version: VersionId,
    ) -> Option<Arc<FunctionRecord>> {
        // Keyed by an owned name; a lookup clones it, which is far cheaper than the query it replaces.
        self.state().at(generation)?.functions.get(&(name.clone(), version)).cloned()
    }

    pub(crate) fn keep_function(&self, generation: u64, record: Arc<FunctionRecord>) {
        let mut state = self.state();
        let Some(state) = state.at(generation) else { return };
        state.make_room();
        state.functions.insert((record.name.clone(), record.version), record);
    }

    pub(crate) fn alias(&self, generation: u64, function: &FunctionName, name: &str) -> Option<Arc<AliasRecord>> {
        self.state().at(generation)?.aliases.get(&(function.clone(), name.to_owned())).cloned()
    }

    pub(crate) fn keep_alias(&self, generation: u64, record: Arc<AliasRecord>) {
        let mut state = self.state();
        let Some(state) = state.at(generation) else { return };
        state.make_room();
        state.aliases.insert((record.function.clone(), record.name.clone()), record);
    }
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state();
        f.debug_struct("Catalog")
            .field("generation", &state.generation)
            .field("functions", &state.functions.len())
            .field("aliases", &state.aliases.len())
            .finish()
    }
}

impl Store {
    /// [`Store::get_function`], answered from memory when nothing was written to `nimbus.db` since the
    /// same version was last read. For the invoke path, which reads it on every invocation.
    pub fn current_function(&self, name: &FunctionName, version: VersionId) -> Result<Arc<FunctionRecord>> {
        let generation = self.meta.generation();
        if let Some(record) = self.catalog.function(generation, name, version) {
            return Ok(record);
        }
        let record = Arc::new(self.get_function(name, &version)?);
        self.catalog.keep_function(generation, record.clone());
        Ok(record)
    }

    /// [`Store::get_alias`], answered from memory as [`Store::current_function`] is.
    pub fn current_alias(&self, function: &FunctionName, name: &str) -> Result<Arc<AliasRecord>> {
        let generation = self.meta.generation();
        if let Some(record) = self.catalog.alias(generation, function, name) {
            return Ok(record);
        }
        let record = Arc::new(self.get_alias(function, name)?);
        self.catalog.keep_alias(generation, record.clone());
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alias(version: u32) -> Arc<AliasRecord> {
        Arc::new(AliasRecord {
            function: FunctionName::parse("f").unwrap(),
            name: "live".to_owned(),
            version: VersionId::Published(nimbus_model::Version::new(version).unwrap()),
            description: Default::default(),
            routing: None,
            revision_id: format!("r{version}"),
        })
    }

    #[test]
    fn a_record_read_before_a_write_is_never_served_after_it() {
        let catalog = Catalog::default();
        let f = FunctionName::parse("f").unwrap();
        catalog.keep_alias(1, alias(1));
        assert_eq!(catalog.alias(1, &f, "live").unwrap().version, alias(1).version);
        // A write finished (generation 2) while a slow reader still held what it read under 1.
        assert!(catalog.alias(2, &f, "live").is_none());
        catalog.keep_alias(1, alias(1));
        assert!(catalog.alias(2, &f, "live").is_none());
        catalog.keep_alias(2, alias(2));
        assert_eq!(catalog.alias(2, &f, "live").unwrap().version, alias(2).version);
        // A reader that looked before the cache moved on gets nothing, and cannot roll it back.
        assert!(catalog.alias(1, &f, "live").is_none());
        assert_eq!(catalog.alias(2, &f, "live").unwrap().version, alias(2).version);
    }
}
