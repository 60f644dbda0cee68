//! Validated CloudWatch Logs settings.

use crate::error::ValidationError;

/// The retention periods CloudWatch Logs accepts for `PutRetentionPolicy`, in days.
const RETENTION_DAYS_ALLOWED: [u16; 22] =
    [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/// A log group's `retentionInDays`: one of the periods CloudWatch Logs offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRetentionDays(u16);

impl LogRetentionDays {
    pub fn new(days: i64) -> Result<Self, ValidationError> {
        RETENTION_DAYS_ALLOWED.iter().find(|&&d| i64::from(d) == days).map(|&d| Self(d)).ok_or_else(|| {
            ValidationError::constraint(
                "retentionInDays",
                days,
                format!("Member must satisfy enum value set: {RETENTION_DAYS_ALLOWED:?}"),
            )
        })
    }

    pub fn get(self) -> u16 {
        self.0
    }

    /// The period in milliseconds: events older than this are deleted.
    pub fn as_millis(self) -> i64 {
        i64::from(self.0) * 24 * 60 * 60 * 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_offered_periods_are_accepted() {
        assert_eq!(LogRetentionDays::new(14).unwrap().get(), 14);
        assert_eq!(LogRetentionDays::new(1).unwrap().as_millis(), 86_400_000);
        for bad in [0, 2, 4000, -1] {
            assert!(LogRetentionDays::new(bad).is_err(), "{bad}");
        }
    }
}
