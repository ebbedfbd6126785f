//! Integers across the FFI: Kotlin and Java have no natural unsigned types,
//! so the bindings take and return signed ones (`Int`, `Long`; Swift `Int32`,
//! `Int64`). Values coming in are checked here (a negative count is a typed
//! `InvalidOption`); values going out saturate, which no real count reaches.

use pocketlm::Error;

/// A non-negative `i32` option as the core's `u32`.
pub(crate) fn count(name: &'static str, value: i32) -> Result<u32, Error> {
    u32::try_from(value).map_err(|_| Error::InvalidOption { name, value: value.to_string(), expected: "must not be negative".into() })
}

/// An optional non-negative `i32` option as the core's `u32`.
pub(crate) fn opt_count(name: &'static str, value: Option<i32>) -> Result<Option<u32>, Error> {
    value.map(|v| count(name, v)).transpose()
}

/// A non-negative `i64` (bytes, milliseconds) as the core's `u64`.
pub(crate) fn amount(name: &'static str, value: i64) -> Result<u64, Error> {
    u64::try_from(value).map_err(|_| Error::InvalidOption { name, value: value.to_string(), expected: "must not be negative".into() })
}

/// An optional non-negative `i64` as the core's `u64`.
pub(crate) fn opt_amount(name: &'static str, value: Option<i64>) -> Result<Option<u64>, Error> {
    value.map(|v| amount(name, v)).transpose()
}

/// A `u64` going out (saturating at `i64::MAX`).
pub(crate) fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A `u32` going out (saturating at `i32::MAX`).
pub(crate) fn saturating_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_values_are_typed_errors_and_large_ones_saturate() {
        assert_eq!(count("threads", 4).unwrap(), 4);
        assert!(matches!(count("threads", -1), Err(Error::InvalidOption { name: "threads", .. })));
        assert!(matches!(opt_amount("memory_budget_bytes", Some(-5)), Err(Error::InvalidOption { .. })));
        assert_eq!(opt_count("context_length", None).unwrap(), None);
        assert_eq!(saturating_i64(u64::MAX), i64::MAX);
        assert_eq!(saturating_i32(u32::MAX), i32::MAX);
        assert_eq!(saturating_i64(1 << 40), 1 << 40);
    }
}
