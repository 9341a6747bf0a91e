//! A chain of three ksring filters joined by IRP-source pins, the pin-to-pin connection KS
//! allows between a data-source/IRP-sink pin and a data-sink/IRP-source pin (and the other way):
//!
//! ```text
//! client ──write──▶ F1.input   F1.output ══push══▶ F2.input
//!                              F2.output ◀══pull══ F3.input   F3.output ──read──▶ client
//! ```
//!
//! F1's output pin is created with `PinToHandle` = F2's input pin and writes to it itself; F3's
//! input pin is created with `PinToHandle` = F2's output pin and reads from it itself. The client
//! only writes to F1 and reads from F3; closing F1's input ends the stream, and the end travels
//! down the chain as an `ENDOFSTREAM` frame.

use ksabi::{KSSTATE, KSSTATE_RUN, KSSTATE_STOP, STATUS_SUCCESS, StatusText};
use ksring_api::{KsRingStatistics, PIN_INPUT, PIN_OUTPUT};

use crate::backend::{Backend, Fail, Handle};
use crate::filter::{Filter, Pin, Properties as _};
use crate::request::Connect;
use crate::stream::{self, Config, Progress, Report};

/// The nine handles of a chain, in the order they were opened.
pub const ROLES: [Role; 9] = [
    Role::Filter(0),
    Role::Filter(1),
    Role::Filter(2),
    Role::ClientInput,
    Role::Sink(1, PIN_INPUT),
    Role::Sink(1, PIN_OUTPUT),
    Role::PushSource,
    Role::PullSource,
    Role::ClientOutput,
];

/// What a handle of the chain is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Filter F1, F2 or F3 (index 0..3).
    Filter(usize),
    /// F1's input, which the client writes.
    ClientInput,
    /// A pin of filter `n` that a source pin points at (F2's input and output).
    Sink(usize, u32),
    /// F1's output: the IRP source writing to F2's input.
    PushSource,
    /// F3's input: the IRP source reading from F2's output.
    PullSource,
    /// F3's output, which the client reads.
    ClientOutput,
}

impl core::fmt::Display for Role {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::Filter(n) => write!(f, "F{}", n + 1),
            Self::ClientInput => f.write_str("F1.in(client)"),
            Self::Sink(n, pin) => {
                write!(f, "F{}.{}(sink)", n + 1, if pin == PIN_INPUT { "in" } else { "out" })
            }
            Self::PushSource => f.write_str("F1.out(push)"),
            Self::PullSource => f.write_str("F3.in(pull)"),
            Self::ClientOutput => f.write_str("F3.out(client)"),
        }
    }
}

/// The open chain.
pub struct Chain<'b> {
    /// F1, F2, F3.
    pub filters: [Filter<'b>; 3],
    /// F1's input: the client writes here.
    pub client_input: Pin<'b>,
    /// F2's input: F1's output writes here.
    pub f2_input: Pin<'b>,
    /// F2's output: F3's input reads from here.
    pub f2_output: Pin<'b>,
    /// F1's output, an IRP source.
    pub push: Pin<'b>,
    /// F3's input, an IRP source.
    pub pull: Pin<'b>,
    /// F3's output: the client reads here.
    pub client_output: Pin<'b>,
}

/// F1's, F2's and F3's statistics.
fn statistics_of(filters: &[Filter<'_>; 3]) -> Result<[KsRingStatistics; 3], String> {
    let get = |n: usize| filters[n].statistics().map_err(|io| format!("F{} statistics: {io:?}", n + 1));
    Ok([get(0)?, get(1)?, get(2)?])
}

/// A pin whose connection points at `target`.
fn source_pin<'b>(filter: &Filter<'b>, pin: u32, format: &[u8], target: Handle) -> Result<Pin<'b>, Fail> {
    let mut c = Connect::new(pin, format.to_vec());
    c.pin_to_handle = target.0;
    filter.create_pin(&c)
}

impl<'b> Chain<'b> {
    /// Opens three filters and connects them as above, all pins streaming `format`, in STOP.
    ///
    /// # Errors
    /// What failed.
    pub fn open(backend: &'b dyn Backend, format: &[u8]) -> Result<Self, String> {
        let open = |n: usize| Filter::open_first(backend).map_err(|e| format!("open F{n}: {e}"));
        let filters = [open(1)?, open(2)?, open(3)?];
        let sink = |n: usize, pin: u32| {
            filters[n].connect(pin, format).map_err(|e| format!("{}: {e}", Role::Sink(n, pin)))
        };
        let client_input = filters[0].connect(PIN_INPUT, format).map_err(|e| format!("F1.in: {e}"))?;
        let f2_input = sink(1, PIN_INPUT)?;
        let f2_output = sink(1, PIN_OUTPUT)?;
        let push = source_pin(&filters[0], PIN_OUTPUT, format, f2_input.handle())
            .map_err(|e| format!("F1.out → F2.in: {e}"))?;
        let pull = source_pin(&filters[2], PIN_INPUT, format, f2_output.handle())
            .map_err(|e| format!("F3.in ← F2.out: {e}"))?;
        let client_output = filters[2].connect(PIN_OUTPUT, format).map_err(|e| format!("F3.out: {e}"))?;
        Ok(Self { filters, client_input, f2_input, f2_output, push, pull, client_output })
    }

    /// The six pins, downstream first (sinks reach a state before the sources that feed them).
    #[must_use]
    pub fn pins(&self) -> [(Role, &Pin<'b>); 6] {
        [
            (Role::ClientOutput, &self.client_output),
            (Role::PullSource, &self.pull),
            (Role::Sink(1, PIN_OUTPUT), &self.f2_output),
            (Role::Sink(1, PIN_INPUT), &self.f2_input),
            (Role::PushSource, &self.push),
            (Role::ClientInput, &self.client_input),
        ]
    }

    /// Sets every pin to `state`.
    ///
    /// # Errors
    /// The first pin that refused.
    pub fn set_state(&self, state: KSSTATE) -> Result<(), String> {
        for (role, pin) in self.pins() {
            let io = pin.set_state(state);
            if io.status != STATUS_SUCCESS {
                return Err(format!("{role}: set state {state}: {}", StatusText(io.status)));
            }
        }
        Ok(())
    }

    /// The three filters' statistics.
    ///
    /// # Errors
    /// The first request that failed.
    pub fn statistics(&self) -> Result<[KsRingStatistics; 3], String> {
        statistics_of(&self.filters)
    }

    /// Every handle with its role, in [`ROLES`] order, for closing in any order.
    #[must_use]
    pub fn into_handles(self) -> Vec<(Role, Closable<'b>)> {
        let [f1, f2, f3] = self.filters;
        vec![
            (ROLES[0], Closable::Filter(f1)),
            (ROLES[1], Closable::Filter(f2)),
            (ROLES[2], Closable::Filter(f3)),
            (ROLES[3], Closable::Pin(self.client_input)),
            (ROLES[4], Closable::Pin(self.f2_input)),
            (ROLES[5], Closable::Pin(self.f2_output)),
            (ROLES[6], Closable::Pin(self.push)),
            (ROLES[7], Closable::Pin(self.pull)),
            (ROLES[8], Closable::Pin(self.client_output)),
        ]
    }
}

/// A filter or pin handle of the chain.
pub enum Closable<'b> {
    /// A filter.
    Filter(Filter<'b>),
    /// A pin.
    Pin(Pin<'b>),
}

impl Closable<'_> {
    /// Closes it.
    ///
    /// # Errors
    /// The close's failure.
    pub fn close(self) -> Result<(), Fail> {
        match self {
            Self::Filter(f) => f.close(),
            Self::Pin(p) => p.close(),
        }
    }
}

/// What a chain run did.
#[derive(Clone, Debug)]
pub struct GraphReport {
    /// The client's own verified count.
    pub stream: Report,
    /// F1, F2, F3 after the end of stream.
    pub statistics: [KsRingStatistics; 3],
}

/// Streams `cfg.bytes` through the chain: written to F1, read back verified from F3 (see
/// [`stream::run`]); then checks that each filter accepted and delivered exactly what the client
/// did, with nothing discarded. Closes F1's input (that ends the stream); the rest stays open.
///
/// # Errors
/// The stream's failure, or statistics that do not add up.
pub fn run(
    backend: &dyn Backend,
    chain: Chain<'_>,
    cfg: &Config,
    progress: &Progress,
) -> Result<GraphReport, String> {
    chain.set_state(KSSTATE_RUN)?;
    let Chain { filters, client_input, f2_input, f2_output, push, pull, client_output } = chain;
    let report = stream::run(backend, client_input, &client_output, cfg, progress)
        .map_err(|e| format!("{e}; statistics then: {:?}", statistics_of(&filters)))?;
    let statistics = statistics_of(&filters)?;
    for (n, s) in statistics.iter().enumerate() {
        let what = format!("F{}", n + 1);
        if s.bytes_in != report.bytes || s.bytes_out != report.bytes {
            return Err(format!(
                "{what}: {} bytes in, {} out; the client wrote and read {}",
                s.bytes_in, s.bytes_out, report.bytes
            ));
        }
        // F2 also took the end of stream from F1's push source as a (zero-length) frame and
        // passed it to F3's pull source; the clients' ends are the handles closing instead.
        let frames = report.frames + u64::from(n == 1);
        if s.frames_in != frames || s.frames_out != frames {
            return Err(format!(
                "{what}: {} frames in, {} out; expected {frames} (the client wrote and read {})",
                s.frames_in, s.frames_out, report.frames
            ));
        }
        if s.discarded_bytes != 0 || s.discarded_frames != 0 {
            return Err(format!(
                "{what}: {} frames ({} bytes) discarded",
                s.discarded_frames, s.discarded_bytes
            ));
        }
    }
    for (role, pin) in [
        (Role::ClientOutput, &client_output),
        (Role::PullSource, &pull),
        (Role::Sink(1, PIN_OUTPUT), &f2_output),
        (Role::Sink(1, PIN_INPUT), &f2_input),
        (Role::PushSource, &push),
    ] {
        let io = pin.set_state(KSSTATE_STOP);
        if io.status != STATUS_SUCCESS {
            return Err(format!("{role}: STOP: {}", StatusText(io.status)));
        }
    }
    Ok(GraphReport { stream: report, statistics })
}
