//! ARNs this server hands out, all in one place.

use nimbus_model::{FunctionName, Qualifier};

#[derive(Debug, Clone)]
pub struct Arns {
    pub region: String,
    pub account: String,
}

impl Arns {
    /// `arn:aws:lambda:us-east-1:000000000000:function:NAME[:QUALIFIER]`
    pub fn function(&self, name: &FunctionName, qualifier: Option<&Qualifier>) -> String {
        match qualifier {
            Some(q) => format!("arn:aws:lambda:{}:{}:function:{name}:{q}", self.region, self.account),
            None => format!("arn:aws:lambda:{}:{}:function:{name}", self.region, self.account),
        }
    }

    /// `arn:aws:logs:us-east-1:000000000000:log-group:NAME:*`
    pub fn log_group(&self, group: &str) -> String {
        format!("arn:aws:logs:{}:{}:log-group:{group}:*", self.region, self.account)
    }
}
