//! Reserved concurrency per function (PutFunctionConcurrency). Kept in a table of its own so that the
//! invoke path, which reads reservations once at start and then hears of changes, never joins it.

use nimbus_model::FunctionName;
use rusqlite::{OptionalExtension as _, params};

use crate::db::Store;
use crate::error::{Result, StoreError};

pub(crate) const META_CONCURRENCY_V2: &str = "
CREATE TABLE function_concurrency (
    function  TEXT PRIMARY KEY NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    reserved  INTEGER NOT NULL CHECK (reserved >= 0)
) STRICT;
";

impl Store {
    /// The function's reserved concurrency, if it has one.
    pub fn reserved_concurrency(&self, name: &FunctionName) -> Result<Option<u32>> {
        self.meta.read(|tx| {
            tx.prepare_cached("SELECT reserved FROM function_concurrency WHERE function = ?1")
                .and_then(|mut stmt| stmt.query_row([name.as_str()], |row| row.get::<_, i64>(0)).optional())
                .map(|r| r.map(|n| n as u32))
                .map_err(StoreError::sqlite("read reserved concurrency"))
        })
    }

    /// Sets or (with `None`) removes the function's reserved concurrency.
    pub fn set_reserved_concurrency(&self, name: &FunctionName, reserved: Option<u32>) -> Result<()> {
        self.meta.write(|tx| {
            let exists = tx
                .prepare_cached("SELECT 1 FROM functions WHERE name = ?1")
                .and_then(|mut stmt| stmt.query_row([name.as_str()], |_| Ok(())).optional())
                .map_err(StoreError::sqlite("find function"))?;
            if exists.is_none() {
                return Err(StoreError::NotFound { what: "function", name: name.to_string() });
            }
            let result = match reserved {
                Some(n) => tx
                    .prepare_cached(
                        "INSERT INTO function_concurrency (function, reserved) VALUES (?1, ?2)
                     ON CONFLICT (function) DO UPDATE SET reserved = excluded.reserved",
                    )
                    .and_then(|mut stmt| stmt.execute(params![name.as_str(), i64::from(n)])),
                None => tx
                    .prepare_cached("DELETE FROM function_concurrency WHERE function = ?1")
                    .and_then(|mut stmt| stmt.execute([name.as_str()])),
            };
            result.map(|_| ()).map_err(StoreError::sqlite("write reserved concurrency"))
        })
    }

    /// Every reservation, for the pool to start with.
    pub fn all_reserved_concurrency(&self) -> Result<Vec<(String, u32)>> {
        self.meta.read(|tx| {
            tx.prepare_cached("SELECT function, reserved FROM function_concurrency ORDER BY function")
                .and_then(|mut stmt| {
                    stmt.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u32)))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(StoreError::sqlite("list reserved concurrency"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CodeDigest, CodeInfo, NewFunction};
    use nimbus_model::*;

    fn new_function(name: &str) -> NewFunction {
        NewFunction {
            name: FunctionName::parse(name).unwrap(),
            config: FunctionConfig {
                runtime: Runtime::parse("python3.12").unwrap(),
                handler: Handler::parse("app.handler").unwrap(),
                role: RoleArn::parse("arn:aws:iam::123456789012:role/r").unwrap(),
                memory: MemoryMb::default(),
                timeout: TimeoutSecs::default(),
                ephemeral_storage: EphemeralStorageMb::default(),
                environment: EnvVars::default(),
                description: Description::default(),
                architecture: Architecture::default(),
                logging: Default::default(),
            },
            code: CodeInfo { digest: CodeDigest::of(b"zip"), size_bytes: 3 },
            tags: Tags::default(),
            publish: false,
            now_ms: 1,
        }
    }

    #[test]
    fn reservations_are_set_listed_removed_and_go_with_the_function() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let name = FunctionName::parse("f").unwrap();
        assert!(matches!(store.set_reserved_concurrency(&name, Some(3)), Err(StoreError::NotFound { .. })));
        store.create_function(new_function("f")).unwrap();
        assert_eq!(store.reserved_concurrency(&name).unwrap(), None);
        store.set_reserved_concurrency(&name, Some(3)).unwrap();
        store.set_reserved_concurrency(&name, Some(0)).unwrap();
        assert_eq!(store.reserved_concurrency(&name).unwrap(), Some(0));
        assert_eq!(store.all_reserved_concurrency().unwrap(), vec![("f".to_owned(), 0)]);
        store.delete_function(&name, None).unwrap();
        assert!(store.all_reserved_concurrency().unwrap().is_empty());
    }
}
