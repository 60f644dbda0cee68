//! The credentials Nimbus accepts: the root key pair (from the environment, or created on first start
//! and kept 0600 in the data dir as an AWS shared-credentials file) and short-lived session credentials
//! handed to each execution environment, so SDK calls made inside a function authenticate as that
//! environment and never with the root key. Once the store is attached, IAM users' access keys and
//! STS sessions are looked up there too, through a cache that is dropped whenever an IAM write ends
//! (`Store::iam_generation`), so a deleted user's or deactivated key is refused from the next request.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, SystemTime};

use base64::Engine;
use rand::Rng;

use crate::auth::{Principal, RoleSession, Secret};
use nimbus_store::Store;
use nimbus_store::iam::SessionPrincipal;

/// Keys remembered between IAM writes, found or not; past this the cache starts over, so a flood of
/// made-up key ids costs queries, not memory.
const CACHED_KEYS_MAX: usize = 10_000;

pub const ROOT_KEY_ENV: &str = "NIMBUS_ROOT_ACCESS_KEY_ID";
pub const ROOT_SECRET_ENV: &str = "NIMBUS_ROOT_SECRET_ACCESS_KEY";
const FILE_NAME: &str = "credentials";

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("read credentials file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("write credentials file {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("credentials file {path} has no aws_access_key_id/aws_secret_access_key under [default]")]
    Malformed { path: PathBuf },
    #[error("{ROOT_KEY_ENV} and {ROOT_SECRET_ENV} must be set together")]
    HalfSet,
}

#[derive(Debug, Clone)]
pub struct KeyPair {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// Where the root key pair came from, so `serve` can tell the user what to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootSource {
    Environment,
    Created(PathBuf),
    File(PathBuf),
}

/// A session credential for one execution environment.
#[derive(Debug, Clone)]
pub struct SessionCredential {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
}

/// Whose environment a session credential was issued to: it acts as a session of this role named
/// after this function (`arn:aws:sts::<account>:assumed-role/<role>/<function>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOwner {
    pub function: String,
    pub role_arn: String,
}

pub struct Credentials {
    root: KeyPair,
    sessions: RwLock<HashMap<String, (SessionCredential, SessionOwner)>>,
    iam: OnceLock<(Arc<Store>, String)>,
    cache: RwLock<KeyCache>,
}

/// What the store said about access keys, valid while its IAM generation is `generation`.
#[derive(Default)]
struct KeyCache {
    generation: u64,
    keys: HashMap<String, Option<Secret>>,
}

impl Credentials {
    /// Takes the root key pair from the environment when both variables are set, otherwise from the data
    /// dir's credentials file, creating it with a fresh key pair on first start.
    pub fn load_or_create(data_dir: &Path, from_env: Option<KeyPair>) -> Result<(Self, RootSource), CredentialsError> {
        if let Some(root) = from_env {
            return Ok((Self::with_root(root), RootSource::Environment));
        }
        let path = data_dir.join(FILE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let root = parse_shared_file(&text).ok_or(CredentialsError::Malformed { path: path.clone() })?;
                Ok((Self::with_root(root), RootSource::File(path)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let root = KeyPair {
                    access_key_id: format!("AKIA{}", random_upper(16)),
                    secret_access_key: random_secret(40),
                };
                write_shared_file(&path, &root)?;
                Ok((Self::with_root(root), RootSource::Created(path)))
            }
            Err(source) => Err(CredentialsError::Read { path, source }),
        }
    }

    pub fn root_from_env(key: Option<String>, secret: Option<String>) -> Result<Option<KeyPair>, CredentialsError> {
        match (key, secret) {
            (Some(access_key_id), Some(secret_access_key)) => Ok(Some(KeyPair { access_key_id, secret_access_key })),
            (None, None) => Ok(None),
            _ => Err(CredentialsError::HalfSet),
        }
    }

    fn with_root(root: KeyPair) -> Self {
        Self { root, sessions: RwLock::new(HashMap::new()), iam: OnceLock::new(), cache: RwLock::default() }
    }

    /// From now on, keys the root and the environments do not hold are looked up in the store's IAM
    /// tables; `account` names the principals' ARNs.
    pub fn attach_store(&self, store: Arc<Store>, account: &str) {
        let _ = self.iam.set((store, account.to_owned()));
    }

    pub fn root(&self) -> &KeyPair {
        &self.root
    }

    /// The secret SigV4 verification needs for `access_key_id`, if Nimbus knows the key.
    pub fn lookup(&self, access_key_id: &str) -> Option<Secret> {
        if access_key_id == self.root.access_key_id {
            return Some(Secret::root(self.root.secret_access_key.clone(), None));
        }
        {
            let sessions = self.sessions.read().unwrap_or_else(|p| p.into_inner());
            if let Some((s, _)) = sessions.get(access_key_id) {
                return Some(Secret {
                    secret_access_key: s.secret_access_key.clone(),
                    session_token: Some(s.session_token.clone()),
                    principal: Principal::Function,
                    expires: None,
                });
            }
        }
        let (store, account) = self.iam.get()?;
        let generation = store.iam_generation();
        {
            let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
            if cache.generation == generation
                && let Some(found) = cache.keys.get(access_key_id)
            {
                return found.clone();
            }
        }
        let found = match stored_key(store, account, access_key_id) {
            Ok(found) => found,
            Err(error) => {
                tracing::error!(%error, "looking up an access key failed");
                return None;
            }
        };
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if cache.generation != generation || cache.keys.len() >= CACHED_KEYS_MAX {
            *cache = KeyCache { generation, keys: HashMap::new() };
        }
        cache.keys.insert(access_key_id.to_owned(), found.clone());
        found
    }

    /// Whose environment a session credential belongs to, while it is valid.
    pub fn session_owner(&self, access_key_id: &str) -> Option<SessionOwner> {
        let sessions = self.sessions.read().unwrap_or_else(|p| p.into_inner());
        sessions.get(access_key_id).map(|(_, owner)| owner.clone())
    }

    /// Creates and registers a session credential for `owner`'s environment; it is valid until
    /// [`Self::revoke`].
    pub fn issue_session(&self, owner: SessionOwner) -> SessionCredential {
        let mut token = [0u8; 48];
        rand::rng().fill(&mut token[..]);
        let cred = SessionCredential {
            access_key_id: format!("ASIA{}", random_upper(16)),
            secret_access_key: random_secret(40),
            session_token: base64::engine::general_purpose::STANDARD.encode(token),
        };
        let mut sessions = self.sessions.write().unwrap_or_else(|p| p.into_inner());
        sessions.insert(cred.access_key_id.clone(), (cred.clone(), owner));
        cred
    }

    pub fn revoke(&self, access_key_id: &str) {
        let mut sessions = self.sessions.write().unwrap_or_else(|p| p.into_inner());
        sessions.remove(access_key_id);
    }
}

/// An IAM user's active access key, or an STS session whose role or user still exists.
fn stored_key(store: &Store, account: &str, access_key_id: &str) -> nimbus_store::Result<Option<Secret>> {
    if access_key_id.starts_with("AKIA") {
        let Some(key) = store.access_key_secret(access_key_id)? else { return Ok(None) };
        if !key.active {
            return Ok(None);
        }
        let principal = user_principal(account, &key.user);
        return Ok(Some(Secret { secret_access_key: key.secret, session_token: None, principal, expires: None }));
    }
    let Some(session) = store.session(access_key_id)? else { return Ok(None) };
    let principal = match &session.principal {
        // The root's own GetSessionToken: named by the account id.
        SessionPrincipal::User { user_id } if user_id == account => Principal::Root,
        SessionPrincipal::User { user_id } => match store.user_by_id(user_id)? {
            Some(user) => user_principal(account, &user),
            None => return Ok(None),
        },
        SessionPrincipal::Role { role_id, session_name } => match store.role_by_id(role_id)? {
            Some(role) => Principal::AssumedRole(Arc::new(RoleSession {
                role_id: role.id.clone(),
                role_arn: format!("arn:aws:iam::{account}:role{}{}", role.path, role.name),
                arn: format!("arn:aws:sts::{account}:assumed-role/{}/{session_name}", role.name),
                role_name: role.name.to_string(),
                session_name: session_name.clone(),
                session_policy: session.session_policy.clone(),
            })),
            None => return Ok(None),
        },
    };
    let expires = SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(session.expires_ms).unwrap_or(0));
    Ok(Some(Secret {
        secret_access_key: session.secret,
        session_token: Some(session.session_token),
        principal,
        expires: Some(expires),
    }))
}

pub fn user_principal(account: &str, user: &nimbus_store::iam::IamUser) -> Principal {
    Principal::User {
        id: user.id.clone(),
        name: user.name.to_string(),
        arn: format!("arn:aws:iam::{account}:user{}{}", user.path, user.name),
    }
}

/// `len` characters of the base-32 alphabet AWS's access key ids and unique ids use.
pub fn random_id(len: usize) -> String {
    random_upper(len)
}

/// A secret access key: 40 characters, as AWS's.
pub fn new_secret() -> String {
    random_secret(40)
}

/// A session token: 48 random bytes, base64.
pub fn new_session_token() -> String {
    let mut token = [0u8; 48];
    rand::rng().fill(&mut token[..]);
    base64::engine::general_purpose::STANDARD.encode(token)
}

fn random_upper(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::rng();
    (0..n).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

fn random_secret(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rng();
    (0..n).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// Reads the `[default]` profile of an AWS shared-credentials file:
/// ```text
/// [default]
/// aws_access_key_id = AKIA...
/// aws_secret_access_key = ...
/// ```
fn parse_shared_file(text: &str) -> Option<KeyPair> {
    let mut in_default = false;
    let (mut key, mut secret) = (None, None);
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_default = line == "[default]";
            continue;
        }
        if !in_default {
            continue;
        }
        if let Some((name, value)) = line.split_once('=') {
            match name.trim() {
                "aws_access_key_id" => key = Some(value.trim().to_owned()),
                "aws_secret_access_key" => secret = Some(value.trim().to_owned()),
                _ => {}
            }
        }
    }
    Some(KeyPair { access_key_id: key?, secret_access_key: secret? })
}

fn write_shared_file(path: &Path, root: &KeyPair) -> Result<(), CredentialsError> {
    let err = |source| CredentialsError::Write { path: path.to_owned(), source };
    let tmp = path.with_extension("tmp");
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(err)?;
    write!(
        file,
        "# Nimbus root credentials. Use with AWS_SHARED_CREDENTIALS_FILE={}\n[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        path.display(),
        root.access_key_id,
        root.secret_access_key
    )
    .map_err(err)?;
    file.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_once_kept_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let (first, source) = Credentials::load_or_create(dir.path(), None).unwrap();
        assert!(matches!(source, RootSource::Created(_)));
        let mode = std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (second, source) = Credentials::load_or_create(dir.path(), None).unwrap();
        assert!(matches!(source, RootSource::File(_)));
        assert_eq!(first.root().access_key_id, second.root().access_key_id);
        assert!(second.lookup(&first.root().access_key_id).is_some());
    }

    #[test]
    fn sessions_are_known_until_revoked() {
        let creds = Credentials::with_root(KeyPair { access_key_id: "AKIAROOT".into(), secret_access_key: "s".into() });
        let owner = SessionOwner { function: "f".into(), role_arn: "arn:aws:iam::000000000000:role/r".into() };
        let session = creds.issue_session(owner.clone());
        let secret = creds.lookup(&session.access_key_id).unwrap();
        assert_eq!(creds.session_owner(&session.access_key_id), Some(owner));
        assert_eq!(secret.session_token.as_deref(), Some(session.session_token.as_str()));
        creds.revoke(&session.access_key_id);
        assert!(creds.lookup(&session.access_key_id).is_none());
        assert!(creds.session_owner(&session.access_key_id).is_none());
    }

    /// IAM users' keys and STS sessions resolve from the store, and a change is seen at the next lookup
    /// (the cache is keyed by the store's IAM generation).
    #[test]
    fn iam_keys_and_sessions_resolve_and_follow_changes() {
        use nimbus_model::iam::{IamPath, IamTags, UserName};
        use nimbus_store::iam::{NewUser, StsSession};
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let creds = Credentials::with_root(KeyPair { access_key_id: "AKIAROOT".into(), secret_access_key: "s".into() });
        creds.attach_store(store.clone(), "000000000000");
        let bob = UserName::parse("bob").unwrap();
        let user = store
            .create_user(&NewUser {
                id: "AIDABOB".into(),
                name: bob.clone(),
                path: IamPath::root(),
                tags: IamTags::default(),
                now_ms: 1,
            })
            .unwrap();
        assert!(creds.lookup("AKIABOBKEY0000000000").is_none());
        store.create_access_key(&bob, "AKIABOBKEY0000000000", "bob-secret", 1).unwrap();
        let found = creds.lookup("AKIABOBKEY0000000000").unwrap();
        assert_eq!(found.secret_access_key, "bob-secret");
        assert!(matches!(&found.principal, Principal::User { arn, .. } if arn == "arn:aws:iam::000000000000:user/bob"));
        store.set_access_key_active(&bob, "AKIABOBKEY0000000000", false).unwrap();
        assert!(creds.lookup("AKIABOBKEY0000000000").is_none(), "an inactive key is refused at once");

        let session = StsSession {
            access_key_id: "ASIABOBSESSION000000".into(),
            secret: "t-secret".into(),
            session_token: "token".into(),
            principal: SessionPrincipal::User { user_id: user.id.clone() },
            session_policy: None,
            tags: "{}".into(),
            created_ms: 1_000,
            expires_ms: 901_000,
        };
        store.create_session(&session).unwrap();
        let found = creds.lookup("ASIABOBSESSION000000").unwrap();
        assert_eq!(found.session_token.as_deref(), Some("token"));
        assert_eq!(found.expires, Some(SystemTime::UNIX_EPOCH + Duration::from_millis(901_000)));
        store.delete_access_key(&bob, "AKIABOBKEY0000000000").unwrap();
        store.delete_user(&bob).unwrap();
        assert!(creds.lookup("ASIABOBSESSION000000").is_none(), "a deleted user's sessions go with it");
    }
}
