//! The conformance suite: what ksring promises a client, as scenarios any backend can run —
//! `ksctl conformance` on an installed driver, or the emulated machine in CI. Each scenario opens
//! its own filter(s), checks with exact expectations, and closes everything it opened.

pub mod bad_input;
mod scenarios;

use std::time::{Duration, Instant};

use ksabi::{KSSTATE, STATUS_SUCCESS, StatusText};
use ksring_api::{PIN_INPUT, PIN_OUTPUT};

use crate::backend::Backend;
use crate::filter::{Filter, Pin};

pub use scenarios::scenarios;

/// A filter with both pins connected.
pub struct Rig<'b> {
    /// The filter.
    pub filter: Filter<'b>,
    /// Its input pin.
    pub input: Pin<'b>,
    /// Its output pin.
    pub output: Pin<'b>,
}

/// Opens a filter, connects both pins with `format` and sets both to `state`.
///
/// # Errors
/// What failed.
pub fn rig<'b>(backend: &'b dyn Backend, format: &[u8], state: KSSTATE) -> Result<Rig<'b>, String> {
    let filter = Filter::open_first(backend).map_err(|e| format!("open filter: {e}"))?;
    let input = filter.connect(PIN_INPUT, format).map_err(|e| format!("input pin: {e}"))?;
    let output = filter.connect(PIN_OUTPUT, format).map_err(|e| format!("output pin: {e}"))?;
    for pin in [&input, &output] {
        let io = pin.set_state(state);
        if io.status != STATUS_SUCCESS {
            return Err(format!("set state {state}: {}", StatusText(io.status)));
        }
    }
    Ok(Rig { filter, input, output })
}

/// One scenario.
pub struct Scenario {
    /// Short name (`ksctl conformance --only NAME`).
    pub name: &'static str,
    /// What it shows.
    pub about: &'static str,
    /// Runs it.
    pub run: fn(&dyn Backend) -> Result<(), String>,
}

/// A scenario's result.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The scenario.
    pub name: &'static str,
    /// What it shows.
    pub about: &'static str,
    /// `Err` with what went wrong.
    pub result: Result<(), String>,
    /// How long it took.
    pub elapsed: Duration,
}

/// Runs every scenario whose name contains `only` (all if `None`), reporting each as it ends.
pub fn run(backend: &dyn Backend, only: Option<&str>, mut on_each: impl FnMut(&Outcome)) -> Vec<Outcome> {
    scenarios()
        .into_iter()
        .filter(|s| only.is_none_or(|o| s.name.contains(o)))
        .map(|s| {
            let start = Instant::now();
            let result = (s.run)(backend);
            let outcome = Outcome { name: s.name, about: s.about, result, elapsed: start.elapsed() };
            on_each(&outcome);
            outcome
        })
        .collect()
}

/// `Err(message)` unless `cond`.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}
pub(crate) use ensure;

/// `Err` unless `got == want`, naming `what`.
///
/// # Errors
/// The difference.
#[allow(clippy::needless_pass_by_value)] // takes temporaries: expect_eq("x", f(), Ok(1))
pub fn expect_eq<T: PartialEq + core::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want { Ok(()) } else { Err(format!("{what}: got {got:?}, expected {want:?}")) }
}
