//! Scenario results and the lines the lab's runner parses: `PASS name`, `FAIL name: why`,
//! `SKIP name: why`, and `N passed, M failed`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// A scenario's result: `Err` with what went wrong.
pub type Outcome = Result<(), String>;

/// The start of an `Err` that means "this kernel cannot run the check" rather than "ksring
/// failed it": the scenario detected a known gap of the kernel (named, with its source) and the
/// result is reported as `SKIP`.
pub const GAP: &str = "ReactOS gap: ";

/// The results so far.
#[derive(Default, Debug)]
pub struct Tally {
    /// Scenarios that passed.
    pub passed: u32,
    /// Scenarios that failed.
    pub failed: u32,
    /// Scenarios the kernel could not run (see [`GAP`]).
    pub skipped: u32,
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
            Err(why) if why.starts_with(GAP) => {
                self.skipped += 1;
                format!("SKIP {name}: {why}")
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
        format!("{} passed, {} failed, {} skipped", self.passed, self.failed, self.skipped)
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
        assert_eq!(
            t.record("intersection", &Err(format!("{GAP}no size query"))),
            "SKIP intersection: ReactOS gap: no size query"
        );
        assert_eq!(t.summary(), "1 passed, 1 failed, 1 skipped");
        assert_eq!(expect_eq("x", 1, 2), Err("x: got 1, expected 2".into()));
    }
}
