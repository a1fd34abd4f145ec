//! [`ByteSize`]: a command-line byte count written either as plain bytes or with a
//! binary unit (`64MiB`), so memory and size budgets read the way people think of
//! them, and print back the same way in `--help` defaults.

use std::fmt;
use std::str::FromStr;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// A number of bytes: `65536`, `64KiB`, `64MiB`, `1GiB` (units are powers of 1024,
/// case-insensitive, optionally separated from the number by spaces).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The count in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }

    /// The count as a `usize`, saturating: a budget larger than the address space
    /// cannot be exhausted anyway.
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

/// A byte count that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ByteSizeError {
    #[error("expected a number of bytes, optionally followed by KiB, MiB or GiB (e.g. 64MiB)")]
    NotANumber,
    #[error("unknown unit `{0}`: use KiB, MiB or GiB (powers of 1024), or plain bytes")]
    UnknownUnit(String),
    #[error("{0} does not fit in 64 bits")]
    TooLarge(String),
}

impl FromStr for ByteSize {
    type Err = ByteSizeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        if digits.is_empty() {
            return Err(ByteSizeError::NotANumber);
        }
        let number: u64 = digits
            .parse()
            .map_err(|_| ByteSizeError::TooLarge(text.to_string()))?;
        let unit = unit.trim_start();
        // "B" would be harmless, but the brief form people type by mistake is "MB",
        // which means powers of 1000 elsewhere; refusing it avoids a silent 5% error.
        let multiplier = match unit.to_ascii_lowercase().as_str() {
            "" => 1,
            "kib" => KIB,
            "mib" => MIB,
            "gib" => GIB,
            _ => return Err(ByteSizeError::UnknownUnit(unit.to_string())),
        };
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| ByteSizeError::TooLarge(text.to_string()))
    }
}

impl fmt::Display for ByteSize {
    /// The largest unit that represents the count exactly, so that `--help` shows
    /// `64MiB` rather than `67108864` and the text parses back to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0;
        for (unit, size) in [("GiB", GIB), ("MiB", MIB), ("KiB", KIB)] {
            if bytes != 0 && bytes.is_multiple_of(size) {
                return write!(f, "{}{unit}", bytes / size);
            }
        }
        write!(f, "{bytes}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_bytes_and_binary_units() {
        assert_eq!("65536".parse(), Ok(ByteSize(65536)));
        assert_eq!("64KiB".parse(), Ok(ByteSize(64 << 10)));
        assert_eq!("16MiB".parse(), Ok(ByteSize(16 << 20)));
        assert_eq!("16 mib".parse(), Ok(ByteSize(16 << 20)));
        assert_eq!("2GiB".parse(), Ok(ByteSize(2 << 30)));
        assert_eq!("0".parse(), Ok(ByteSize(0)));
    }

    #[test]
    fn refuses_garbage_decimal_units_and_overflow() {
        assert_eq!("".parse::<ByteSize>(), Err(ByteSizeError::NotANumber));
        assert_eq!("MiB".parse::<ByteSize>(), Err(ByteSizeError::NotANumber));
        assert_eq!("-1".parse::<ByteSize>(), Err(ByteSizeError::NotANumber));
        assert_eq!(
            "64MB".parse::<ByteSize>(),
            Err(ByteSizeError::UnknownUnit("MB".into()))
        );
        assert_eq!(
            "1.5GiB".parse::<ByteSize>(),
            Err(ByteSizeError::UnknownUnit(".5GiB".into()))
        );
        assert!(matches!(
            "99999999999999999999".parse::<ByteSize>(),
            Err(ByteSizeError::TooLarge(_))
        ));
        assert!(matches!(
            "17179869184GiB".parse::<ByteSize>(),
            Err(ByteSizeError::TooLarge(_))
        ));
    }

    #[test]
    fn displays_in_the_largest_exact_unit() {
        for (bytes, text) in [
            (64 << 20, "64MiB"),
            (1 << 30, "1GiB"),
            (1536, "1536"),
            (3 << 10, "3KiB"),
            (0, "0"),
        ] {
            assert_eq!(ByteSize(bytes).to_string(), text);
            assert_eq!(text.parse(), Ok(ByteSize(bytes)));
        }
    }
}
