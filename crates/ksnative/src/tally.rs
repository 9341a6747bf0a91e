//! Scenario results and the lines the lab's runner parses: `PASS name`, `FAIL name: why`,
//! `SKIP name: why`, and `N passed, M failed`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// A scenario's result: `Err` with what went wrong.
pub type Outcome = Result<(), String>;

/// The results so far.
#[derive(Default, Debug)]
pub struct Tally {
    /// Scenarios that passed.
    pub passed: u32,
    /// Scenarios that failed.
    pub failed: u32,
}

impl Tally {
    /// Records `outcome` of `name` and returns the line to print (one line: newlines in the
    /// reason become `; `).
    pub fn record(&mut self, name: &str, outcome: &Outcome) -> String {
        match outcome {
            Ok(()) => {
                self.passed += 1;
                format!("PASS {name}")
            }
            Err(why) => {
                self.failed += 1;
                let why: Vec<&str> = why.lines().collect();
                format!("FAIL {name}: {}", why.join("; "))
            }
        }
    }

    /// The closing line.
    #[must_use]
    pub fn summary(&self) -> String {
        format!("{} passed, {} failed", self.passed, self.failed)
    }
}

/// `Err(message)` unless `cond`.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(alloc::format!($($msg)+));
        }
    };
}

/// `Err` unless `got == want`, naming `what`.
///
/// # Errors
/// The difference.
#[allow(clippy::needless_pass_by_value)] // takes temporaries
pub fn expect_eq<T: PartialEq + core::fmt::Debug>(what: &str, got: T, want: T) -> Outcome {
    if got == want { Ok(()) } else { Err(format!("{what}: got {got:?}, expected {want:?}")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_summary() {
        let mut t = Tally::default();
        assert_eq!(t.record("discovery", &Ok(())), "PASS discovery");
        assert_eq!(t.record("stream", &Err("byte 3\ndiffers".into())), "FAIL stream: byte 3; differs");
        assert_eq!(t.summary(), "1 passed, 1 failed");
        assert_eq!(expect_eq("x", 1, 2), Err("x: got 1, expected 2".into()));
    }
}
