//! The echo functions the benchmark deploys, one per runtime family. Each returns its event
//! unchanged and does nothing else, so that an invocation's time is the platform's.
//!
//! - `provided.al2023`: the `echo-bootstrap` binary of this crate, zipped as `bootstrap` (0755);
//! - `python3.12`: `def handler(e, c): return e`;
//! - `nodejs20.x`: `exports.handler = async (e) => e;`.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use zip::write::SimpleFileOptions;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Provided,
    Python,
    Node,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Provided => "provided.al2023 echo",
            Kind::Python => "python3.12 echo",
            Kind::Node => "nodejs20.x echo",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Kind::Provided => "provided",
            Kind::Python => "python",
            Kind::Node => "node",
        }
    }
}

/// What CreateFunction needs.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub kind: Kind,
    pub name: String,
    pub runtime: &'static str,
    pub handler: &'static str,
    pub zip: Vec<u8>,
}

pub const PYTHON_SOURCE: &str = "def handler(e, c): return e\n";
pub const NODE_SOURCE: &str = "exports.handler = async (e) => e;\n";

pub fn spec(kind: Kind, echo_bootstrap: &Path) -> anyhow::Result<FunctionSpec> {
    let (runtime, handler, zip) = match kind {
        Kind::Provided => {
            let binary = std::fs::read(echo_bootstrap).with_context(|| {
                format!(
                    "read the echo bootstrap {} (build it with `cargo build --release -p nimbus-bench`)",
                    echo_bootstrap.display()
                )
            })?;
            ("provided.al2023", "bootstrap", zip_one("bootstrap", &binary, 0o755)?)
        }
        Kind::Python => ("python3.12", "app.handler", zip_one("app.py", PYTHON_SOURCE.as_bytes(), 0o644)?),
        Kind::Node => ("nodejs20.x", "index.handler", zip_one("index.js", NODE_SOURCE.as_bytes(), 0o644)?),
    };
    Ok(FunctionSpec { kind, name: format!("bench-{}-echo", kind.key()), runtime, handler, zip })
}

/// A zip holding one file with the given Unix mode.
pub fn zip_one(name: &str, contents: &[u8], mode: u32) -> anyhow::Result<Vec<u8>> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated).unix_permissions(mode);
    writer.start_file(name, options).with_context(|| format!("zip {name}"))?;
    writer.write_all(contents).with_context(|| format!("zip {name}"))?;
    let cursor = writer.finish().context("finish the zip")?;
    Ok(cursor.into_inner())
}
