//! How each runtime family is started. `python3.x` and `nodejs*` run the host's interpreters with
//! bootstraps of ours (embedded in the binary, written to the data dir at start); `provided.*` executes
//! the zip's `bootstrap`. This module also writes the environment-variable contract Lambda defines.
//!
//! Paths handed to a function are the paths *it* sees: the sandbox's [`PathView`] maps the code
//! directory (`/var/task` in the namespace tier) and the bootstraps directory (`/var/runtime`). The
//! interpreters' own directories (Python's prefixes and `sys.path`, node's prefix) are listed in every
//! plan's `ro_paths`, so a tier with its own root makes them visible read-only where they are.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use nimbus_model::{Runtime, RuntimeFamily};
use nimbus_sandbox::{PathView, Prestart};
use nimbus_store::FunctionRecord;

use crate::environment::LaunchPlan;
use crate::pool::PlanError;

const PYTHON_BOOTSTRAP: &str = include_str!("../../../runtimes/python/bootstrap.py");
const NODE_BOOTSTRAP: &str = include_str!("../../../runtimes/node/bootstrap.js");

/// A host interpreter, resolved once at start (a shim such as pyenv's costs tens of milliseconds per
/// cold start, so the real executable is used).
#[derive(Debug, Clone)]
pub struct Interpreter {
    pub path: PathBuf,
    pub version: String,
    /// Directories the interpreter reads beyond the system ones (its prefixes, its `sys.path`).
    pub dirs: Vec<PathBuf>,
    /// Python's `sys.path` as probed on the host (empty for node).
    pub sys_path: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimesError {
    #[error("write runtime bootstrap {path}: {source}")]
    WriteBootstrap { path: PathBuf, source: std::io::Error },
}

pub struct Runtimes {
    dir: PathBuf,
    python: Option<Interpreter>,
    node: Option<Interpreter>,
    /// Where Nimbus installs boto3 for Python functions when the host interpreter lacks it.
    python_sdk: PathBuf,
    region: String,
    account: String,
    endpoint_url: String,
    /// How the sandbox shows host paths to functions.
    view: PathView,
    /// Every interpreter's directories: visible to every function, as the host's runtimes are.
    ro_paths: Vec<PathBuf>,
}

impl Runtimes {
    pub async fn discover(
        data_dir: &Path,
        region: &str,
        account: &str,
        endpoint_url: &str,
        view: PathView,
    ) -> Result<Self, RuntimesError> {
        let dir = data_dir.join("runtimes");
        for (rel, text) in [("python/bootstrap.py", PYTHON_BOOTSTRAP), ("node/bootstrap.js", NODE_BOOTSTRAP)] {
            let path = dir.join(rel);
            let write = || -> std::io::Result<()> {
                std::fs::create_dir_all(path.parent().unwrap_or(&dir))?;
                std::fs::write(&path, text)
            };
            write().map_err(|source| RuntimesError::WriteBootstrap { path: path.clone(), source })?;
        }
        // -E -s: the function's interpreter sees neither PYTHON* variables nor a user site directory.
        let python = probe(
            "python3",
            &[
                "-E",
                "-s",
                "-c",
                "import sys; print(sys.executable); print('%d.%d.%d' % sys.version_info[:3]); \
                 print('\\0'.join([sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix] \
                 + [p for p in sys.path if p.startswith('/')]))",
            ],
        )
        .await;
        let node = probe(
            "node",
            &[
                "-e",
                "const p = require('path'); console.log(process.execPath); console.log(process.versions.node); \
                 console.log(p.dirname(p.dirname(require('fs').realpathSync(process.execPath))))",
            ],
        )
        .await;
        match &python {
            Some(p) => {
                tracing::info!(path = %p.path.display(), version = %p.version, "python runtimes use the host interpreter")
            }
            None => tracing::warn!("no python3 on PATH: python3.x functions cannot run"),
        }
        match &node {
            Some(n) => {
                tracing::info!(path = %n.path.display(), version = %n.version, "nodejs runtimes use the host interpreter")
            }
            None => tracing::warn!("no node on PATH: nodejs functions cannot run"),
        }
        let python_sdk = dir.join("python-sdk");
        if let Some(p) = &python {
            tokio::spawn(ensure_boto3(p.path.clone(), python_sdk.clone()));
        }
        let mut ro_paths: Vec<PathBuf> = Vec::new();
        for interpreter in python.iter().chain(node.iter()) {
            let exe_dir = interpreter.path.parent().map(Path::to_path_buf);
            for d in interpreter.dirs.iter().chain(exe_dir.iter()) {
                if !ro_paths.contains(d) {
                    ro_paths.push(d.clone());
                }
            }
        }
        Ok(Self {
            dir,
            python,
            node,
            python_sdk,
            region: region.to_owned(),
            account: account.to_owned(),
            endpoint_url: endpoint_url.to_owned(),
            view,
            ro_paths,
        })
    }

    /// Says where a function's declared runtime version differs from the host's interpreter.
    pub fn version_note(&self, runtime: Runtime) -> Option<String> {
        let (declared, host) = match runtime {
            Runtime::Python { minor } => (format!("3.{minor}"), self.python.as_ref()?),
            Runtime::Node { major } => (major.to_string(), self.node.as_ref()?),
            _ => return None,
        };
        (!host.version.starts_with(&format!("{declared}.")))
            .then(|| format!("{runtime} runs on the host's interpreter, version {}", host.version))
    }

    /// The launch plan for one function version whose code is unpacked at `code_dir`.
    pub fn plan(&self, record: &FunctionRecord, code_dir: PathBuf) -> Result<LaunchPlan, PlanError> {
        let config = &record.config;
        let runtime = config.runtime;
        let task_root = self.view.code(&code_dir);
        let runtime_dir = self.view.runtime(&self.dir);
        let (program, args, mut env) = match runtime.family() {
            RuntimeFamily::Python => {
                let python = self.python.as_ref().ok_or_else(|| unavailable(runtime, "python3"))?;
                let mut env = family_env(RuntimeFamily::Python, &task_root);
                if self.python_sdk.join("boto3").is_dir() {
                    env.push((
                        "NIMBUS_PYTHON_SDK_PATH".to_owned(),
                        runtime_dir.join("python-sdk").display().to_string(),
                    ));
                }
                // Host paths the sandbox shows elsewhere (under the host's /tmp) are still named by their
                // host path in the files that put them on sys.path (a .pth, pyvenv.cfg): the bootstrap
                // appends them as seen inside.
                let moved: Vec<String> = python
                    .sys_path
                    .iter()
                    .filter(|p| self.view.host(p) != **p)
                    .map(|p| self.view.host(p).display().to_string())
                    .collect();
                if !moved.is_empty() {
                    env.push(("NIMBUS_PYTHON_HOST_PATH".to_owned(), moved.join(":")));
                }
                let bootstrap = runtime_dir.join("python/bootstrap.py");
                (python.path.clone(), vec!["-u".into(), bootstrap.into_os_string()], env)
            }
            RuntimeFamily::Node => {
                let node = self.node.as_ref().ok_or_else(|| unavailable(runtime, "node"))?;
                let env = family_env(RuntimeFamily::Node, &task_root);
                (node.path.clone(), vec![runtime_dir.join("node/bootstrap.js").into()], env)
            }
            RuntimeFamily::Provided => {
                if !is_executable(&code_dir.join("bootstrap")) {
                    return Err(PlanError::InvalidEntrypoint);
                }
                (task_root.join("bootstrap"), Vec::new(), Vec::new())
            }
        };
        let name = record.name.as_str();
        let version = record.version.to_string();
        let mut put = |k: &str, v: String| env.push((k.to_owned(), v));
        put("_HANDLER", config.handler.as_str().to_owned());
        put("LAMBDA_TASK_ROOT", task_root.display().to_string());
        put("LAMBDA_RUNTIME_DIR", runtime_dir.display().to_string());
        put("AWS_EXECUTION_ENV", format!("AWS_Lambda_{runtime}"));
        put("AWS_LAMBDA_FUNCTION_NAME", name.to_owned());
        put("AWS_LAMBDA_FUNCTION_VERSION", version.clone());
        put("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", config.memory.to_string());
        put("AWS_LAMBDA_LOG_GROUP_NAME", crate::logs::group_name(name));
        put("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned());
        put("AWS_REGION", self.region.clone());
        put("AWS_DEFAULT_REGION", self.region.clone());
        put("AWS_ENDPOINT_URL", self.endpoint_url.clone());
        put("AWS_ACCOUNT_ID", self.account.clone());
        for (k, v) in DEFAULT_ENV {
            put(k, (*v).to_owned());
        }
        for (k, v) in config.environment.iter() {
            put(k, v.to_owned());
        }
        let prestart = self.prestart(runtime.family(), &program, &args, &env);
        Ok(LaunchPlan {
            function_name: name.to_owned(),
            version,
            memory_mb: config.memory.get(),
            ephemeral_storage_mb: config.ephemeral_storage.get(),
            program,
            args,
            cwd: task_root,
            code_dir,
            runtime_dir: self.dir.clone(),
            ro_paths: self.ro_paths.clone(),
            env,
            // The invoke path sets the cap per attempt; this is the first attempt's.
            init_timeout: std::time::Duration::from_millis(nimbus_model::limits::INIT_TIMEOUT_MS),
            ahead_of_time: false,
            prestart,
            network: record.tags.network_access(),
            role: config.role.as_str().to_owned(),
        })
    }

    /// The runtime started ahead of demand that a plan with this program, arguments and environment
    /// may take: for the interpreted families, when the task root is the same for every function
    /// (the sandbox maps it) and the function's environment agrees with the interpreter's on every
    /// variable the interpreter reads while it starts. The rest of the environment reaches it later.
    fn prestart(
        &self,
        family: RuntimeFamily,
        program: &Path,
        args: &[std::ffi::OsString],
        env: &[(String, String)],
    ) -> Option<Prestart> {
        if family == RuntimeFamily::Provided || self.view.task_root.is_none() {
            return None;
        }
        let shared: Vec<(String, String)> = env.iter().filter(|(k, _)| read_at_start(family, k)).cloned().collect();
        // The last value of a key wins in a fresh interpreter's view as in the pre-started one's; a
        // key given twice at start is told apart only by getenv, so such plans start fresh.
        let mut keys: Vec<&str> = shared.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        if keys.len() != shared.len() || shared != self.prestart_env(family) {
            return None;
        }
        Some(Prestart {
            program: program.to_owned(),
            args: args.to_vec(),
            env: shared.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
            runtime_dir: self.dir.clone(),
            ro_paths: self.ro_paths.clone(),
        })
    }

    /// What every plan of `family` sets among the variables its interpreter reads at start, in the
    /// order `plan` writes them.
    fn prestart_env(&self, family: RuntimeFamily) -> Vec<(String, String)> {
        let mut env = family_env(family, &self.view.code(Path::new("")));
        for (k, v) in DEFAULT_ENV {
            if read_at_start(family, k) {
                env.push(((*k).to_owned(), (*v).to_owned()));
            }
        }
        env
    }
}

/// Variables every plan sets after Lambda's own, before the function's (which may override them).
const DEFAULT_ENV: &[(&str, &str)] =
    &[("TZ", ":UTC"), ("LANG", "en_US.UTF-8"), ("PATH", "/usr/local/bin:/usr/bin:/bin:/opt/bin")];

/// Whether `family`'s interpreter (or the C library under it) reads `key` while it starts, before
/// the bootstrap could hand it the function's environment: locale, time zone, home (Python's user
/// site), the loader and allocator, and the interpreter's own options. The bootstrap itself reads
/// its variables only after that.
fn read_at_start(family: RuntimeFamily, key: &str) -> bool {
    const COMMON: &[&str] = &["LANG", "LANGUAGE", "TZ", "HOME", "GLIBC_TUNABLES"];
    const COMMON_PREFIXES: &[&str] = &["LC_", "LD_", "MALLOC_"];
    let prefixes: &[&str] = match family {
        RuntimeFamily::Python => &["PYTHON"],
        RuntimeFamily::Node => &["NODE_", "UV_", "OPENSSL_", "SSL_CERT_"],
        RuntimeFamily::Provided => return false,
    };
    COMMON.contains(&key) || COMMON_PREFIXES.iter().chain(prefixes).any(|p| key.starts_with(p))
}

fn unavailable(runtime: Runtime, program: &str) -> PlanError {
    PlanError::RuntimeUnavailable(format!("{runtime} needs `{program}` on the Nimbus host, and there is none"))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs `program args…` and reads three lines: the interpreter's path, its version, and the
/// directories it reads (NUL-separated).
/// The variables Nimbus gives every runtime of `family` before the Lambda-defined ones; `plan` and
/// `prestart_env` both start from them, so a pre-started interpreter sees what a fresh one would.
fn family_env(family: RuntimeFamily, task_root: &Path) -> Vec<(String, String)> {
    match family {
        RuntimeFamily::Python => vec![("PYTHONUNBUFFERED".to_owned(), "1".to_owned())],
        RuntimeFamily::Node => vec![("NODE_PATH".to_owned(), task_root.join("node_modules").display().to_string())],
        RuntimeFamily::Provided => Vec::new(),
    }
}

async fn probe(program: &str, args: &[&str]) -> Option<Interpreter> {
    let output = tokio::process::Command::new(program).args(args).stdin(Stdio::null()).output().await.ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let path = PathBuf::from(lines.next()?.trim());
    let version = lines.next()?.trim().to_owned();
    let listed: Vec<&str> = lines.next().unwrap_or_default().split('\0').collect();
    let existing = |d: &&&str| d.starts_with('/') && Path::new(**d).is_dir();
    let dirs = listed.iter().filter(existing).map(PathBuf::from).collect();
    // Python lists its four prefixes first, then sys.path; node lists one prefix.
    let sys_path = listed.iter().skip(4).filter(existing).map(PathBuf::from).collect();
    Some(Interpreter { path, version, dirs, sys_path })
}

/// Lambda's Python runtimes ship boto3; so does Nimbus, installing it once next to its bootstrap when
/// the host interpreter cannot import it. Failing (say, offline) only means functions cannot import it.
async fn ensure_boto3(python: PathBuf, target: PathBuf) {
    // kill_on_drop: a server stopping right after start must not leave these behind.
    let importable = tokio::process::Command::new(&python)
        .args(["-c", "import boto3"])
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if importable || target.join("boto3").is_dir() {
        return;
    }
    tracing::info!(target = %target.display(), "installing boto3 for python functions");
    let status = tokio::process::Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target"])
        .arg(&target)
        .arg("boto3")
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .status()
        .await;
    match status {
        Ok(s) if s.success() => tracing::info!("boto3 installed for python functions"),
        other => tracing::warn!(?other, "could not install boto3; python functions cannot import it"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtimes(view: PathView) -> Runtimes {
        let python = Interpreter {
            path: "/usr/bin/python3".into(),
            version: "3.12.1".into(),
            dirs: Vec::new(),
            sys_path: Vec::new(),
        };
        Runtimes {
            dir: "/data/runtimes".into(),
            python: Some(python),
            node: None,
            python_sdk: "/data/runtimes/python-sdk".into(),
            region: "us-east-1".into(),
            account: "000000000000".into(),
            endpoint_url: "http://127.0.0.1:9001".into(),
            view,
            ro_paths: vec!["/opt/python".into()],
        }
    }

    fn namespace_view() -> PathView {
        PathView {
            task_root: Some("/var/task".into()),
            runtime_dir: Some("/var/runtime".into()),
            host_tmp: Some("/var/host-tmp".into()),
        }
    }

    /// A plan's environment as `plan` writes it: the family's, Lambda's, the defaults, the function's.
    fn env(family: RuntimeFamily, function: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = match family {
            RuntimeFamily::Python => vec![("PYTHONUNBUFFERED".into(), "1".into())],
            _ => vec![("NODE_PATH".into(), "/var/task/node_modules".into())],
        };
        env.push(("_HANDLER".into(), "app.handler".into()));
        env.push(("AWS_REGION".into(), "us-east-1".into()));
        env.extend(DEFAULT_ENV.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        env.extend(function.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        env
    }

    fn prestart(r: &Runtimes, family: RuntimeFamily, function: &[(&str, &str)]) -> Option<Prestart> {
        r.prestart(family, Path::new("/usr/bin/python3"), &["-u".into()], &env(family, function))
    }

    #[test]
    fn a_plain_function_may_take_a_prestarted_interpreter_started_with_what_it_reads_at_start() {
        let r = runtimes(namespace_view());
        let p = prestart(&r, RuntimeFamily::Python, &[("TABLE", "t1"), ("PATH", "/opt/bin:/usr/bin")]).unwrap();
        let env: Vec<(String, String)> =
            p.env.iter().map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned())).collect();
        assert_eq!(
            env,
            [("PYTHONUNBUFFERED", "1"), ("TZ", ":UTC"), ("LANG", "en_US.UTF-8")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(p.ro_paths, vec![PathBuf::from("/opt/python")]);
        assert_eq!(p.runtime_dir, PathBuf::from("/data/runtimes"));
        // Another function of the family gets the same kind (one pool of slots).
        assert_eq!(Some(p), prestart(&r, RuntimeFamily::Python, &[("OTHER", "x")]));
        let node = prestart(&r, RuntimeFamily::Node, &[("TABLE", "t1")]).unwrap();
        assert!(node.env.iter().any(|(k, v)| k == "NODE_PATH" && v == "/var/task/node_modules"));
    }

    #[test]
    fn a_function_setting_what_the_interpreter_reads_at_start_starts_fresh() {
        let r = runtimes(namespace_view());
        for var in
            ["PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "LANG", "LC_ALL", "TZ", "HOME", "LD_PRELOAD", "MALLOC_ARENA_MAX"]
        {
            assert_eq!(prestart(&r, RuntimeFamily::Python, &[(var, "x")]), None, "{var}");
        }
        // The same value given again is a second entry a fresh getenv would tell apart.
        assert_eq!(prestart(&r, RuntimeFamily::Python, &[("TZ", ":UTC")]), None);
        for var in ["NODE_OPTIONS", "NODE_PATH", "UV_THREADPOOL_SIZE", "OPENSSL_CONF", "SSL_CERT_FILE", "LC_CTYPE"] {
            assert_eq!(prestart(&r, RuntimeFamily::Node, &[(var, "x")]), None, "{var}");
        }
        // Node does not read PYTHON*, nor Python NODE_*.
        assert!(prestart(&r, RuntimeFamily::Node, &[("PYTHONPATH", "x")]).is_some());
        assert!(prestart(&r, RuntimeFamily::Python, &[("NODE_OPTIONS", "x")]).is_some());
    }

    #[test]
    fn nothing_is_prestarted_for_provided_or_where_the_task_root_is_per_function() {
        assert_eq!(prestart(&runtimes(namespace_view()), RuntimeFamily::Provided, &[]), None);
        assert_eq!(prestart(&runtimes(PathView::default()), RuntimeFamily::Python, &[]), None);
    }
}
