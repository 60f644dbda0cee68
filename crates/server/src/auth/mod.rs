//! Authentication of API requests.
//!
//! Every API request is checked against credentials that nimbus holds, the way AWS checks them:
//! AWS Signature Version 4, in the `Authorization` header or in a presigned URL's query string.

pub mod principal;
pub mod sigv4;

pub use principal::{Principal, RoleSession};

pub use sigv4::{AuthError, Caller, HeadersChecked, Secret, check_headers, verify};
